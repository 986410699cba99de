package dev.impasto.quant;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class GgmlTypeTest {
    @Test
    void idsAndSizesMatchGgml() {
        assertType(GgmlType.F32, 0, 1, 4);
        assertType(GgmlType.F16, 1, 1, 2);
        assertType(GgmlType.Q4_0, 2, 32, 18);
        assertType(GgmlType.Q4_1, 3, 32, 20);
        assertType(GgmlType.Q5_0, 6, 32, 22);
        assertType(GgmlType.Q5_1, 7, 32, 24);
        assertType(GgmlType.Q8_0, 8, 32, 34);
        assertType(GgmlType.Q2_K, 10, 256, 84);
        assertType(GgmlType.Q3_K, 11, 256, 110);
        assertType(GgmlType.Q4_K, 12, 256, 144);
        assertType(GgmlType.Q5_K, 13, 256, 176);
        assertType(GgmlType.Q6_K, 14, 256, 210);
        assertType(GgmlType.BF16, 30, 1, 2);
        assertEquals("q4_K", GgmlType.Q4_K.ggmlName());
    }

    private static void assertType(GgmlType t, int id, int block, int bytes) {
        assertEquals(id, t.id());
        assertEquals(block, t.blockSize());
        assertEquals(bytes, t.typeSize());
        assertSame(t, GgmlType.byId(id));
    }

    @Test
    void everyTypeRoundTripsThroughItsId() {
        for (GgmlType t : GgmlType.values()) assertSame(t, GgmlType.byId(t.id()));
    }

    @Test
    void bytesForWholeBlocks() {
        // FLUX double_blocks img_mlp.0: 12288 x 3072 in Q4_K
        assertEquals(12288L * 3072 / 256 * 144, GgmlType.Q4_K.bytesFor(12288L * 3072));
        assertEquals(34, GgmlType.Q8_0.bytesFor(32));
        assertEquals(6, GgmlType.F16.bytesFor(3));
        assertThrows(IllegalArgumentException.class, () -> GgmlType.Q4_0.bytesFor(33));
    }

    @Test
    void unknownIdsAreNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GgmlType.byId(4));
        assertTrue(e.getMessage().contains("4"));
        assertNull(GgmlType.byIdOrNull(99));
        assertNull(GgmlType.byIdOrNull(-1));
    }
}
