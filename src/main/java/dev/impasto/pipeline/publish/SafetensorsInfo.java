package dev.impasto.pipeline.publish;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What a LoRA safetensors file holds, read from its header only (the tensors are never loaded), with the checks
 * an upload deserves: a sane header length, JSON, offsets inside the file, and the key naming it claims to have.
 */
public record SafetensorsInfo(Path file, int tensors, Map<String, String> metadata, List<String> keys, int rank, Naming naming) {
    public enum Naming { DIFFUSERS, KOHYA, OTHER }

    private static final long MAX_HEADER = 100L << 20;

    public static SafetensorsInfo read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw new PipelineException(file + ": not a safetensors file (" + size + " bytes)");
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(lenBuf, 0);
            long n = lenBuf.flip().getLong();
            if (n <= 0 || n > MAX_HEADER || n > size - 8)
                throw new PipelineException(file + ": safetensors header length " + n + " is impossible for a " + size + "-byte file (corrupt or not safetensors)");
            ByteBuffer header = ByteBuffer.allocate((int) n);
            while (header.hasRemaining()) if (ch.read(header, 8 + header.position()) < 0) break;
            JsonNode root;
            try {
                root = Json.parse(new String(header.array(), java.nio.charset.StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new PipelineException(file + ": safetensors header is not valid JSON (" + e.getMessage() + ")");
            }
            long dataSize = size - 8 - n;
            Map<String, String> meta = new TreeMap<>();
            List<String> keys = new ArrayList<>();
            int rank = 0;
            for (Map.Entry<String, JsonNode> e : root.properties()) {
                if (e.getKey().equals("__metadata__")) {
                    e.getValue().properties().forEach(m -> meta.put(m.getKey(), m.getValue().asText()));
                    continue;
                }
                JsonNode off = e.getValue().path("data_offsets");
                if (!off.isArray() || off.size() != 2 || off.get(0).asLong(-1) < 0 || off.get(1).asLong(-1) < off.get(0).asLong()
                        || off.get(1).asLong() > dataSize)
                    throw new PipelineException(file + ": tensor '" + e.getKey() + "' has data_offsets " + off + " outside the "
                            + dataSize + " data bytes (truncated file?)");
                keys.add(e.getKey());
                String k = e.getKey();
                if (rank == 0 && (k.endsWith("lora_A.weight") || k.endsWith("lora_down.weight"))) rank = e.getValue().path("shape").path(0).asInt();
            }
            if (keys.isEmpty()) throw new PipelineException(file + ": holds no tensors");
            return new SafetensorsInfo(file, keys.size(), meta, keys, rank, naming(keys));
        } catch (IOException e) {
            throw new PipelineException(file + ": cannot read: " + e.getMessage());
        }
    }

    static Naming naming(List<String> keys) {
        long kohya = keys.stream().filter(k -> k.startsWith("lora_unet_") || k.startsWith("lora_te")).count();
        long diffusers = keys.stream().filter(k -> (k.startsWith("transformer.") || k.startsWith("text_encoder"))
                && (k.contains(".lora_A.") || k.contains(".lora_B.") || k.contains(".lora.down.") || k.contains(".lora.up."))).count();
        if (kohya * 2 > keys.size()) return Naming.KOHYA;
        if (diffusers * 2 > keys.size()) return Naming.DIFFUSERS;
        return Naming.OTHER;
    }
}
