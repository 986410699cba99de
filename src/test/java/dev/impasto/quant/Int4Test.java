package dev.impasto.quant;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class Int4Test {
    @Test
    void handComputedGroupsAndPacking() {
        // k = 6, groups of 4: row 0 = [0, 1.5, 3, 15 | 2, 2]; row 1 = [-1, -1, -1, -1 | -3, 12]
        float[] w = {0f, 1.5f, 3f, 15f, 2f, 2f, -1f, -1f, -1f, -1f, -3f, 12f};
        Int4Quantized q = Int4.quantize(w, 2, 6, 4);
        // row 0 group 0: min 0, scale 1, codes 0, 2 (1.5 rounds to even), 3, 15; group 1 constant -> scale 0, codes 0
        // row 1 group 0 constant; group 1: min -3, scale 1, codes 0, 15
        assertArrayEquals(new float[] {1f, 0f, 0f, 1f}, q.scale());
        assertArrayEquals(new float[] {0f, 2f, -1f, -3f}, q.min());
        assertArrayEquals(Nf4Test.bytes(0x02, 0x3F, 0x00, 0x00, 0x00, 0x0F), q.packed());
        assertArrayEquals(new float[] {0f, 2f, 3f, 15f, 2f, 2f, -1f, -1f, -1f, -1f, -3f, 12f}, Int4.dequantize(q));
        assertEquals(2, q.code(0, 1));
        assertEquals(15f, q.get(0, 3));
    }

    @Test
    void oddRowLengthStartsEachRowOnAByte() {
        float[] w = {0f, 15f, 7f, 1f, 14f, /* row 1 */ 15f, 0f, 8f, 2f, 3f};
        Int4Quantized q = Int4.quantize(w, 2, 5, 128);
        assertEquals(3, q.rowBytes());
        assertArrayEquals(Nf4Test.bytes(0x0F, 0x71, 0xE0, 0xF0, 0x82, 0x30), q.packed());
        assertArrayEquals(w, Int4.dequantize(q));
    }

    @Test
    void roundTripErrorIsAtMostHalfAScaleStepWithAShortLastGroup() {
        int n = 19, k = 300; // groups of 128, 128, 44
        float[] w = TestData.gaussian(5, n * k, 0.03);
        Int4Quantized q = Int4.quantize(w, n, k);
        assertEquals(3, q.groupsPerRow());
        assertEquals(n * 3, q.scale().length);
        float[] back = Int4.dequantize(q);
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < k; c++) {
                int g = r * 3 + c / 128;
                float s = q.scale()[g];
                float err = Math.abs(w[r * k + c] - back[r * k + c]);
                assertTrue(err <= s / 2 + Math.ulp(Math.abs(q.min()[g]) + 15 * s) * 2, "(" + r + ", " + c + ") err " + err);
            }
        }
    }

    @Test
    void badShapesAreErrors() {
        assertThrows(IllegalArgumentException.class, () -> Int4.quantize(new float[10], 2, 4));
        assertThrows(IllegalArgumentException.class, () -> Int4.quantize(new float[8], 2, 4, 0));
    }
}
