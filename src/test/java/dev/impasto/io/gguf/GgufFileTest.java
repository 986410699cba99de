package dev.impasto.io.gguf;

import dev.impasto.quant.GgmlType;

import dev.impasto.io.GgufTestWriter;
import dev.impasto.io.TensorCodec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class GgufFileTest {
    @TempDir
    Path dir;

    static GgufTestWriter sample() {
        float[] w = new float[64 * 2];
        for (int i = 0; i < w.length; i++) w[i] = (i % 17) - 8;
        return new GgufTestWriter()
                .kv("general.architecture", GgufValue.Type.STRING, "flux")
                .kv("u8", GgufValue.Type.UINT8, 200L).kv("i8", GgufValue.Type.INT8, -3L)
                .kv("u16", GgufValue.Type.UINT16, 60000L).kv("i16", GgufValue.Type.INT16, -300L)
                .kv("u32", GgufValue.Type.UINT32, 4_000_000_000L).kv("i32", GgufValue.Type.INT32, -7L)
                .kv("f32", GgufValue.Type.FLOAT32, 1.5f).kv("bool", GgufValue.Type.BOOL, true)
                .kv("u64", GgufValue.Type.UINT64, -1L).kv("i64", GgufValue.Type.INT64, -9L).kv("f64", GgufValue.Type.FLOAT64, 2.25)
                .kvArray("arr", GgufValue.Type.INT32, List.of(1L, 2L, 3L))
                .kvArray("nested", GgufValue.Type.ARRAY, List.of(
                        new GgufValue(GgufValue.Type.ARRAY, GgufValue.Type.STRING, List.of("a", "b")),
                        new GgufValue(GgufValue.Type.ARRAY, GgufValue.Type.STRING, List.of("c"))))
                .tensor("img_in.weight", GgmlType.F32, new long[]{2, 3}, GgufTestWriter.f32(new float[]{1, 2, 3, 4, 5, 6}))
                .tensor("double_blocks.0.img_attn.qkv.weight", GgmlType.Q8_0, new long[]{2, 64}, GgufTestWriter.q8_0(w))
                .tensor("q4k", GgmlType.Q4_K, new long[]{3, 256}, new byte[3 * 144])
                .tensor("iq", GgmlType.IQ4_XS, new long[]{1, 256}, new byte[136]);
    }

    @Test
    void readsMetadataOfEveryTypeAndTensorsInPyTorchOrder() throws IOException {
        Path p = sample().write(dir.resolve("m.gguf"));
        assertTrue(GgufFile.isGguf(p));
        try (GgufFile g = GgufFile.open(p)) {
            assertEquals(3, g.version());
            assertEquals(32, g.alignment());
            assertEquals(0, g.dataStart() % 32);
            assertEquals("flux", g.meta("general.architecture").orElseThrow().asString());
            assertEquals(200, g.metadata().get("u8").asLong());
            assertEquals(-3, g.metadata().get("i8").asLong());
            assertEquals(60000, g.metadata().get("u16").asLong());
            assertEquals(-300, g.metadata().get("i16").asLong());
            assertEquals(4_000_000_000L, g.metadata().get("u32").asLong());
            assertEquals(1.5f, g.metadata().get("f32").value());
            assertEquals(true, g.metadata().get("bool").value());
            assertEquals("18446744073709551615", g.metadata().get("u64").toString());
            assertEquals(2.25, g.metadata().get("f64").value());
            assertEquals(List.of(1L, 2L, 3L), g.metadata().get("arr").asList());
            GgufValue nested = g.metadata().get("nested");
            assertEquals(GgufValue.Type.ARRAY, nested.elementType());
            assertEquals(List.of("a", "b"), ((GgufValue) nested.asList().get(0)).asList());

            GgufTensor f = g.tensor("img_in.weight");
            assertArrayEquals(new long[]{2, 3}, f.shape());
            assertArrayEquals(new long[]{3, 2}, f.ne());
            assertEquals(24, f.byteSize());
            assertEquals(4f, f.data().get(TensorCodec.LE_FLOAT, 12));
            GgufTensor q = g.tensor("double_blocks.0.img_attn.qkv.weight");
            assertEquals(GgmlType.Q8_0, q.type());
            assertArrayEquals(new long[]{2, 64}, q.shape());
            assertEquals(4 * 34, q.byteSize());
            assertEquals(2, q.blocksPerRow());
            // first block: scale = 8/127 as f16, then codes
            assertEquals(Float.floatToFloat16(8f / 127), q.data().get(TensorCodec.LE_SHORT, 0));
            assertEquals(-127, q.data().get(ValueLayout.JAVA_BYTE, 2));
            assertEquals(3 * 144, g.tensor("q4k").byteSize());
            assertFalse(g.tensor("iq").type().canDequantize());
            assertEquals(0, g.tensors().stream().mapToLong(GgufTensor::offset).filter(o -> o % 32 != 0).count());
        }
    }

    @Test
    void typeTableMatchesGgml() {
        assertEquals(34, GgmlType.Q8_0.typeSize());
        assertEquals(18, GgmlType.Q4_0.typeSize());
        assertEquals(144, GgmlType.Q4_K.typeSize());
        assertEquals(210, GgmlType.Q6_K.typeSize());
        assertEquals(84, GgmlType.Q2_K.typeSize());
        assertEquals(GgmlType.BF16, GgmlType.byIdOrNull(30));
        assertNull(GgmlType.byIdOrNull(4));
        assertEquals(-1, GgmlType.Q8_0.byteSize(new long[]{33, 2}));
        assertEquals(2 * 18 * 3, GgmlType.Q4_0.byteSize(new long[]{64, 3}));
    }

    @Test
    void customAlignmentAndVersion2() throws IOException {
        Path p = new GgufTestWriter().version(2).alignment(64)
                .tensor("a", GgmlType.F16, new long[]{3}, new byte[6])
                .tensor("b", GgmlType.BF16, new long[]{5}, new byte[10]).write(dir.resolve("a.gguf"));
        try (GgufFile g = GgufFile.open(p)) {
            assertEquals(2, g.version());
            assertEquals(64, g.alignment());
            assertEquals(64, g.tensor("b").offset());
            assertEquals(0, g.dataStart() % 64);
        }
    }

    static GgufFormatException bad(byte[] b) {
        return assertThrows(GgufFormatException.class, () -> GgufFile.of(MemorySegment.ofArray(b), "x.gguf"));
    }

    static byte[] patchInt(byte[] b, int at, int v) {
        byte[] c = b.clone();
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putInt(at, v);
        return c;
    }

    static byte[] patchLong(byte[] b, int at, long v) {
        byte[] c = b.clone();
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putLong(at, v);
        return c;
    }

    @Test
    void malformedHeadersAreNamed() {
        byte[] ok = new GgufTestWriter().tensor("t", GgmlType.F32, new long[]{4}, new byte[16]).toBytes();
        assertTrue(bad(new byte[3]).getMessage().contains("too short"));
        assertTrue(bad("GGML\0\0\0\0".getBytes()).getMessage().contains("pre-GGUF"));
        assertTrue(bad(patchInt(ok, 4, 1)).getMessage().contains("version 1"));
        assertTrue(bad(patchInt(ok, 4, 0x03000000)).getMessage().contains("big-endian"));
        assertTrue(bad(patchInt(ok, 4, 7)).getMessage().contains("version 7"));
        assertTrue(bad(patchLong(ok, 8, 1L << 40)).getMessage().contains("tensors, more than"));
        assertTrue(bad(patchLong(ok, 16, 1L << 40)).getMessage().contains("metadata entries"));
        // tensor info: name len @24, name "t" @32, n_dims @33, ne0 @37, type @45, offset @49
        assertTrue(bad(patchLong(ok, 24, 1L << 50)).getMessage().contains("claims"));
        assertTrue(bad(patchInt(ok, 33, 9)).getMessage().contains("9 dimensions"));
        assertTrue(bad(patchInt(ok, 45, 4)).getMessage().contains("ggml type 4"));
        assertTrue(bad(patchInt(ok, 45, 8)).getMessage().contains("not a multiple of the Q8_0 block size 32"));
        assertTrue(bad(patchLong(ok, 49, 8)).getMessage().contains("not a multiple of the alignment"));
        assertTrue(bad(patchLong(ok, 49, 1L << 40)).getMessage().contains("truncated"));
        assertTrue(bad(patchLong(ok, 37, -5)).getMessage().contains("dimension"));
        assertTrue(bad(Arrays.copyOf(ok, ok.length - 20)).getMessage().contains("truncated")); // 16 bytes of end padding + 4 of data
        byte[] dup = new GgufTestWriter().kv("k", GgufValue.Type.UINT8, 1L).kv("k", GgufValue.Type.UINT8, 2L).toBytes();
        assertTrue(bad(dup).getMessage().contains("appears twice"));
        byte[] badType = patchInt(new GgufTestWriter().kv("k", GgufValue.Type.UINT8, 1L).toBytes(), 33, 13);
        assertTrue(bad(badType).getMessage().contains("value type 13"));
        byte[] badAlign = new GgufTestWriter().kv("general.alignment", GgufValue.Type.UINT32, 48L).toBytes();
        assertTrue(bad(badAlign).getMessage().contains("power of two"));
        byte[] wrongAlignType = new GgufTestWriter().kv("general.alignment", GgufValue.Type.UINT64, 32L).toBytes();
        assertTrue(bad(wrongAlignType).getMessage().contains("UINT32"));
        byte[] twoTensors = new GgufTestWriter().tensor("a", GgmlType.F32, new long[]{8}, new byte[32])
                .tensor("b", GgmlType.F32, new long[]{8}, new byte[32]).toBytes();
        // b's offset (32) -> 0: overlaps a.   Layout: header 24, a: 8+1+4+8+4+8 = 33 -> b starts @57: name @65 (1), n_dims @66, ne @70, type @78, offset @82
        assertTrue(bad(patchLong(twoTensors, 82, 0)).getMessage().contains("overlap"));
    }

    @Test
    void mutantsNeverEscapeTheFormatException() {
        byte[] valid = sample().toBytes();
        SplittableRandom seeds = new SplittableRandom(7);
        int opened = 0;
        for (int i = 0; i < 3000; i++) {
            long seed = seeds.nextLong();
            SplittableRandom r = new SplittableRandom(seed);
            byte[] m = valid.clone();
            switch (r.nextInt(3)) {
                case 0 -> {
                    for (int k = r.nextInt(1, 4); k > 0; k--) m[r.nextInt(Math.min(m.length, 700))] ^= (byte) (1 << r.nextInt(8));
                }
                case 1 -> m = Arrays.copyOf(m, r.nextInt(m.length));
                default -> {
                    int at = r.nextInt(Math.min(m.length - 8, 700));
                    ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putLong(at, r.nextBoolean() ? r.nextLong() : r.nextInt(0, 5000));
                }
            }
            try (GgufFile g = GgufFile.of(MemorySegment.ofArray(m), "fuzz")) {
                for (GgufTensor t : g.tensors()) {
                    assertEquals(t.type().byteSize(t.ne()), t.byteSize(), "seed " + seed);
                    assertEquals(t.byteSize(), t.data().toArray(ValueLayout.JAVA_BYTE).length);
                }
                opened++;
            } catch (GgufFormatException e) {
                assertTrue(e.getMessage().startsWith("fuzz"), e.getMessage());
            } catch (Throwable t) {
                fail("seed " + seed + " threw " + t, t);
            }
        }
        assertTrue(opened > 100, "some mutants (in string contents, data) still open: " + opened);
    }
}
