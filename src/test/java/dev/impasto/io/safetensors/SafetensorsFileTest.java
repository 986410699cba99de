package dev.impasto.io.safetensors;

import dev.impasto.io.TensorEntry;
import dev.impasto.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class SafetensorsFileTest {
    @TempDir
    Path dir;

    /** A file from raw header JSON and data bytes. */
    static byte[] file(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        return b.array();
    }

    static SafetensorsFormatException bad(byte[] bytes) {
        return assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.of(MemorySegment.ofArray(bytes), "x.safetensors"));
    }

    static byte[] f32(float... v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) b.putFloat(f);
        return b.array();
    }

    @Test
    void writerMatchesTheOfficialSerializationByteForByte() throws IOException {
        // safetensors/src/tensor.rs test_serialization: F32 [1,2,3] "attn.0" = 0..5, header exactly 64 bytes
        Path p = dir.resolve("a.safetensors");
        SafetensorsWriter.write(p, null, List.of(SafetensorsWriter.Tensor.ofFloats("attn.0", DType.F32, new long[]{1, 2, 3},
                new float[]{0, 1, 2, 3, 4, 5})));
        byte[] expected = file("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", f32(0, 1, 2, 3, 4, 5));
        assertEquals(64, expected.length - 8 - 24);
        assertArrayEquals(expected, Files.readAllBytes(p));

        // test_serialization_forced_alignement: "attn0" [1,1,2,3]: 65-byte JSON padded with 7 spaces to 72
        SafetensorsWriter.write(p, null, List.of(SafetensorsWriter.Tensor.ofFloats("attn0", DType.F32, new long[]{1, 1, 2, 3},
                new float[]{0, 1, 2, 3, 4, 5})));
        expected = file("{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ", f32(0, 1, 2, 3, 4, 5));
        assertArrayEquals(expected, Files.readAllBytes(p));

        // test_empty: "{}" + 6 spaces; with metadata {"framework":"pt"}: 35 bytes + 5 spaces
        SafetensorsWriter.write(p, Map.of(), List.of());
        assertArrayEquals(file("{}      ", new byte[0]), Files.readAllBytes(p));
        SafetensorsWriter.write(p, Map.of("framework", "pt"), List.of());
        assertArrayEquals(file("{\"__metadata__\":{\"framework\":\"pt\"}}     ", new byte[0]), Files.readAllBytes(p));
    }

    @Test
    void writerSortsByDtypeAlignmentThenNameAndAlignsData() throws IOException {
        Path p = dir.resolve("order.safetensors");
        List<SafetensorsWriter.Tensor> ts = List.of(
                SafetensorsWriter.Tensor.ofFloats("b", DType.BF16, new long[]{3}, new float[]{1, 2, 3}),
                SafetensorsWriter.Tensor.ofFloats("a", DType.BF16, new long[]{1}, new float[]{4}),
                SafetensorsWriter.Tensor.ofBytes("u", DType.U8, new long[]{5}, new byte[]{1, 2, 3, 4, (byte) 255}),
                SafetensorsWriter.Tensor.ofFloats("z", DType.F32, new long[]{2}, new float[]{5, 6}),
                SafetensorsWriter.Tensor.ofFloats("d", DType.F64, new long[]{1}, new float[]{7}),
                SafetensorsWriter.Tensor.ofFloats("h", DType.F16, new long[]{2}, new float[]{0.5f, -2}));
        SafetensorsWriter.write(p, Map.of("format", "pt", "note", "é ü"), ts);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(List.of("d", "z", "a", "b", "h", "u"), f.tensors().stream().map(TensorEntry::name).toList());
            assertEquals(0, f.dataStart() % 8);
            assertEquals(Map.of("format", "pt", "note", "é ü"), f.metadata());
            assertArrayEquals(new float[]{7}, f.readFloats("d"));
            assertArrayEquals(new float[]{5, 6}, f.readFloats("z"));
            assertArrayEquals(new float[]{1, 2, 3}, f.readFloats("b"));
            assertArrayEquals(new float[]{0.5f, -2}, f.readFloats("h"));
            assertArrayEquals(new float[]{1, 2, 3, 4, 255}, f.readFloats("u"));
            TensorEntry b = f.tensor("b");
            assertEquals(DType.BF16, b.dtype());
            assertArrayEquals(new long[]{3}, b.shape());
            assertEquals(6, b.byteSize());
            assertTrue(b.data().isReadOnly());
            assertEquals(p, b.file());
        }
    }

    @Test
    void floatsAreRoundedToNearestEvenWhenWritten() throws IOException {
        Path p = dir.resolve("r.safetensors");
        float v = 1 + 0x1.8p-8f; // 3/4 of a bf16 ulp above 1: rounds up to 1 + 2^-7
        SafetensorsWriter.write(p, null, List.of(SafetensorsWriter.Tensor.ofFloats("t", DType.BF16, new long[]{2}, new float[]{v, 1 + 0x1p-8f})));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            float[] r = f.readFloats("t");
            assertEquals(DType.bf16ToFloat(DType.floatToBf16(v)), r[0]);
            assertEquals(1f, r[1], "exact halfway 1 + 2^-8 rounds to even (1.0)");
        }
    }

    @Test
    void unsupportedButValidDtypesAreListedAndRefusedWhenRead() throws IOException {
        byte[] bytes = file("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2,2],\"data_offsets\":[0,4]},"
                + "\"f4\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[4,6]}}", new byte[]{1, 2, 3, 4, 5, 6});
        try (SafetensorsFile f = SafetensorsFile.of(MemorySegment.ofArray(bytes), "fp8.safetensors")) {
            TensorEntry w = f.tensor("w");
            assertEquals("F8_E4M3", w.typeName());
            assertFalse(w.isSupported());
            assertEquals(4, w.byteSize());
            assertEquals(2, f.tensor("f4").byteSize());
            IllegalStateException e = assertThrows(IllegalStateException.class, w::dtype);
            assertTrue(e.getMessage().contains("\"w\"") && e.getMessage().contains("F8_E4M3"), e.getMessage());
            SafetensorsFormatException e2 = assertThrows(SafetensorsFormatException.class, () -> f.readFloats("w"));
            assertTrue(e2.getMessage().contains("F8_E4M3"));
        }
    }

    @Test
    void sizeOfSubByteTypesMustBeWholeBytes() {
        var e = bad(file("{\"f4\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", new byte[2]));
        assertTrue(e.getMessage().contains("whole bytes"), e.getMessage());
    }

    @Test
    void closingUnmapsAndLaterAccessFailsCleanly() throws IOException {
        Path p = dir.resolve("c.safetensors");
        SafetensorsWriter.write(p, null, List.of(SafetensorsWriter.Tensor.ofFloats("t", DType.F32, new long[]{4}, new float[]{1, 2, 3, 4})));
        SafetensorsFile f = SafetensorsFile.open(p);
        TensorEntry t = f.tensor("t");
        assertEquals(3f, t.getFloat(2));
        f.close();
        f.close();
        assertThrows(IllegalStateException.class, () -> t.getFloat(0));
    }

    @Test
    void eachMalformationGetsItsOwnMessage() {
        byte[] d16 = new byte[16];
        String ok = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
        Map<String, byte[]> cases = new LinkedHashMap<>();
        cases.put("too short", new byte[5]);
        cases.put("more than the 100 MB", ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(200_000_000L).array());
        cases.put("truncated", ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(50).array());
        cases.put("not valid UTF-8", file("{\"\u00e9\":1}", new byte[0]));
        cases.put("does not start with '{'", file("[1,2]   ", new byte[0]));
        cases.put("malformed", file("{\"a\":{\"dtype\":", new byte[0]));
        cases.put("Duplicate field", file("{" + ok + "," + ok + "}", new byte[8]));
        cases.put("unknown dtype \"Q4\"", file("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]));
        cases.put("shape dimension 0 is -2", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", new byte[8]));
        cases.put("overflows 64 bits", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", new byte[8]));
        cases.put("span 12", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", new byte[12]));
        cases.put("end before they begin", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", new byte[8]));
        cases.put("overlap", file("{" + ok + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]));
        cases.put("without holes", file("{" + ok + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", new byte[20]));
        cases.put("after the last tensor", file("{" + ok + "}", d16));
        cases.put("is truncated: tensor \"b\"", file("{" + ok + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", new byte[12]));
        cases.put("not a [begin, end] pair", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", new byte[8]));
        cases.put("lacks \"shape\"", file("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", new byte[8]));
        cases.put("allows only strings", file("{\"__metadata__\":{\"x\":1}}", new byte[0]));
        cases.put("not a non-negative integer", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", new byte[8]));
        cases.put("a GGUF file", "GGUF\u0003\0\0\0\0\0\0\0\0\0\0\0".getBytes(StandardCharsets.ISO_8859_1));
        for (Map.Entry<String, byte[]> c : cases.entrySet()) {
            byte[] b = c.getValue();
            if (c.getKey().equals("not valid UTF-8")) {
                b = b.clone();
                b[11] = (byte) 0xff; // break the é's second byte
            }
            SafetensorsFormatException e = bad(b);
            assertTrue(e.getMessage().contains(c.getKey()), c.getKey() + " -> " + e.getMessage());
            assertTrue(e.getMessage().startsWith("x.safetensors"), e.getMessage());
        }
    }

    @Test
    void zeroSizedTensorsAndEmptyFilesAreValid() throws IOException {
        byte[] bytes = file("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", f32(9));
        try (SafetensorsFile f = SafetensorsFile.of(MemorySegment.ofArray(bytes), "z")) {
            assertEquals(0, f.tensor("e").byteSize());
            assertArrayEquals(new long[]{0, 3}, f.tensor("e").shape());
            assertArrayEquals(new float[]{9}, f.readFloats("a"));
        }
    }

    @Test
    void atomicWriteReplacesOnSuccessAndKeepsTheOldFileOnFailure() throws IOException {
        Path p = dir.resolve("m.safetensors");
        SafetensorsWriter.write(p, null, List.of(SafetensorsWriter.Tensor.ofFloats("t", DType.F32, new long[]{1}, new float[]{1})));
        byte[] before = Files.readAllBytes(p);
        List<SafetensorsWriter.Tensor> failing = List.of(
                SafetensorsWriter.Tensor.ofFloats("a", DType.F32, new long[]{1}, new float[]{2}),
                SafetensorsWriter.Tensor.lazy("b", DType.F32, new long[]{1}, () -> {
                    throw new IOException("GPU copy failed");
                }));
        IOException e = assertThrows(IOException.class, () -> SafetensorsWriter.write(p, null, failing));
        assertEquals("GPU copy failed", e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(p));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of("m.safetensors"), s.map(x -> x.getFileName().toString()).toList(), "no temporary file left behind");
        }
        IllegalArgumentException wrongSize = assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.write(p, null,
                List.of(SafetensorsWriter.Tensor.ofBytes("w", DType.F32, new long[]{2}, new byte[4]))));
        assertTrue(wrongSize.getMessage().contains("\"w\""));
        assertArrayEquals(before, Files.readAllBytes(p));
        SafetensorsWriter.write(p, null, List.of(SafetensorsWriter.Tensor.ofFloats("t", DType.F32, new long[]{1}, new float[]{3})));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertArrayEquals(new float[]{3}, f.readFloats("t"));
        }
    }

    @Test
    void lazyTensorsAreProducedOneAtATimeInWriteOrder() throws IOException {
        List<String> produced = new ArrayList<>();
        List<SafetensorsWriter.Tensor> ts = new ArrayList<>();
        for (String n : List.of("c", "a", "b"))
            ts.add(SafetensorsWriter.Tensor.lazyFloats(n, DType.BF16, new long[]{2}, () -> {
                produced.add(n);
                return new float[]{n.charAt(0), 1};
            }));
        Path p = dir.resolve("lazy.safetensors");
        SafetensorsWriter.write(p, null, ts);
        assertEquals(List.of("a", "b", "c"), produced);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertArrayEquals(new float[]{'b', 1}, f.readFloats("b"));
        }
    }

    @Test
    void copiedEntriesRoundTripBitExactIncludingUnsupportedTypes() throws IOException {
        byte[] src = file("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", new byte[]{1, 2, 3, 4});
        Path p = dir.resolve("copy.safetensors");
        try (SafetensorsFile f = SafetensorsFile.of(MemorySegment.ofArray(src), "src")) {
            SafetensorsWriter.write(p, null, List.of(SafetensorsWriter.Tensor.copyOf("renamed", f.tensor("w"))));
        }
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals("F8_E4M3", f.tensor("renamed").typeName());
            assertArrayEquals(new byte[]{1, 2, 3, 4}, f.tensor("renamed").data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void openReportsDirectoriesAndMissingFiles() {
        assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(dir));
        assertThrows(java.nio.file.NoSuchFileException.class, () -> SafetensorsFile.open(dir.resolve("nope.safetensors")));
        assertTrue(Arrays.asList(SafetensorsDType.values()).contains(SafetensorsDType.F8_E4M3));
    }
}
