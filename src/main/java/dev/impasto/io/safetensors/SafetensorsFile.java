package dev.impasto.io.safetensors;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.impasto.io.MappedFiles;
import dev.impasto.io.Shapes;
import dev.impasto.io.TensorCodec;
import dev.impasto.io.TensorEntry;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CoderResult;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A safetensors file mapped into memory (zero copy) with its header fully validated, as strictly as the official
 * reader (huggingface/safetensors, {@code SafeTensors::read_metadata} and {@code Metadata::validate}): header length
 * at most 100 MB and inside the file, UTF-8 JSON object starting with '{', no duplicate keys, known dtypes, sizes
 * that match shape x dtype, and tensors that tile the data area exactly (no overlaps, no holes, nothing after the
 * last tensor). Anything else is a {@link SafetensorsFormatException} naming the file, the tensor and the fix.
 *
 * <p>Tensor data are read-only slices of the mapping: every access is bounds-checked, and after {@link #close()}
 * (which unmaps) an access throws IllegalStateException rather than touching freed memory. The mapping belongs to
 * a shared arena, so tensors may be read from several threads.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The official reader's limit on the JSON header. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final ObjectMapper JSON = strictMapper();

    private final String displayName;
    private final Path path;
    private final Arena arena;
    private final long fileSize;
    private final long headerLength;
    private final Map<String, String> metadata;
    private final List<TensorEntry> tensors;
    private final Map<String, TensorEntry> byName;

    private SafetensorsFile(String displayName, Path path, Arena arena, long fileSize, long headerLength,
                            Map<String, String> metadata, List<TensorEntry> tensors) {
        this.displayName = displayName;
        this.path = path;
        this.arena = arena;
        this.fileSize = fileSize;
        this.headerLength = headerLength;
        this.metadata = metadata;
        this.tensors = tensors;
        Map<String, TensorEntry> m = new LinkedHashMap<>();
        for (TensorEntry t : tensors) m.put(t.name(), t);
        this.byName = Collections.unmodifiableMap(m);
    }

    /** Maps and validates {@code path}. */
    public static SafetensorsFile open(Path path) throws IOException {
        if (Files.isDirectory(path))
            throw new SafetensorsFormatException(path + " is a directory, not a safetensors file");
        return MappedFiles.map(path, (contents, arena) -> parse(path.toString(), path, contents, arena));
    }

    /**
     * Validates safetensors bytes already in memory (a download buffer, a test); the segment stays owned by the
     * caller and {@link #close()} does nothing to it.
     */
    public static SafetensorsFile of(MemorySegment contents, String displayName) throws SafetensorsFormatException {
        return parse(displayName, null, contents.asReadOnly(), null);
    }

    private static SafetensorsFile parse(String name, Path path, MemorySegment file, Arena arena) throws SafetensorsFormatException {
        long size = file.byteSize();
        if (size < 8)
            throw new SafetensorsFormatException(name + ": the file is " + size + " bytes, too short for a safetensors header "
                    + "(8-byte length + JSON): it is truncated or not a safetensors file; re-download it");
        long n = file.get(TensorCodec.LE_LONG, 0);
        String other = sniffOtherFormat(file);
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw new SafetensorsFormatException(name + ": the header length field says " + Long.toUnsignedString(n)
                    + " bytes, more than the 100 MB safetensors allows: " + (other != null ? "this is " + other + ", not a safetensors file"
                    : "the file is not a safetensors file or its first bytes are corrupt; re-download it"));
        }
        if (n > size - 8) {
            throw new SafetensorsFormatException(name + ": the header length field says " + n + " bytes but the file has only "
                    + (size - 8) + " after it: " + (other != null ? "this is " + other + ", not a safetensors file"
                    : "the file is truncated (an interrupted download?); re-download it"));
        }
        if (n < 2)
            throw new SafetensorsFormatException(name + ": the JSON header is " + n + " bytes long, too short to be a JSON object: "
                    + "the file is corrupt; re-download it");
        byte[] headerBytes = file.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
        String header = decodeUtf8(name, headerBytes);
        if (header.charAt(0) != '{')
            throw new SafetensorsFormatException(name + ": the header does not start with '{' (it starts with "
                    + describeChar(header.charAt(0)) + "): " + (other != null ? "this is " + other + ", not a safetensors file"
                    : "not a safetensors file, or the file is corrupt; re-download it"));
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JacksonException e) {
            throw new SafetensorsFormatException(name + ": the JSON header is malformed (" + e.getOriginalMessage()
                    + (e.getLocation() != null ? " at character " + e.getLocation().getCharOffset() : "")
                    + "): the file is corrupt or was written by a broken tool; re-download or re-export it", e);
        }
        if (root == null || !root.isObject())
            throw new SafetensorsFormatException(name + ": the JSON header is not an object: the file is corrupt; re-download it");

        long dataLength = size - 8 - n;
        Map<String, String> metadata = Map.of();
        record Placed(String name, SafetensorsDType type, long[] shape, long begin, long end) {}
        List<Placed> placed = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            String key = field.getKey();
            JsonNode v = field.getValue();
            if (key.equals("__metadata__")) {
                metadata = parseMetadata(name, v);
                continue;
            }
            String where = name + ": tensor \"" + key + "\"";
            if (!v.isObject())
                throw new SafetensorsFormatException(where + ": the header entry is " + v.getNodeType().name().toLowerCase()
                        + ", not an object with dtype, shape and data_offsets: the file is corrupt; re-export it");
            JsonNode dtypeNode = v.get("dtype"), shapeNode = v.get("shape"), offsetsNode = v.get("data_offsets");
            if (dtypeNode == null || shapeNode == null || offsetsNode == null)
                throw new SafetensorsFormatException(where + ": the header entry lacks "
                        + (dtypeNode == null ? "\"dtype\"" : shapeNode == null ? "\"shape\"" : "\"data_offsets\"")
                        + ": the file is corrupt; re-export it");
            if (!dtypeNode.isTextual())
                throw new SafetensorsFormatException(where + ": \"dtype\" is not a string: the file is corrupt; re-export it");
            SafetensorsDType type = SafetensorsDType.byName(dtypeNode.textValue());
            if (type == null)
                throw new SafetensorsFormatException(where + ": unknown dtype \"" + dtypeNode.textValue()
                        + "\" (safetensors defines BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, C64, "
                        + "F8_E4M3, F8_E5M2, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, F6_E2M3, F6_E3M2, F4): the file is corrupt "
                        + "or written by a newer tool; convert it to BF16/F16/F32");
            if (!shapeNode.isArray())
                throw new SafetensorsFormatException(where + ": \"shape\" is not an array: the file is corrupt; re-export it");
            long[] shape = new long[shapeNode.size()];
            for (int i = 0; i < shape.length; i++)
                shape[i] = nonNegative(shapeNode.get(i), where + ": shape dimension " + i);
            if (!offsetsNode.isArray() || offsetsNode.size() != 2)
                throw new SafetensorsFormatException(where + ": \"data_offsets\" is not a [begin, end] pair: the file is corrupt; re-export it");
            long begin = nonNegative(offsetsNode.get(0), where + ": data_offsets begin");
            long end = nonNegative(offsetsNode.get(1), where + ": data_offsets end");
            if (end < begin)
                throw new SafetensorsFormatException(where + ": data_offsets [" + begin + ", " + end
                        + "] end before they begin: the file is corrupt; re-export it");
            long bytes;
            try {
                bytes = type.byteSize(Shapes.numel(shape));
            } catch (ArithmeticException e) {
                throw new SafetensorsFormatException(where + ": shape " + Shapes.format(shape)
                        + " overflows 64 bits when multiplied out: the header is corrupt; re-download it");
            }
            if (bytes < 0)
                throw new SafetensorsFormatException(where + ": shape " + Shapes.format(shape) + " of " + type
                        + " does not fill whole bytes: the header is corrupt; re-export it");
            if (end - begin != bytes)
                throw new SafetensorsFormatException(where + ": shape " + Shapes.format(shape) + " of " + type + " needs " + bytes
                        + " bytes but data_offsets [" + begin + ", " + end + "] span " + (end - begin)
                        + ": the header is corrupt or was edited; re-download the file");
            placed.add(new Placed(key, type, shape, begin, end));
        }

        // The official reader demands the tensors tile the data area exactly. Truncation is by far the commonest
        // cause of a bad layout, so it is checked (and named) first.
        Placed furthest = null;
        for (Placed p : placed) if (furthest == null || p.end > furthest.end) furthest = p;
        if (furthest != null && furthest.end > dataLength)
            throw new SafetensorsFormatException(name + ": the file is truncated: tensor \"" + furthest.name + "\" ends at byte "
                    + (8 + n + furthest.end) + " but the file has " + size + " bytes: re-download it");
        List<Placed> sorted = new ArrayList<>(placed);
        sorted.sort(Comparator.comparingLong(Placed::begin).thenComparingLong(Placed::end));
        long cursor = 0;
        Placed prev = null;
        for (Placed p : sorted) {
            if (p.begin < cursor)
                throw new SafetensorsFormatException(name + ": tensors \"" + prev.name + "\" [" + prev.begin + ", " + prev.end
                        + ") and \"" + p.name + "\" [" + p.begin + ", " + p.end + ") overlap in the data area: the file is corrupt "
                        + "or was written by a broken tool; re-download or re-export it");
            if (p.begin > cursor)
                throw new SafetensorsFormatException(name + ": bytes [" + cursor + ", " + p.begin + ") of the data area belong to no tensor ("
                        + (prev == null ? "before the first tensor \"" + p.name + "\"" : "between \"" + prev.name + "\" and \"" + p.name + "\"")
                        + "); safetensors requires the tensors to cover the data area without holes: the file is corrupt or was "
                        + "written by a non-conforming tool; re-export it with the safetensors library");
            if (p.end > cursor || prev == null) {
                cursor = p.end;
                prev = p;
            }
        }
        if (cursor != dataLength)
            throw new SafetensorsFormatException(name + ": the file has " + (dataLength - cursor) + " bytes after the last tensor "
                    + (prev == null ? "(the header lists no tensors)" : "\"" + prev.name + "\"")
                    + "; safetensors requires the data to end with the last tensor: the file is corrupt or was appended to; re-download it");

        long dataStart = 8 + n;
        List<TensorEntry> entries = new ArrayList<>(sorted.size());
        for (Placed p : sorted) {
            MemorySegment slice = file.asSlice(dataStart + p.begin, p.end - p.begin);
            entries.add(new TensorEntry(p.name, p.type.name(), p.type.dtype(), p.shape, slice, path));
        }
        return new SafetensorsFile(name, path, arena, size, n, metadata, Collections.unmodifiableList(entries));
    }

    private static Map<String, String> parseMetadata(String name, JsonNode v) throws SafetensorsFormatException {
        if (v.isNull()) return Map.of();
        if (!v.isObject())
            throw new SafetensorsFormatException(name + ": \"__metadata__\" is not an object of strings: the file was written by a "
                    + "non-conforming tool; re-export it");
        Map<String, String> m = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : v.properties()) {
            if (!e.getValue().isTextual())
                throw new SafetensorsFormatException(name + ": metadata value \"" + e.getKey() + "\" is a "
                        + e.getValue().getNodeType().name().toLowerCase() + "; safetensors allows only strings there: the file was "
                        + "written by a non-conforming tool; re-export it");
            m.put(e.getKey(), e.getValue().textValue());
        }
        return Collections.unmodifiableMap(m);
    }

    private static String decodeUtf8(String name, byte[] bytes) throws SafetensorsFormatException {
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult r = dec.decode(in, out, true);
        if (!r.isError()) r = dec.flush(out);
        if (r.isError())
            throw new SafetensorsFormatException(name + ": the JSON header is not valid UTF-8 (bad byte at header offset "
                    + in.position() + "): the file is corrupt; re-download it");
        return out.flip().toString();
    }

    private static long nonNegative(JsonNode node, String what) throws SafetensorsFormatException {
        if (node == null || !node.isIntegralNumber() || !node.canConvertToLong() || node.longValue() < 0)
            throw new SafetensorsFormatException(what + " is " + (node == null ? "missing" : node.toString())
                    + ", not a non-negative integer: the header is corrupt; re-download the file");
        return node.longValue();
    }

    private static String describeChar(char c) {
        return c >= 0x20 && c < 0x7f ? "'" + c + "'" : String.format("byte 0x%02x", (int) c);
    }

    /** Names a few formats people hand over by mistake, from their first bytes. */
    private static String sniffOtherFormat(MemorySegment file) {
        if (file.byteSize() >= 4) {
            int magic = file.get(TensorCodec.LE_INT, 0);
            if (magic == 0x46554747) return "a GGUF file (open it as GGUF)";
            if (magic == 0x04034b50) return "a zip archive (a PyTorch .pt/.ckpt pickle?); convert it to safetensors";
        }
        if (file.byteSize() >= 2 && (file.get(ValueLayout.JAVA_BYTE, 0) & 0xff) == 0x80
                && (file.get(ValueLayout.JAVA_BYTE, 1) & 0xff) <= 5) return "a Python pickle; convert it to safetensors";
        return null;
    }

    private static ObjectMapper strictMapper() {
        // headers up to the 100 MB the format allows, with long metadata strings (training configs, ...); duplicate
        // keys are an error (the official reader would silently keep one of them)
        JsonFactory factory = JsonFactory.builder()
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                .streamReadConstraints(StreamReadConstraints.builder()
                        .maxStringLength((int) MAX_HEADER_BYTES).maxNestingDepth(64).build())
                .build();
        return JsonMapper.builder(factory).enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();
    }

    public Path path() {
        return path;
    }

    /** The name used in messages (the path, or the name given to {@link #of}). */
    public String displayName() {
        return displayName;
    }

    public long fileSize() {
        return fileSize;
    }

    /** Length of the JSON header (without the 8-byte length prefix). */
    public long headerLength() {
        return headerLength;
    }

    /** Offset of the data area from the start of the file. */
    public long dataStart() {
        return 8 + headerLength;
    }

    /** The {@code __metadata__} string map (empty when absent), in header order. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** All tensors in file order (by data offset). */
    public List<TensorEntry> tensors() {
        return tensors;
    }

    /** Tensors by name, iterating in file order. */
    public Map<String, TensorEntry> tensorMap() {
        return byName;
    }

    public Optional<TensorEntry> find(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    /** The named tensor; IllegalArgumentException (naming the file) when absent. */
    public TensorEntry tensor(String name) {
        TensorEntry t = byName.get(name);
        if (t == null) throw new IllegalArgumentException(displayName + " has no tensor \"" + name + "\"");
        return t;
    }

    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /** A small tensor's values as floats (BF16/F16/F32/F64, or integers converted). */
    public float[] readFloats(String name) throws SafetensorsFormatException {
        TensorEntry t = tensor(name);
        if (!t.isSupported())
            throw new SafetensorsFormatException(displayName + ": tensor \"" + name + "\" has dtype " + t.typeName()
                    + ", which impasto does not read: convert the file to BF16/F16/F32");
        return t.toFloatArray();
    }

    /** Unmaps the file; tensor data read afterwards throw IllegalStateException. Idempotent. */
    @Override
    public void close() {
        if (arena != null && arena.scope().isAlive()) arena.close();
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + displayName + ", " + tensors.size() + " tensors]";
    }
}
