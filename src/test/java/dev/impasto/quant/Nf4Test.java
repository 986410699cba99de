package dev.impasto.quant;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class Nf4Test {
    private static final float[] FORMATS_MD_CODE = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    };

    @Test
    void codeTableIsBitsandbytesNf4() {
        assertArrayEquals(FORMATS_MD_CODE, Nf4.code());
        for (int i = 0; i < 16; i++) assertEquals(FORMATS_MD_CODE[i], Nf4.code(i | 0xf0));
        assertTrue(Nf4.matchesCode(FORMATS_MD_CODE.clone()));
        float[] fp4Like = FORMATS_MD_CODE.clone();
        fp4Like[3] = 0.5f;
        assertFalse(Nf4.matchesCode(fp4Like));
        assertFalse(Nf4.matchesCode(new float[15]));
    }

    @Test
    void thresholdsAreMidpointsBetweenNeighbouringCodes() {
        float[] t = Nf4.thresholds();
        assertEquals(15, t.length);
        for (int i = 0; i < 15; i++) {
            double mid = ((double) FORMATS_MD_CODE[i] + FORMATS_MD_CODE[i + 1]) / 2;
            assertEquals(mid, t[i], 1e-7, "threshold " + i);
        }
    }

    @Test
    void eachCodeValueMapsToItsIndex() {
        for (int i = 0; i < 16; i++) assertEquals(i, Nf4.quantizeValue(FORMATS_MD_CODE[i]));
    }

    @Test
    void valueOnAThresholdGoesToTheLowerCodeAndOneUlpAboveToTheUpper() {
        float[] t = Nf4.thresholds();
        for (int i = 0; i < 15; i++) {
            assertEquals(i, Nf4.quantizeValue(t[i]), "on threshold " + i);
            assertEquals(i + 1, Nf4.quantizeValue(Math.nextUp(t[i])), "just above threshold " + i);
            assertEquals(i, Nf4.quantizeValue(Math.nextDown(t[i])), "just below threshold " + i);
        }
    }

    @Test
    void tableLookupAgreesWithTheDecisionTree() {
        float[] t = Nf4.thresholds();
        for (float th : t) {
            float x = th;
            for (int k = 0; k < 3000; k++) x = Math.nextDown(x);
            for (int k = 0; k < 6000; k++, x = Math.nextUp(x)) {
                assertEquals(Nf4.quantizeValue(x), Nf4.quantizeValueFast(x), "x = " + x);
            }
        }
        for (int b = 0; b <= 2048; b++) { // bucket edges
            float edge = -1f + b / 1024f;
            for (float x : new float[] {Math.nextDown(edge), edge, Math.nextUp(edge)}) {
                assertEquals(Nf4.quantizeValue(x), Nf4.quantizeValueFast(x), "x = " + x);
            }
        }
        java.util.SplittableRandom r = new java.util.SplittableRandom(2);
        for (int i = 0; i < 1_000_000; i++) {
            float x = (float) (r.nextDouble() * 2.4 - 1.2);
            assertEquals(Nf4.quantizeValue(x), Nf4.quantizeValueFast(x), "x = " + x);
        }
        for (float x : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0f, 0f, 1f, -1f,
                Float.MAX_VALUE, -Float.MAX_VALUE, Float.MIN_VALUE, 1e30f, -1e30f}) {
            assertEquals(Nf4.quantizeValue(x), Nf4.quantizeValueFast(x), "x = " + x);
        }
    }

    @Test
    void outOfRangeAndNanValues() {
        assertEquals(15, Nf4.quantizeValue(1.5f));
        assertEquals(0, Nf4.quantizeValue(-1.5f));
        assertEquals(0, Nf4.quantizeValue(Float.NaN), "NaN fails every comparison of the tree");
        assertEquals(7, Nf4.quantizeValue(0f));
        assertEquals(7, Nf4.quantizeValue(-0f));
    }

    /**
     * One block of 64 with absmax 2 (so x = w * 0.5 exactly): 32 values on the codes, 15 exactly on thresholds
     * (lower code), 15 one ulp above them (upper code), -2 and 0. Expected bytes written out by hand.
     */
    @Test
    void handCheckedBlockPacksHighNibbleFirst() {
        float[] t = Nf4.thresholds();
        float[] w = new float[64];
        for (int i = 0; i < 32; i++) w[i] = 2 * FORMATS_MD_CODE[i % 16];
        for (int k = 0; k < 15; k++) w[32 + k] = 2 * t[k];
        for (int k = 0; k < 15; k++) w[47 + k] = 2 * Math.nextUp(t[k]);
        w[62] = -2f;
        w[63] = 0f;
        Nf4Quantized q = Nf4.quantize(w, false);
        byte[] expected = bytes(
                0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, // elements 0..15: codes 0..15
                0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, // 16..31
                0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, // 32..45: on thresholds 0..13 -> codes 0..13
                0xE1, // 46: threshold 14 -> 14; 47: above threshold 0 -> 1
                0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, // 48..61: above thresholds 1..14 -> codes 2..15
                0x07); // 62: -2 -> 0; 63: 0 -> 7
        assertArrayEquals(expected, q.packed());
        assertArrayEquals(new float[] {2f}, q.absmax());
        assertEquals(64, q.numel());
        assertEquals(64, q.blocksize());
        assertNull(q.nested());
        float[] back = Nf4.dequantize(q);
        for (int i = 0; i < 32; i++) assertEquals(w[i], back[i], 0f);
    }

    /** absmax 3: 1/3f = 0.33333334f, x = w * 0.33333334f; codes worked out against the thresholds by hand. */
    @Test
    void handCheckedBlockWithNonPowerOfTwoAbsmax() {
        float[] w = new float[64];
        float[] picks = {3.0f, -3.0f, 1.5f, -1.5f, 0.1f, 0.12f, 2.0f, -1.0f};
        System.arraycopy(picks, 0, w, 0, picks.length);
        // 3 -> x=1 -> 15; -3 -> 0; 1.5 -> 0.5 in (0.3893, 0.5017] -> 12; -1.5 -> -0.5 in (-0.6106, -0.4600] -> 2;
        // 0.1 -> 0.0333 in (-0.0455, 0.0398] -> 7; 0.12 -> 0.04 > 0.03979 -> 8; 2 -> 0.667 in (0.6428, 0.8615] -> 14;
        // -1 -> -0.3333 in (-0.3397, -0.2346] -> 4; zeros -> 7.
        Nf4Quantized q = Nf4.quantize(w, false);
        assertEquals(3f, q.absmax()[0]);
        assertEquals((byte) 0xF0, q.packed()[0]);
        assertEquals((byte) 0xC2, q.packed()[1]);
        assertEquals((byte) 0x78, q.packed()[2]);
        assertEquals((byte) 0xE4, q.packed()[3]);
        for (int i = 4; i < 32; i++) assertEquals((byte) 0x77, q.packed()[i]);
        float[] back = Nf4.dequantize(q);
        assertEquals(3f * 0.44070982933044434f, back[2], 0f);
        assertEquals(3f * -0.28444138169288635f, back[7], 0f);
    }

    @Test
    void partialLastBlockUsesItsOwnAbsmaxAndPadsTheOddNibbleWithZero() {
        float[] w = new float[69];
        for (int i = 0; i < 64; i++) w[i] = 10f;
        float[] tail = {0.5f, -0.25f, 0.125f, 0f, -0.5f};
        System.arraycopy(tail, 0, w, 64, 5);
        Nf4Quantized q = Nf4.quantize(w, false);
        assertEquals(35, q.packed().length);
        assertArrayEquals(new float[] {10f, 0.5f}, q.absmax());
        // tail / 0.5 = 1, -0.5, 0.25, 0, -1 -> codes 15, 2, 10, 7, 0; the pad nibble is code(0) = 7
        assertEquals((byte) 0xF2, q.packed()[32]);
        assertEquals((byte) 0xA7, q.packed()[33]);
        assertEquals((byte) 0x07, q.packed()[34]);
        float[] back = Nf4.dequantize(q);
        assertEquals(69, back.length);
        assertEquals(0.5f, back[64], 0f);
        assertEquals(-0.5f, back[68], 0f);
    }

    @Test
    void allZeroBlockGetsAbsmaxZeroAndCodeZeroLikeTheCudaKernel() {
        float[] w = new float[67];
        for (int i = 0; i < 64; i++) w[i] = i % 2 == 0 ? 1f : -1f;
        Nf4Quantized q = Nf4.quantize(w, false);
        assertArrayEquals(new float[] {1f, 0f}, q.absmax());
        assertEquals(0x00, q.packed()[32]); // 0 * (1/0) = NaN -> code 0
        assertEquals(0x00, q.packed()[33]);
        float[] back = Nf4.dequantize(q);
        for (int i = 64; i < 67; i++) assertEquals(0f, back[i], 0f);
    }

    @Test
    void everyElementGetsTheNearestCodeAndErrorIsBounded() {
        float[] w = TestData.gaussian(7, 64 * 500 + 17, 0.02);
        Nf4Quantized q = Nf4.quantize(w, false);
        float[] back = Nf4.dequantize(q);
        double sq = 0, sqW = 0;
        for (int i = 0; i < w.length; i++) {
            float absmax = q.absmax()[i / 64];
            float x = w[i] * (1f / absmax);
            float chosen = Nf4.code(q.nibble(i));
            float best = Float.MAX_VALUE;
            for (float c : FORMATS_MD_CODE) best = Math.min(best, Math.abs(x - c));
            assertEquals(best, Math.abs(x - chosen), 1e-6f, "element " + i);
            // largest half-gap between NF4 codes is (-0.6961928 - -1) / 2
            assertTrue(Math.abs(w[i] - back[i]) <= absmax * 0.1519036f + 1e-7f, "element " + i);
            sq += (w[i] - back[i]) * (double) (w[i] - back[i]);
            sqW += w[i] * (double) w[i];
        }
        double relRmse = Math.sqrt(sq / sqW);
        assertTrue(relRmse > 0.05 && relRmse < 0.15, "NF4 relative RMSE on Gaussian data was " + relRmse);
    }

    @Test
    void nestedAbsmaxHandExample() {
        // absmax 1,2,3,4: offset 2.5; centred -1.5,-0.5,0.5,1.5; nested absmax 1.5; x = -1, -1/3, 1/3, 1.
        // -1 is below the smallest dynamic code (-0.99296875) -> 0; 1 -> 255; +-1/3 -> +-0.33203125, the nearest
        // of the 10^0 means 0.1 + 0.0140625 * (k + 0.5) (k = 16), index 191 + 16 = 207 and its mirror 47.
        NestedAbsmax n = Nf4.compressAbsmax(new float[] {1f, 2f, 3f, 4f});
        assertEquals(2.5f, n.offset());
        assertArrayEquals(new float[] {1.5f}, n.nestedAbsmax());
        assertArrayEquals(bytes(0, 47, 207, 255), n.codes());
        assertEquals(0.33203125f, n.code()[207]);
        assertEquals(-0.33203125f, n.code()[47]);
        float[] back = n.dequantize();
        assertEquals(-0.99296875f * 1.5f + 2.5f, back[0], 0f);
        assertEquals(-0.33203125f * 1.5f + 2.5f, back[1], 0f);
        assertEquals(0.33203125f * 1.5f + 2.5f, back[2], 0f);
        assertEquals(4.0f, back[3], 0f);
    }

    @Test
    void doubleQuantReconstructsAbsmaxWithinEightBitError() {
        float[] w = TestData.gaussian(11, 64 * 1000 + 40, 0.03);
        Nf4Quantized plain = Nf4.quantize(w, false);
        Nf4Quantized nested = Nf4.quantize(w, true);
        assertArrayEquals(plain.packed(), nested.packed(), "double quantization does not change the 4-bit codes");
        assertNull(nested.absmax());
        NestedAbsmax n = nested.nested();
        assertEquals(1001, n.codes().length);
        assertEquals(4, n.nestedAbsmax().length); // ceil(1001 / 256)
        assertEquals(256, n.blocksize());

        double sum = 0;
        for (float a : plain.absmax()) sum += a;
        assertEquals((float) (sum / plain.absmax().length), n.offset(), 0f);

        float[] code = n.code();
        float[] a = plain.absmax();
        float[] back = nested.blockAbsmax();
        for (int b = 0; b < a.length; b++) {
            float scale = n.nestedAbsmax()[b / 256];
            float x = (a[b] - n.offset()) * (1f / scale);
            float best = Float.MAX_VALUE;
            for (float c : code) best = Math.min(best, Math.abs(x - c));
            assertEquals(best, Math.abs(x - code[n.codes()[b] & 0xff]), 1e-6f, "block " + b);
            // the dynamic map's widest gap is 0.9/64 = 0.0140625 (the 10^0 decade)
            assertTrue(Math.abs(a[b] - back[b]) <= scale * 0.0070313f + 1e-6f * a[b], "block " + b);
        }
        float[] wPlain = Nf4.dequantize(plain);
        float[] wNested = Nf4.dequantize(nested);
        for (int i = 0; i < w.length; i++) {
            float rel = Math.abs(back[i / 64] - a[i / 64]) / a[i / 64];
            assertEquals(wPlain[i], wNested[i], Math.abs(wPlain[i]) * (rel + 1e-6f) + 1e-9f);
        }
        assertTrue(nested.storageBytes() < plain.storageBytes());
    }

    @Test
    void dequantizeIntoOffsetAndBoundsChecks() {
        float[] w = TestData.gaussian(3, 128, 1);
        Nf4Quantized q = Nf4.quantize(w, false);
        float[] out = new float[130];
        Nf4.dequantize(q, out, 2);
        float[] direct = Nf4.dequantize(q);
        for (int i = 0; i < 128; i++) assertEquals(direct[i], out[i + 2], 0f);
        assertThrows(IllegalArgumentException.class, () -> Nf4.dequantize(q, new float[129], 2));
    }

    @Test
    void rejectsNonFiniteWeightsAndBadLayouts() {
        float[] w = new float[64];
        w[5] = Float.NaN;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Nf4.quantize(w, false));
        assertTrue(e.getMessage().contains("element 5"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Nf4.quantize(new float[64], 48, false));
        assertThrows(IllegalArgumentException.class, () -> new Nf4Quantized(new byte[31], new float[1], 64, 64, null));
        assertThrows(IllegalArgumentException.class, () -> new Nf4Quantized(new byte[32], new float[2], 64, 64, null));
        assertThrows(IllegalArgumentException.class, () -> new Nf4Quantized(new byte[32], null, 64, 64, null));
    }

    @Test
    void otherBlocksizesFollowTheSameRules() {
        float[] w = TestData.gaussian(5, 1000, 1);
        for (int bs : new int[] {32, 128, 4096}) {
            Nf4Quantized q = Nf4.quantize(w, bs, false);
            assertEquals((1000 + bs - 1) / bs, q.absmax().length);
            float[] back = Nf4.dequantize(q);
            for (int i = 0; i < w.length; i++) {
                assertTrue(Math.abs(w[i] - back[i]) <= q.absmax()[i / bs] * 0.1519036f + 1e-6f);
            }
        }
    }

    static byte[] bytes(int... v) {
        byte[] b = new byte[v.length];
        for (int i = 0; i < v.length; i++) b[i] = (byte) v[i];
        return b;
    }
}
