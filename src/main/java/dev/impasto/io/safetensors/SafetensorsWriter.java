package dev.impasto.io.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.impasto.io.AtomicFiles;
import dev.impasto.io.Shapes;
import dev.impasto.io.TensorCodec;
import dev.impasto.io.TensorEntry;
import dev.impasto.tensor.DType;
import dev.impasto.util.ProgressBar;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * Writes safetensors files the way the official library does (huggingface/safetensors, {@code prepare} in
 * safetensors/src/tensor.rs): tensors sorted by dtype alignment descending then by name, data laid out in that
 * order, compact JSON header with {@code __metadata__} first, padded with spaces to a multiple of 8 bytes so every
 * tensor starts 8-aligned.
 *
 * <p>Files are written atomically: into a temporary file in the target's directory, fsynced, renamed over the
 * target, then the directory is fsynced, so a crash leaves either the old file or the complete new one, never a
 * truncated one. Data is streamed: each {@link Tensor}'s bytes are produced only when it is written, so a 24 GB
 * checkpoint can be written holding one tensor at a time.
 */
public final class SafetensorsWriter {
    private static final int CHUNK = 4 << 20;

    private SafetensorsWriter() {}

    /** Produces a tensor's bytes when it is written. */
    @FunctionalInterface
    public interface DataSupplier {
        MemorySegment get() throws IOException;
    }

    /** Produces a tensor's values as floats when it is written; they are rounded to the tensor's dtype. */
    @FunctionalInterface
    public interface FloatSupplier {
        float[] get() throws IOException;
    }

    /** One tensor to write. Build with the static factories. */
    public static final class Tensor {
        private final String name;
        private final SafetensorsDType type;
        private final long[] shape;
        private final long byteSize;
        private final DataSupplier data;

        private Tensor(String name, SafetensorsDType type, long[] shape, DataSupplier data) {
            this.name = Objects.requireNonNull(name, "name");
            if (name.equals("__metadata__")) throw new IllegalArgumentException("\"__metadata__\" cannot name a tensor");
            this.type = Objects.requireNonNull(type, "type");
            this.shape = shape.clone();
            for (long d : shape) if (d < 0) throw new IllegalArgumentException(name + ": negative dimension in " + Shapes.format(shape));
            this.byteSize = type.byteSize(Shapes.numel(shape));
            if (byteSize < 0) throw new IllegalArgumentException(name + ": " + Shapes.format(shape) + " of " + type + " is not whole bytes");
            this.data = data;
        }

        /** Raw little-endian bytes of {@code dtype}, exactly shape x dtype in size. */
        public static Tensor of(String name, DType dtype, long[] shape, MemorySegment data) {
            return lazy(name, dtype, shape, () -> data);
        }

        /** Raw little-endian bytes, exactly shape x dtype in size. */
        public static Tensor ofBytes(String name, DType dtype, long[] shape, byte[] data) {
            return lazy(name, dtype, shape, () -> MemorySegment.ofArray(data));
        }

        /** Float values rounded to {@code dtype} (BF16/F16 round to nearest even). */
        public static Tensor ofFloats(String name, DType dtype, long[] shape, float[] values) {
            return lazyFloats(name, dtype, shape, () -> values);
        }

        /** A tensor read from a file, copied as stored (any safetensors dtype, FP8 included); keep the file open until written. */
        public static Tensor copyOf(TensorEntry entry) {
            return copyOf(entry.name(), entry);
        }

        /** A tensor read from a file, copied as stored under a new name. */
        public static Tensor copyOf(String name, TensorEntry entry) {
            SafetensorsDType t = SafetensorsDType.byName(entry.typeName());
            if (t == null) throw new IllegalArgumentException(entry.name() + ": " + entry.typeName() + " is not a safetensors dtype");
            return new Tensor(name, t, entry.shape(), entry::data);
        }

        /** Bytes produced by {@code data} when the tensor is written (then released by the writer). */
        public static Tensor lazy(String name, DType dtype, long[] shape, DataSupplier data) {
            return new Tensor(name, SafetensorsDType.of(dtype), shape, data);
        }

        /** Floats produced by {@code values} when the tensor is written, rounded to {@code dtype}. */
        public static Tensor lazyFloats(String name, DType dtype, long[] shape, FloatSupplier values) {
            long numel = Shapes.numel(shape);
            return new Tensor(name, SafetensorsDType.of(dtype), shape, () -> {
                float[] v = values.get();
                if (v.length != numel)
                    throw new IllegalArgumentException(name + ": shape " + Shapes.format(shape) + " holds " + numel + " values, got " + v.length);
                return TensorCodec.encode(v, dtype, Arena.ofAuto());
            });
        }

        public String name() {
            return name;
        }

        public SafetensorsDType type() {
            return type;
        }

        public long[] shape() {
            return shape.clone();
        }

        public long byteSize() {
            return byteSize;
        }
    }

    /** Writes one file atomically. */
    public static void write(Path target, Map<String, String> metadata, Collection<Tensor> tensors) throws IOException {
        write(target, metadata, tensors, null);
    }

