package dev.impasto.quant;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;

class Blockwise8bitTest {

    /** bnb_dynamic_map_signed.hex: bitsandbytes' create_dynamic_map(signed=True) run under torch 2.11 (x86-64). */
    @Test
    void dynamicMapMatchesTorchBitForBit() {
        String[] hex = new String(TestData.resource("bnb_dynamic_map_signed.hex"), StandardCharsets.US_ASCII).trim().split("\\s+");
        assertEquals(256, hex.length);
        float[] map = Blockwise8bit.dynamicMapSigned();
        for (int i = 0; i < 256; i++) {
            int expected = (int) Long.parseLong(hex[i], 16);
            assertEquals(expected, Float.floatToRawIntBits(map[i]), "entry " + i + " = " + map[i]);
        }
        assertEquals(0f, map[127]);
        assertEquals(1f, map[255]);
        assertEquals(-0.99296875f, map[0], 1e-7f);
        for (int i = 1; i < 256; i++) assertTrue(map[i] > map[i - 1], "sorted at " + i);
    }

    @Test
    void torchLinspaceHalvesMeetAtTheEnds() {
        float[] l = Blockwise8bit.torchLinspaceFloat(0.1f, 1f, 65);
        assertEquals(0.1f, l[0]);
        assertEquals(1f, l[64]);
        assertEquals(65, l.length);
    }

    @Test
    void binarySearchPicksTheNearestCode() {
        float[] map = Blockwise8bit.dynamicMapSigned();
        Random r = new Random(1);
        for (int t = 0; t < 20000; t++) {
            float x = switch (t % 3) {
                case 0 -> r.nextFloat() * 2 - 1;
                case 1 -> (float) (r.nextGaussian() * 1e-3);
                default -> (float) Math.copySign(Math.pow(10, -7 * r.nextDouble()), r.nextDouble() - 0.5);
            };
            int q = Blockwise8bit.quantizeValue(map, x);
            float err = Math.abs(x - map[q]);
            float best = Float.MAX_VALUE;
            for (float c : map) best = Math.min(best, Math.abs(x - c));
            assertEquals(best, err, Math.ulp(x) * 2, "x = " + x);
        }
    }

    @Test
    void exactMidpointsAndEnds() {
        float[] map = Blockwise8bit.dynamicMapSigned();
        // between index 254 and 255 (0.99296875 and 1): the midpoint goes to the lower pivot
        float mid = (map[254] + map[255]) * 0.5f;
        assertEquals(254, Blockwise8bit.quantizeValue(map, mid));
        assertEquals(255, Blockwise8bit.quantizeValue(map, Math.nextUp(mid)));
        assertEquals(255, Blockwise8bit.quantizeValue(map, 1f));
        assertEquals(0, Blockwise8bit.quantizeValue(map, -1f));
        assertEquals(127, Blockwise8bit.quantizeValue(map, 0f));
        assertEquals(0, Blockwise8bit.quantizeValue(map, Float.NaN));
        for (int i = 0; i < 256; i++) assertEquals(i, Blockwise8bit.quantizeValue(map, map[i]), "code " + i);
    }

    @Test
    void quantizeDequantizeRoundTrip() {
        float[] a = TestData.gaussian(9, 1000, 2);
        float[] map = Blockwise8bit.dynamicMapSigned();
        Blockwise8bit.Result r = Blockwise8bit.quantize(a, map, 256);
        assertEquals(4, r.absmax().length);
        float[] back = Blockwise8bit.dequantize(r.codes(), r.absmax(), map, 256);
        for (int i = 0; i < a.length; i++) {
            assertTrue(Math.abs(a[i] - back[i]) <= r.absmax()[i / 256] * 0.0070313f, "element " + i);
        }
        assertThrows(IllegalArgumentException.class, () -> Blockwise8bit.dequantize(r.codes(), new float[3], map, 256));
    }
}
