package dev.impasto.quant;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class GgmlQuantsTest {

    @Test
    void q8_0HandBuiltBlock() {
        byte[] b = new byte[34];
        b[0] = 0x00; // d = 0.5 = f16 0x3800, little-endian
        b[1] = 0x38;
        for (int j = 0; j < 32; j++) b[2 + j] = (byte) (j * 8 - 127); // -127, -119, ..., 121
        float[] y = GgmlQuants.dequantize(GgmlType.Q8_0, b, 0, 32);
        assertEquals(-63.5f, y[0]);
        assertEquals(-59.5f, y[1]);
        assertEquals(0.5f, y[16]); // 16*8-127 = 1
        assertEquals(60.5f, y[31]); // 121 * 0.5
    }

    @Test
    void q4_0HandBuiltBlockLowNibblesFirstHalfHighNibblesSecondHalf() {
        byte[] b = new byte[18];
        b[0] = 0x00; // d = 0.25 = f16 0x3400
        b[1] = 0x34;
        for (int j = 0; j < 16; j++) b[2 + j] = (byte) (j | (15 - j) << 4);
        float[] y = GgmlQuants.dequantize(GgmlType.Q4_0, b, 0, 32);
        for (int j = 0; j < 16; j++) {
            assertEquals((j - 8) * 0.25f, y[j], 0f, "low nibble " + j);
            assertEquals((7 - j) * 0.25f, y[j + 16], 0f, "high nibble " + j);
        }
        assertEquals(-2f, y[0]);
        assertEquals(1.75f, y[16]);
        assertEquals(1.75f, y[15]);
        assertEquals(-2f, y[31]);
    }

    /** Scales sc = 1,2,3,63,17,32,48,63 and mins m = 0,5,10,63,20,33,1,62 packed by hand (get_scale_min_k4). */
    private static final byte[] Q4K_SCALES = Nf4Test.bytes(
            0x41, 0x82, 0xC3, 0xFF, // sc[0..3] | top 2 bits of sc[4..7] in bits 6-7
            0x40, 0x85, 0x0A, 0xFF, // m[0..3] | top 2 bits of m[4..7]
            0x41, 0x10, 0x10, 0xEF); // low 4 bits of sc[4..7] | low 4 bits of m[4..7] << 4

    @Test
    void scaleMinK4UnpacksHandPackedBytes() {
        int[] sc = {1, 2, 3, 63, 17, 32, 48, 63};
        int[] m = {0, 5, 10, 63, 20, 33, 1, 62};
        for (int j = 0; j < 8; j++) {
            int sm = GgmlQuants.scaleMinK4(j, Q4K_SCALES, 0);
            assertEquals(sc[j], sm & 0xff, "scale " + j);
            assertEquals(m[j], sm >>> 8, "min " + j);
        }
    }

    @Test
    void q4_KHandBuiltBlock() {
        byte[] b = new byte[144];
        b[0] = 0x00; // d = 0.5
        b[1] = 0x38;
        b[2] = 0x00; // dmin = 0.25
        b[3] = 0x34;
        System.arraycopy(Q4K_SCALES, 0, b, 4, 12);
        // chunk c (64 elements): byte l holds q = l & 15 (low nibble, element 64c + l) and (l + c) & 15 (high, 64c+32+l)
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) b[16 + 32 * c + l] = (byte) ((l & 15) | ((l + c) & 15) << 4);
        }
        float[] y = GgmlQuants.dequantize(GgmlType.Q4_K, b, 0, 256);
        assertEquals(0f, y[0]); //                0.5*1*0  - 0.25*0
        assertEquals(2.5f, y[5]); //              0.5*1*5  - 0.25*0
        assertEquals(5.75f, y[32 + 7]); //        0.5*2*7  - 0.25*5
        assertEquals(-1f, y[64 + 17]); //         0.5*3*1  - 0.25*10
        assertEquals(-15.75f, y[64 + 32 + 15]); // 0.5*63*0 - 0.25*63
        assertEquals(20.5f, y[128 + 3]); //       0.5*17*3 - 0.25*20
        assertEquals(7.75f, y[128 + 32 + 31]); // 0.5*32*1 - 0.25*33
        assertEquals(239.75f, y[192 + 10]); //    0.5*48*10 - 0.25*1
        assertEquals(457f, y[192 + 32 + 12]); //  0.5*63*15 - 0.25*62
    }

    /** Every supported block type against ggml's own dequantize_row_* output (resources/ggml/README.md). */
    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    void dequantizeMatchesGgmlBitForBit(GgmlType type) {
        String name = type.ggmlName();
        byte[] blocks = TestData.resource("ggml/" + name + ".bin");
        float[] expected = TestData.f32("ggml/" + name + ".deq.f32");
        assertEquals(type.bytesFor(expected.length), blocks.length);
        float[] y = GgmlQuants.dequantize(type, blocks, 0, expected.length);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(y[i]),
                    name + " element " + i + ": expected " + expected[i] + ", got " + y[i]);
        }
    }

    /** ggml's quantize_row_*_ref output for the same input, byte for byte. */
    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0", "Q4_K"})
    void quantizeMatchesGgmlReferenceByteForByte(GgmlType type) {
        float[] x = TestData.f32("ggml/input.f32");
        byte[] expected = TestData.resource("ggml/" + type.ggmlName() + ".bin");
        byte[] got = GgmlQuants.quantize(type, x);
        assertEquals(expected.length, got.length);
        for (int i = 0; i < expected.length; i++) {
            if (expected[i] != got[i]) {
                fail(type.ggmlName() + " differs at byte " + i + " (block " + i / type.typeSize() + ", offset "
                        + i % type.typeSize() + "): expected " + (expected[i] & 0xff) + ", got " + (got[i] & 0xff));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0", "Q4_K"})
    void quantizeDequantizeRoundTripOnGaussianWeights(GgmlType type) {
        float[] x = TestData.gaussian(42, 256 * 40, 0.02);
        float[] y = GgmlQuants.dequantize(type, GgmlQuants.quantize(type, x), 0, x.length);
        double sq = 0, sqX = 0;
        int bs = type.blockSize();
        for (int b = 0; b < x.length / bs; b++) {
            float amax = 0;
            for (int j = 0; j < bs; j++) amax = Math.max(amax, Math.abs(x[b * bs + j]));
            for (int j = 0; j < bs; j++) {
                int i = b * bs + j;
                float err = Math.abs(x[i] - y[i]);
                // Q8_0: half a step of amax/127 plus the f16 rounding of d; Q4_0: the extreme opposite the signed max
                // clamps to code 15, one full step of amax/8
                if (type == GgmlType.Q8_0) assertTrue(err <= amax / 127 * 0.57f, "element " + i);
                if (type == GgmlType.Q4_0) assertTrue(err <= amax / 8 * 1.01f, "element " + i);
                sq += err * (double) err;
                sqX += x[i] * (double) x[i];
            }
        }
        double rel = Math.sqrt(sq / sqX);
        double limit = switch (type) {
            case Q8_0 -> 0.01;
            case Q4_0 -> 0.15;
            default -> 0.10;
        };
        assertTrue(rel < limit, type + " relative RMSE " + rel);
    }

    @Test
    void plainTypesAndMemorySegmentInput() {
        float[] x = {1f, -2.5f, 65504f, 1e-3f};
        try (Arena arena = Arena.ofConfined()) {
            for (GgmlType t : new GgmlType[] {GgmlType.F32, GgmlType.F16, GgmlType.BF16}) {
                byte[] enc = GgmlQuants.quantize(t, x);
                assertEquals(x.length * t.typeSize(), enc.length);
                MemorySegment seg = arena.allocate(enc.length);
                seg.copyFrom(MemorySegment.ofArray(enc));
                float[] y = GgmlQuants.dequantize(t, seg, x.length);
                assertEquals(1f, y[0]);
                assertEquals(-2.5f, y[1]);
                if (t == GgmlType.F32) assertEquals(1e-3f, y[3]);
                if (t == GgmlType.F16) assertEquals(Float.float16ToFloat(Float.floatToFloat16(1e-3f)), y[3]);
            }
        }
    }

    @Test
    void shortOrMisalignedInputGivesAClearError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GgmlQuants.dequantize(GgmlType.Q4_K, new byte[143], 0, 256));
        assertTrue(e.getMessage().contains("144"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GgmlQuants.dequantize(GgmlType.Q8_0, new byte[68], 0, 48));
        assertTrue(e.getMessage().contains("whole number"), e.getMessage());
        assertThrows(UnsupportedOperationException.class, () -> GgmlQuants.dequantize(GgmlType.IQ2_XXS, new byte[66], 0, 256));
        assertThrows(UnsupportedOperationException.class, () -> GgmlQuants.quantize(GgmlType.Q6_K, new float[256]));
        assertThrows(IllegalArgumentException.class, () -> GgmlQuants.quantize(GgmlType.Q4_K, new float[255]));
        float[] nan = new float[32];
        nan[3] = Float.NaN;
        assertThrows(IllegalArgumentException.class, () -> GgmlQuants.quantize(GgmlType.Q8_0, nan));
    }

    @Test
    void nearestIntAndRoundfMatchC() {
        assertEquals(2, GgmlQuants.nearestInt(2.5f));
        assertEquals(4, GgmlQuants.nearestInt(3.5f));
        assertEquals(-2, GgmlQuants.nearestInt(-2.5f));
        assertEquals(3, GgmlQuants.roundHalfAway(2.5f));
        assertEquals(-3, GgmlQuants.roundHalfAway(-2.5f));
        assertEquals(0, GgmlQuants.roundHalfAway(0.49999997f));
    }
}