    /** Writes one file atomically, advancing {@code progress} (in bytes) as it goes. */
    public static void write(Path target, Map<String, String> metadata, Collection<Tensor> tensors, ProgressBar progress) throws IOException {
        List<Tensor> sorted = officialOrder(tensors);
        byte[] header = header(metadata, sorted);
        AtomicFiles.write(target, ch -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            AtomicFiles.writeFully(ch, len);
            AtomicFiles.writeFully(ch, ByteBuffer.wrap(header));
            ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
            MemorySegment bufSeg = MemorySegment.ofBuffer(buf);
            for (Tensor t : sorted) {
                MemorySegment data = t.data.get();
                if (data.byteSize() != t.byteSize)
                    throw new IllegalArgumentException("tensor \"" + t.name + "\": " + Shapes.format(t.shape) + " of " + t.type
                            + " is " + t.byteSize + " bytes but its data has " + data.byteSize());
                for (long off = 0; off < t.byteSize; off += CHUNK) {
                    int n = (int) Math.min(CHUNK, t.byteSize - off);
                    MemorySegment.copy(data, off, bufSeg, 0, n);
                    buf.clear().limit(n);
                    AtomicFiles.writeFully(ch, buf);
                    if (progress != null) progress.step(n);
                }
            }
        });
    }

    /**
     * Writes {@code tensors} into shards of at most {@code maxShardBytes} of data each (a bigger tensor gets a shard
     * of its own), named as Hugging Face does: {@code <base>-00001-of-00003.safetensors} plus
     * {@code <base>.safetensors.index.json}; a single shard is written as {@code <base>.safetensors} with no index.
     * Tensors go to shards in the order given. Returns the files written, the index last.
     */
    public static List<Path> writeSharded(Path dir, String baseName, long maxShardBytes, Map<String, String> metadata,
                                          List<Tensor> tensors) throws IOException {
        List<List<Tensor>> shards = new ArrayList<>();
        List<Tensor> cur = new ArrayList<>();
        long curBytes = 0;
        for (Tensor t : tensors) {
            if (!cur.isEmpty() && curBytes + t.byteSize > maxShardBytes) {
                shards.add(cur);
                cur = new ArrayList<>();
                curBytes = 0;
            }
            cur.add(t);
            curBytes += t.byteSize;
        }
        if (!cur.isEmpty() || shards.isEmpty()) shards.add(cur);
        Files.createDirectories(dir);
        List<Path> written = new ArrayList<>();
        if (shards.size() == 1) {
            Path p = dir.resolve(baseName + ".safetensors");
            write(p, metadata, shards.getFirst());
            written.add(p);
            return written;
        }
        Map<String, String> weightMap = new TreeMap<>();
        long total = 0;
        for (int i = 0; i < shards.size(); i++) {
            String file = String.format("%s-%05d-of-%05d.safetensors", baseName, i + 1, shards.size());
            Path p = dir.resolve(file);
            write(p, metadata, shards.get(i));
            written.add(p);
            for (Tensor t : shards.get(i)) {
                weightMap.put(t.name, file);
                total += t.byteSize;
            }
        }
        Path index = dir.resolve(baseName + ".safetensors.index.json");
        SafetensorsIndex.write(index, weightMap, total);
        written.add(index);
        return written;
    }

    /** The official writer's order: dtype alignment descending, then name (bytewise, as Rust compares strings). */
    static List<Tensor> officialOrder(Collection<Tensor> tensors) {
        List<Tensor> sorted = new ArrayList<>(tensors);
        Set<String> seen = new HashSet<>();
        for (Tensor t : sorted)
            if (!seen.add(t.name)) throw new IllegalArgumentException("tensor \"" + t.name + "\" is given twice");
        sorted.sort((a, b) -> {
            int c = Integer.compare(b.type.ordinal(), a.type.ordinal());
            return c != 0 ? c : Arrays.compareUnsigned(a.name.getBytes(StandardCharsets.UTF_8), b.name.getBytes(StandardCharsets.UTF_8));
        });
        return sorted;
    }

    /** JSON header for tensors already in write order, padded with spaces to a multiple of 8. */
    static byte[] header(Map<String, String> metadata, List<Tensor> sorted) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator g = new JsonFactory().createGenerator(out)) {
            g.writeStartObject();
            if (metadata != null && !metadata.isEmpty()) {
                g.writeObjectFieldStart("__metadata__");
                for (Map.Entry<String, String> e : new TreeMap<>(metadata).entrySet()) g.writeStringField(e.getKey(), e.getValue());
                g.writeEndObject();
            }
            long offset = 0;
            for (Tensor t : sorted) {
                g.writeObjectFieldStart(t.name);
                g.writeStringField("dtype", t.type.name());
                g.writeArrayFieldStart("shape");
                for (long d : t.shape) g.writeNumber(d);
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                g.writeNumber(offset + t.byteSize);
                g.writeEndArray();
                g.writeEndObject();
                offset += t.byteSize;
            }
            g.writeEndObject();
        }
        int pad = (8 - out.size() % 8) % 8;
        for (int i = 0; i < pad; i++) out.write(' ');
        return out.toByteArray();
    }

    /** @deprecated moved to {@link AtomicFiles#write(Path, AtomicFiles.ChannelWriter)}; kept for callers on other branches. */
    @Deprecated
    public static void atomicWrite(Path target, AtomicFiles.ChannelWriter body) throws IOException {
        AtomicFiles.write(target, body);
    }
}
