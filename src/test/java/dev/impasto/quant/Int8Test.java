package dev.impasto.quant;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class Int8Test {
    @Test
    void handComputedRowsRoundHalfToEven() {
        float[] w = {
            127f, -3.5f, 2.5f, 0.49f, -126.6f, // absmax 127 -> scale 1
            0f, 0f, 0f, 0f, 0f, //                all zero -> scale 0, codes 0
            254f, 1f, -3f, 5f, -254f, //          absmax 254 -> scale 2: 127, 0.5->0, -1.5->-2, 2.5->2, -127
        };
        Int8Quantized q = Int8.quantize(w, 3, 5);
        assertArrayEquals(new float[] {1f, 0f, 2f}, q.scale());
        assertArrayEquals(Nf4Test.bytes(127, -4, 2, 0, -127, 0, 0, 0, 0, 0, 127, 0, -2, 2, -127), q.q());
        float[] back = Int8.dequantize(q);
        assertArrayEquals(new float[] {127f, -4f, 2f, 0f, -127f, 0f, 0f, 0f, 0f, 0f, 254f, 0f, -4f, 4f, -254f}, back);
        assertEquals(-4f, q.get(2, 2));
    }

    @Test
    void roundTripErrorIsAtMostHalfAScaleStep() {
        int n = 37, k = 301;
        float[] w = TestData.gaussian(21, n * k, 0.05);
        Int8Quantized q = Int8.quantize(w, n, k);
        float[] back = Int8.dequantize(q);
        for (int r = 0; r < n; r++) {
            float s = q.scale()[r];
            for (int c = 0; c < k; c++) {
                int i = r * k + c;
                assertTrue(Math.abs(q.q()[i]) <= 127);
                assertTrue(Math.abs(w[i] - back[i]) <= s / 2 * 1.000001f, "(" + r + ", " + c + ")");
            }
        }
    }

    @Test
    void shapeMismatchIsAnError() {
        assertThrows(IllegalArgumentException.class, () -> Int8.quantize(new float[10], 3, 3));
        assertThrows(IllegalArgumentException.class, () -> new Int8Quantized(new byte[9], new float[2], 3, 3));
    }
}
