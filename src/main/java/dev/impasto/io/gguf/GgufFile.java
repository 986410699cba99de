package dev.impasto.io.gguf;

import dev.impasto.quant.GgmlType;

import dev.impasto.io.Shapes;
import dev.impasto.io.MappedFiles;
import dev.impasto.io.TensorCodec;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A GGUF file (versions 2 and 3, little-endian) mapped into memory, its header validated against the file size:
 * counts, string lengths, array lengths, dimensions, types, offsets and alignment are all checked before anything
 * is trusted, so a corrupt or hostile file gives a {@link GgufFormatException} naming the field, never a crash.
 * Tensor data are read-only bounds-checked slices of the mapping, valid until {@link #close()}.
 */
public final class GgufFile implements AutoCloseable {
    public static final int MAGIC = 0x46554747; // "GGUF" little-endian
    public static final int DEFAULT_ALIGNMENT = 32;
    public static final int MAX_DIMS = 4;
    private static final int MAX_ARRAY_NESTING = 16;

    private final String displayName;
    private final Path path;
    private final Arena arena;
    private final int version;
    private final long fileSize;
    private final int alignment;
    private final long dataStart;
    private final Map<String, GgufValue> metadata;
    private final List<GgufTensor> tensors;
    private final Map<String, GgufTensor> byName;

    private GgufFile(String displayName, Path path, Arena arena, int version, long fileSize, int alignment, long dataStart,
                     Map<String, GgufValue> metadata, List<GgufTensor> tensors) {
        this.displayName = displayName;
        this.path = path;
        this.arena = arena;
        this.version = version;
        this.fileSize = fileSize;
        this.alignment = alignment;
        this.dataStart = dataStart;
        this.metadata = metadata;
        this.tensors = tensors;
        Map<String, GgufTensor> m = new LinkedHashMap<>();
        for (GgufTensor t : tensors) m.put(t.name(), t);
        this.byName = Collections.unmodifiableMap(m);
    }

    /** True when the file starts with the GGUF magic. */
    public static boolean isGguf(Path p) throws IOException {
        if (!Files.isRegularFile(p) || Files.size(p) < 4) return false;
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(4);
            while (b.hasRemaining() && ch.read(b) >= 0) { }
            return b.flip().remaining() == 4 && b.order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(0) == MAGIC;
        }
    }

    public static GgufFile open(Path path) throws IOException {
        if (Files.isDirectory(path)) throw new GgufFormatException(path + " is a directory, not a GGUF file");
        return MappedFiles.map(path, (contents, arena) -> parse(path.toString(), path, contents, arena));
    }

    /** Parses GGUF bytes already in memory; the caller keeps ownership of the segment. */
    public static GgufFile of(MemorySegment contents, String displayName) throws GgufFormatException {
        return parse(displayName, null, contents.asReadOnly(), null);
    }

    /** Bounds-checked little-endian reader over the header. */
    private static final class Cursor {
        final String name;
        final MemorySegment seg;
        long pos;
        String context = "the header";

        Cursor(String name, MemorySegment seg) {
            this.name = name;
            this.seg = seg;
        }

        void need(long n) throws GgufFormatException {
            if (n < 0 || n > seg.byteSize() - pos)
                throw new GgufFormatException(name + ": the file is truncated: reading " + context + " needs " + Long.toUnsignedString(n)
                        + " bytes at offset " + pos + " but the file has " + seg.byteSize()
                        + " bytes: re-download it");
        }

        int u8() throws GgufFormatException {
            need(1);
            return seg.get(ValueLayout.JAVA_BYTE, pos++) & 0xff;
        }

        short i16() throws GgufFormatException {
            need(2);
            short v = seg.get(TensorCodec.LE_SHORT, pos);
            pos += 2;
            return v;
        }

        int i32() throws GgufFormatException {
            need(4);
            int v = seg.get(TensorCodec.LE_INT, pos);
            pos += 4;
            return v;
        }

        long i64() throws GgufFormatException {
            need(8);
            long v = seg.get(TensorCodec.LE_LONG, pos);
            pos += 8;
            return v;
        }

        long remaining() {
            return seg.byteSize() - pos;
        }

        /** u64 length + bytes; strict UTF-8 for keys and names, lenient (replacement) for values. */
        String string(boolean strict) throws GgufFormatException {
            long len = i64();
            if (len < 0 || len > remaining())
                throw new GgufFormatException(name + ": " + context + ": a string claims " + Long.toUnsignedString(len)
                        + " bytes at offset " + (pos - 8) + " but only " + remaining()
                        + " bytes are left in the file: the file is truncated or corrupt; re-download it");
            if (len > Integer.MAX_VALUE - 16)
                throw new GgufFormatException(name + ": " + context + ": a string of " + len + " bytes is absurd: the file is corrupt");
            byte[] b = seg.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
            pos += len;
            CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder();
            CodingErrorAction action = strict ? CodingErrorAction.REPORT : CodingErrorAction.REPLACE;
            dec.onMalformedInput(action).onUnmappableCharacter(action);
            ByteBuffer in = ByteBuffer.wrap(b);
            CharBuffer out = CharBuffer.allocate(b.length);
            CoderResult r = dec.decode(in, out, true);
            if (!r.isError()) r = dec.flush(out);
            if (r.isError())
                throw new GgufFormatException(name + ": " + context + ": a name is not valid UTF-8 (offset " + (pos - len + in.position())
                        + "): the file is corrupt; re-download it");
            return out.flip().toString();
        }
    }

    private static GgufFile parse(String name, Path path, MemorySegment seg, Arena arena) throws GgufFormatException {
        long size = seg.byteSize();
        Cursor c = new Cursor(name, seg);
        if (size < 4) throw new GgufFormatException(name + ": the file is " + size + " bytes, too short for GGUF: it is truncated; re-download it");
        int magic = c.i32();
        if (magic != MAGIC) {
            String got = magicString(seg);
            throw new GgufFormatException(name + ": not a GGUF file (it starts with " + got + ", GGUF files start with \"GGUF\")"
                    + (got.startsWith("\"GGML") || got.startsWith("\"ggjt") || got.startsWith("\"ggml") ? ": this is a pre-GGUF ggml file; re-convert it with a current llama.cpp" : ""));
        }
        c.context = "the version";
        int version = c.i32();
        if (version == 1)
            throw new GgufFormatException(name + ": GGUF version 1 (2023, 32-bit counts) is not supported: re-convert the model with a current "
                    + "gguf-py / llama.cpp (versions 2 and 3 are read)");
        if (version != 2 && version != 3) {
            if (Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3)
                throw new GgufFormatException(name + ": this is a big-endian GGUF file, which impasto does not read: use the little-endian file");
            throw new GgufFormatException(name + ": GGUF version " + Integer.toUnsignedString(version)
                    + " is not supported (impasto reads versions 2 and 3): the file is newer than impasto or corrupt");
        }
        c.context = "the tensor count";
        long tensorCount = c.i64();
        c.context = "the metadata count";
        long kvCount = c.i64();
        // each tensor info takes at least 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes
        if (tensorCount < 0 || tensorCount > c.remaining() / 32)
            throw new GgufFormatException(name + ": the header claims " + Long.toUnsignedString(tensorCount)
                    + " tensors, more than a file of " + size + " bytes can describe: the file is corrupt or truncated; re-download it");
        // each key/value takes at least 8 (key length) + 4 (type) + 1 (value) bytes
        if (kvCount < 0 || kvCount > c.remaining() / 13)
            throw new GgufFormatException(name + ": the header claims " + Long.toUnsignedString(kvCount)
                    + " metadata entries, more than a file of " + size + " bytes can hold: the file is corrupt or truncated; re-download it");

        Map<String, GgufValue> metadata = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            c.context = "metadata entry #" + i + " (key)";
            String key = c.string(true);
            c.context = "metadata \"" + key + "\"";
            int typeId = c.i32();
            GgufValue.Type type = GgufValue.Type.byId(typeId);
            if (type == null)
                throw new GgufFormatException(name + ": metadata \"" + key + "\" has value type " + Integer.toUnsignedString(typeId)
                        + ", which GGUF does not define (0..12): the file is corrupt; re-download it");
            GgufValue v = readValue(c, type, 0);
            if (metadata.putIfAbsent(key, v) != null)
                throw new GgufFormatException(name + ": metadata key \"" + key + "\" appears twice: the file is corrupt; re-convert it");
        }

        int alignment = DEFAULT_ALIGNMENT;
        GgufValue al = metadata.get("general.alignment");
        if (al != null) {
            if (al.type() != GgufValue.Type.UINT32)
                throw new GgufFormatException(name + ": general.alignment is a " + al.type() + ", GGUF requires a UINT32: the file is corrupt; re-convert it");
            long a = al.asLong() & 0xffffffffL;
            if (a == 0 || Long.bitCount(a) != 1 || a > (1 << 20))
                throw new GgufFormatException(name + ": general.alignment is " + a + ", not a power of two: the file is corrupt; re-convert it");
            alignment = (int) a;
        }

        record Info(String name, GgmlType type, long[] ne, long offset, long bytes) {}
        List<Info> infos = new ArrayList<>();
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (long i = 0; i < tensorCount; i++) {
            c.context = "tensor info #" + i + " (name)";
            String tname = c.string(true);
            String where = name + ": tensor \"" + tname + "\"";
            c.context = "tensor \"" + tname + "\"";
            if (!seen.add(tname)) throw new GgufFormatException(where + " appears twice: the file is corrupt; re-convert it");
            int nDims = c.i32();
            if (nDims < 1 || nDims > MAX_DIMS)
                throw new GgufFormatException(where + " has " + Integer.toUnsignedString(nDims) + " dimensions; GGUF allows 1 to "
                        + MAX_DIMS + ": the file is corrupt; re-download it");
            long[] ne = new long[nDims];
            long numel = 1;
            for (int d = 0; d < nDims; d++) {
                ne[d] = c.i64();
                if (ne[d] < 0)
                    throw new GgufFormatException(where + " has dimension " + Long.toUnsignedString(ne[d]) + ": the file is corrupt; re-download it");
                try {
                    numel = Math.multiplyExact(numel, ne[d]);
                } catch (ArithmeticException e) {
                    throw new GgufFormatException(where + ": its dimensions overflow 64 bits: the file is corrupt; re-download it");
                }
            }
            int typeId = c.i32();
            GgmlType type = GgmlType.byIdOrNull(typeId);
            if (type == null)
                throw new GgufFormatException(where + " has ggml type " + Integer.toUnsignedString(typeId)
                        + ", which is not a ggml type impasto knows (retired or newer than impasto): re-quantize it to Q8_0/Q4_K/...");
            long bytes;
            try {
                bytes = type.byteSize(ne);
            } catch (ArithmeticException e) {
                throw new GgufFormatException(where + ": its byte size overflows 64 bits: the file is corrupt; re-download it");
            }
            if (bytes < 0)
                throw new GgufFormatException(where + ": its innermost dimension " + ne[0] + " is not a multiple of the "
                        + type + " block size " + type.blockSize() + ": the file is corrupt; re-convert it");
            long offset = c.i64();
            if (offset < 0 || offset % alignment != 0)
                throw new GgufFormatException(where + " has data offset " + Long.toUnsignedString(offset) + ", not a multiple of the alignment "
                        + alignment + ": the file is corrupt; re-convert it");
            infos.add(new Info(tname, type, ne, offset, bytes));
        }
        long dataStart = alignUp(c.pos, alignment);
        long dataLength = size - Math.min(size, dataStart);
        Info truncated = null;
        long truncatedEnd = -1;
        for (Info t : infos) {
            long end = t.offset > Long.MAX_VALUE - t.bytes ? Long.MAX_VALUE : t.offset + t.bytes;
            if ((dataStart > size || end > dataLength) && end > truncatedEnd) {
                truncated = t;
                truncatedEnd = end;
            }
        }
        if (truncated != null)
            throw new GgufFormatException(name + ": the file is truncated: tensor \"" + truncated.name + "\" (" + truncated.type + " "
                    + Shapes.format(reversed(truncated.ne)) + ") ends at byte "
                    + (truncatedEnd > Long.MAX_VALUE - dataStart ? "beyond 2^63" : Long.toString(dataStart + truncatedEnd))
                    + " but the file has " + size + " bytes: re-download it");
        List<Info> sorted = new ArrayList<>(infos);
        sorted.sort(Comparator.comparingLong(Info::offset));
        for (int i = 1; i < sorted.size(); i++) {
            Info a = sorted.get(i - 1), b = sorted.get(i);
            if (a.bytes > 0 && b.bytes > 0 && b.offset < a.offset + a.bytes)
                throw new GgufFormatException(name + ": tensors \"" + a.name + "\" and \"" + b.name + "\" overlap in the data section: "
                        + "the file is corrupt; re-download it");
        }
        List<GgufTensor> tensors = new ArrayList<>(infos.size());
        for (Info t : infos) {
            long[] shape = origShape(metadata, t.name, reversed(t.ne));
            tensors.add(new GgufTensor(t.name, t.type, shape, t.ne, t.offset, seg.asSlice(dataStart + t.offset, t.bytes), path));
        }
        return new GgufFile(name, path, arena, version, size, alignment, dataStart, Collections.unmodifiableMap(metadata),
                Collections.unmodifiableList(tensors));
    }

    private static GgufValue readValue(Cursor c, GgufValue.Type type, int depth) throws GgufFormatException {
        return switch (type) {
            case UINT8 -> new GgufValue(type, null, (long) c.u8());
            case INT8 -> new GgufValue(type, null, (long) (byte) c.u8());
            case UINT16 -> new GgufValue(type, null, (long) (c.i16() & 0xffff));
            case INT16 -> new GgufValue(type, null, (long) c.i16());
            case UINT32 -> new GgufValue(type, null, c.i32() & 0xffffffffL);
            case INT32 -> new GgufValue(type, null, (long) c.i32());
            case UINT64, INT64 -> new GgufValue(type, null, c.i64());
            case FLOAT32 -> new GgufValue(type, null, Float.intBitsToFloat(c.i32()));
            case FLOAT64 -> new GgufValue(type, null, Double.longBitsToDouble(c.i64()));
            case BOOL -> {
                int b = c.u8();
                if (b > 1)
                    throw new GgufFormatException(c.name + ": " + c.context + ": a bool holds " + b + " (must be 0 or 1): the file is corrupt; re-download it");
                yield new GgufValue(type, null, b == 1);
            }
            case STRING -> new GgufValue(type, null, c.string(false));
            case ARRAY -> {
                if (depth >= MAX_ARRAY_NESTING)
                    throw new GgufFormatException(c.name + ": " + c.context + ": arrays nested more than " + MAX_ARRAY_NESTING
                            + " deep: the file is corrupt");
                int et = c.i32();
                GgufValue.Type elementType = GgufValue.Type.byId(et);
                if (elementType == null)
                    throw new GgufFormatException(c.name + ": " + c.context + ": array element type " + Integer.toUnsignedString(et)
                            + " is not a GGUF type (0..12): the file is corrupt; re-download it");
                long count = c.i64();
                long minSize = switch (elementType) {
                    case UINT8, INT8, BOOL -> 1;
                    case UINT16, INT16 -> 2;
                    case UINT32, INT32, FLOAT32 -> 4;
                    case UINT64, INT64, FLOAT64, STRING -> 8;
                    case ARRAY -> 12;
                };
                if (count < 0 || count > c.remaining() / minSize)
                    throw new GgufFormatException(c.name + ": " + c.context + ": an array claims " + Long.toUnsignedString(count)
                            + " elements of " + elementType + " but only " + c.remaining()
                            + " bytes are left in the file: the file is truncated or corrupt; re-download it");
                List<Object> list = new ArrayList<>((int) Math.min(count, 1 << 16));
                for (long i = 0; i < count; i++) {
                    GgufValue v = readValue(c, elementType, depth + 1);
                    list.add(elementType == GgufValue.Type.ARRAY ? v : v.value());
                }
                yield new GgufValue(type, elementType, Collections.unmodifiableList(list));
            }
        };
    }

    /** ComfyUI-GGUF records shapes it had to flatten under "comfy.gguf.orig_shape.NAME"; honour it when it fits. */
    private static long[] origShape(Map<String, GgufValue> md, String name, long[] shape) {
        GgufValue v = md.get("comfy.gguf.orig_shape." + name);
        if (v == null || !v.isArray() || !v.elementType().isInteger()) return shape;
        List<Object> l = v.asList();
        long[] s = new long[l.size()];
        try {
            for (int i = 0; i < s.length; i++) {
                s[i] = (Long) l.get(i);
                if (s[i] < 0) return shape;
            }
            return Shapes.numel(s) == Shapes.numel(shape) ? s : shape;
        } catch (ArithmeticException e) {
            return shape;
        }
    }

    private static long[] reversed(long[] ne) {
        long[] s = new long[ne.length];
        for (int i = 0; i < ne.length; i++) s[i] = ne[ne.length - 1 - i];
        return s;
    }

    private static long alignUp(long x, long a) {
        return (x + a - 1) / a * a;
    }

    private static String magicString(MemorySegment seg) {
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < 4; i++) {
            int b = seg.get(ValueLayout.JAVA_BYTE, i) & 0xff;
            sb.append(b >= 0x20 && b < 0x7f ? String.valueOf((char) b) : String.format("\\x%02x", b));
        }
        return sb.append('"').toString();
    }

    public Path path() {
        return path;
    }

    public String displayName() {
        return displayName;
    }

    public int version() {
        return version;
    }

    public long fileSize() {
        return fileSize;
    }

    public int alignment() {
        return alignment;
    }

    /** Offset of the tensor data section from the start of the file. */
    public long dataStart() {
        return dataStart;
    }

    /** Key/value metadata in file order. */
    public Map<String, GgufValue> metadata() {
        return metadata;
    }

    public Optional<GgufValue> meta(String key) {
        return Optional.ofNullable(metadata.get(key));
    }

    /** Tensors in the order of the header. */
    public List<GgufTensor> tensors() {
        return tensors;
    }

    public Map<String, GgufTensor> tensorMap() {
        return byName;
    }

    public Optional<GgufTensor> find(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    public GgufTensor tensor(String name) {
        GgufTensor t = byName.get(name);
        if (t == null) throw new IllegalArgumentException(displayName + " has no tensor \"" + name + "\"");
        return t;
    }

    @Override
    public void close() {
        if (arena != null && arena.scope().isAlive()) arena.close();
    }

    @Override
    public String toString() {
        return "GgufFile[" + displayName + ", v" + version + ", " + tensors.size() + " tensors]";
    }
}
