package dev.impasto.lora;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.tensor.DType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Supplier;

/**
 * A minimal safetensors reader/writer for LoRA files only.
 *
 * <p>TEMPORARY: to be replaced by the project's dev.impasto.io safetensors reader/writer once that package is merged.
 * Kept small but hardened: the file is untrusted input, so the header length, the JSON, every dtype, shape and
 * offset range (inside the data area, no overlaps, size = shape x dtype) are checked before any byte is read, and
 * every failure is a {@link LoraFileException} naming the file.
 */
final class SafetensorsLite implements AutoCloseable {
    /** Headers of real files are a few hundred KB; anything above this is a corrupt or hostile length field. */
    static final long MAX_HEADER = 100L << 20;
    static final String METADATA = "__metadata__";
    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY);
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble LE_DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One tensor of the file: dtype as the header names it, shape, byte range inside the data area. */
    record Entry(String name, String dtype, long[] shape, long begin, long end) {
        long numel() {
            long n = 1;
            for (long d : shape) n *= d; // validated not to overflow when the header was read
            return n;
        }

        String shapeString() {
            return Arrays.toString(shape);
        }
    }

    final Path path;
    private final Arena arena;
    private final MemorySegment data;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private SafetensorsLite(Path path, Arena arena, MemorySegment data, Map<String, Entry> entries, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Byte size of the element types safetensors defines (for validation, also of types impasto cannot convert). */
    static int elementSize(String dtype) {
        return switch (dtype) {
            case "F64", "I64", "U64" -> 8;
            case "F32", "I32", "U32" -> 4;
            case "F16", "BF16", "I16", "U16" -> 2;
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0" -> 1;
            default -> -1;
        };
    }

    /** Opens and validates a file; its tensors are memory-mapped until {@link #close()}. */
    static SafetensorsLite open(Path path) throws IOException {
        if (!Files.isRegularFile(path)) throw new LoraFileException(path, "no such file");
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw new LoraFileException(path, "not a safetensors file: " + size + " bytes, shorter than the 8-byte header length");
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            while (lenBuf.hasRemaining()) if (ch.read(lenBuf, lenBuf.position()) < 0) throw new LoraFileException(path, "unexpected end of file");
            long n = lenBuf.getLong(0);
            if (n <= 1 || n > size - 8 || n > MAX_HEADER)
                throw new LoraFileException(path, "not a safetensors file (or truncated): header length " + Long.toUnsignedString(n)
                        + " does not fit a file of " + size + " bytes");
            ByteBuffer hb = ByteBuffer.allocate((int) n);
            while (hb.hasRemaining()) if (ch.read(hb, 8 + hb.position()) < 0) throw new LoraFileException(path, "unexpected end of file in the header");
            long dataLen = size - 8 - n;
            Header h = parseHeader(path, hb.array(), dataLen);
            MemorySegment data = dataLen == 0 ? MemorySegment.ofArray(new byte[0]) : ch.map(FileChannel.MapMode.READ_ONLY, 8 + n, dataLen, arena);
            return new SafetensorsLite(path, arena, data, h.entries, h.metadata);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private record Header(Map<String, Entry> entries, Map<String, String> metadata) {}

    private static Header parseHeader(Path path, byte[] header, long dataLen) throws LoraFileException {
        JsonNode root;
        try {
            root = JSON.readTree(new String(header, StandardCharsets.UTF_8).trim());
        } catch (JacksonException e) {
            throw new LoraFileException(path, "the safetensors header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) throw new LoraFileException(path, "the safetensors header is not a JSON object");
        Map<String, String> meta = new LinkedHashMap<>();
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> f : root.properties()) {
            String name = f.getKey();
            JsonNode v = f.getValue();
            if (name.equals(METADATA)) {
                if (v.isNull()) continue;
                if (!v.isObject()) throw new LoraFileException(path, "__metadata__ must be a JSON object of strings");
                for (Map.Entry<String, JsonNode> m : v.properties()) {
                    if (!m.getValue().isTextual())
                        throw new LoraFileException(path, "__metadata__ value of \"" + m.getKey() + "\" is not a string");
                    meta.put(m.getKey(), m.getValue().textValue());
                }
                continue;
            }
            if (!v.isObject()) throw new LoraFileException(path, "tensor \"" + name + "\": header entry is not a JSON object");
            JsonNode dt = v.get("dtype"), sh = v.get("shape"), off = v.get("data_offsets");
            if (dt == null || !dt.isTextual() || elementSize(dt.textValue()) < 0)
                throw new LoraFileException(path, "tensor \"" + name + "\": unknown dtype " + dt);
            if (sh == null || !sh.isArray() || sh.size() > 8)
                throw new LoraFileException(path, "tensor \"" + name + "\": shape must be an array of at most 8 dimensions, found " + sh);
            long[] shape = new long[sh.size()];
            long numel = 1;
            for (int i = 0; i < shape.length; i++) {
                JsonNode d = sh.get(i);
                if (!d.canConvertToLong() || !d.isIntegralNumber() || d.longValue() < 0)
                    throw new LoraFileException(path, "tensor \"" + name + "\": bad shape " + sh);
                shape[i] = d.longValue();
                try {
                    numel = Math.multiplyExact(numel, shape[i]);
                } catch (ArithmeticException e) {
                    throw new LoraFileException(path, "tensor \"" + name + "\": shape " + sh + " overflows");
                }
            }
            if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber() || !off.get(1).isIntegralNumber()
                    || !off.get(0).canConvertToLong() || !off.get(1).canConvertToLong())
                throw new LoraFileException(path, "tensor \"" + name + "\": data_offsets must be [begin, end], found " + off);
            long b = off.get(0).longValue(), e = off.get(1).longValue();
            if (b < 0 || e < b || e > dataLen)
                throw new LoraFileException(path, "tensor \"" + name + "\": data_offsets [" + b + ", " + e + "] lie outside the data area of "
                        + dataLen + " bytes (truncated file?)");
            long bytes;
            try {
                bytes = Math.multiplyExact(numel, (long) elementSize(dt.textValue()));
            } catch (ArithmeticException ex) {
                throw new LoraFileException(path, "tensor \"" + name + "\": shape " + sh + " overflows");
            }
            if (e - b != bytes)
                throw new LoraFileException(path, "tensor \"" + name + "\": " + (e - b) + " bytes for shape " + sh + " of " + dt.textValue()
                        + " (needs " + bytes + ")");
            entries.put(name, new Entry(name, dt.textValue(), shape, b, e));
        }
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.removeIf(e -> e.end == e.begin);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        Entry reach = null; // the entry reaching furthest so far
        for (Entry c : sorted) {
            if (reach != null && c.begin < reach.end)
                throw new LoraFileException(path, "tensors \"" + reach.name + "\" and \"" + c.name + "\" overlap in the file");
            if (reach == null || c.end > reach.end) reach = c;
        }
        return new Header(Collections.unmodifiableMap(entries), Collections.unmodifiableMap(meta));
    }

    Map<String, Entry> entries() {
        return entries;
    }

    Map<String, String> metadata() {
        return metadata;
    }

    /** A tensor's elements as doubles (F64, F32, BF16, F16 and the integer types); at most 2^31 - 16 elements. */
    double[] readDoubles(Entry e) throws LoraFileException {
        long n = e.numel();
        if (n > Integer.MAX_VALUE - 16) throw new LoraFileException(path, "tensor \"" + e.name + "\" has " + n + " elements, too many for a LoRA weight");
        MemorySegment s = data.asSlice(e.begin, e.end - e.begin);
        double[] out = new double[(int) n];
        switch (e.dtype) {
            case "F64" -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(LE_DOUBLE, i); }
            case "F32" -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(LE_FLOAT, i); }
            case "BF16" -> { for (int i = 0; i < n; i++) out[i] = DType.bf16ToFloat(s.getAtIndex(LE_SHORT, i)); }
            case "F16" -> { for (int i = 0; i < n; i++) out[i] = Float.float16ToFloat(s.getAtIndex(LE_SHORT, i)); }
            case "I64" -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(LE_LONG, i); }
            case "I32" -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(LE_INT, i); }
            case "I16" -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(LE_SHORT, i); }
            case "I8" -> { for (int i = 0; i < n; i++) out[i] = s.get(ValueLayout.JAVA_BYTE, i); }
            case "U8" -> { for (int i = 0; i < n; i++) out[i] = s.get(ValueLayout.JAVA_BYTE, i) & 0xff; }
            default -> throw new LoraFileException(path, "tensor \"" + e.name + "\" has dtype " + e.dtype + ", which impasto cannot read as LoRA weights");
        }
        return out;
    }

    @Override
    public void close() {
        arena.close();
    }

    // ------------------------------------------------------------------------------------------------ writing

    /** A tensor to write: its data is produced only when the writer reaches it, so one tensor is in memory at a time. */
    record Item(String name, DType dtype, long[] shape, Supplier<double[]> data) {
        long bytes() {
            long n = 1;
            for (long d : shape) n = Math.multiplyExact(n, d);
            return Math.multiplyExact(n, (long) dtype.byteSize());
        }
    }

    /**
     * Writes a safetensors file atomically: a temporary file next to the target, fsync, rename over the target, fsync
     * of the directory. A failure leaves any previous file untouched and removes the temporary.
     */
    static void write(Path target, List<Item> items, Map<String, String> metadata) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode m = header.putObject(METADATA);
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (Item it : items) {
            if (it.dtype == DType.I8 || it.dtype == DType.U8) throw new IllegalArgumentException("tensor " + it.name + ": cannot write " + it.dtype);
            if (header.has(it.name)) throw new IllegalArgumentException("duplicate tensor name " + it.name);
            ObjectNode e = header.putObject(it.name);
            e.put("dtype", it.dtype.safetensorsName());
            ArrayNode sh = e.putArray("shape");
            for (long d : it.shape) sh.add(d);
            long end = offset + it.bytes();
            e.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8; // the data area starts 8-byte aligned, as safetensors writes it
        byte[] hdr = Arrays.copyOf(json, padded);
        Arrays.fill(hdr, json.length, padded, (byte) ' ');

        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + target.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, padded);
                writeFully(ch, len);
                writeFully(ch, ByteBuffer.wrap(hdr));
                for (Item it : items) {
                    double[] v = it.data.get();
                    if (v.length * (long) it.dtype.byteSize() != it.bytes())
                        throw new IllegalStateException("tensor " + it.name + ": " + v.length + " values for shape " + Arrays.toString(it.shape));
                    writeFully(ch, encode(v, it.dtype));
                }
                ch.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException ignored) {
            // directories cannot be opened for fsync on every platform; the file itself is already durable
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    static ByteBuffer encode(double[] v, DType t) {
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact((long) v.length * t.byteSize())).order(ByteOrder.LITTLE_ENDIAN);
        switch (t) {
            case F64 -> { for (double x : v) b.putDouble(x); }
            case F32 -> { for (double x : v) b.putFloat((float) x); }
            case BF16 -> { for (double x : v) b.putShort(DType.floatToBf16((float) x)); }
            case F16 -> { for (double x : v) b.putShort(Float.floatToFloat16((float) x)); }
            case I64 -> { for (double x : v) b.putLong((long) x); }
            case I32 -> { for (double x : v) b.putInt((int) x); }
            default -> throw new IllegalArgumentException(t.toString());
        }
        return b.flip();
    }
}
