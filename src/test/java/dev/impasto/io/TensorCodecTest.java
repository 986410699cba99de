package dev.impasto.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.impasto.tensor.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class TensorCodecTest {
    @Test
    void toDoublesKeepsWhatAFloatWouldRound() {
        double[] f64 = {Math.PI, 1e-300, -0.1, 1 + Math.ulp(1.0)};
        MemorySegment d = Arena.ofAuto().allocate(8L * f64.length);
        for (int i = 0; i < f64.length; i++) d.set(TensorCodec.LE_DOUBLE, 8L * i, f64[i]);
        assertArrayEquals(f64, new TensorEntry("d", DType.F64, new long[] {4}, d).toDoubleArray(), 0.0);

        long[] i64 = {(1L << 53) - 1, -(1L << 40) - 3, 7};
        MemorySegment l = Arena.ofAuto().allocate(8L * i64.length);
        for (int i = 0; i < i64.length; i++) l.set(TensorCodec.LE_LONG, 8L * i, i64[i]);
        assertArrayEquals(new double[] {(1L << 53) - 1, -(1L << 40) - 3, 7}, TensorCodec.toDoubles(l, DType.I64, 3), 0.0);

        MemorySegment n = Arena.ofAuto().allocate(8);
        n.set(TensorCodec.LE_INT, 0, 16_777_217); // 2^24 + 1: a float rounds it to 2^24
        n.set(TensorCodec.LE_INT, 4, Integer.MIN_VALUE + 1);
        assertArrayEquals(new double[] {16_777_217, Integer.MIN_VALUE + 1}, TensorCodec.toDoubles(n, DType.I32, 2), 0.0);

        float[] f = {1.5f, -2.25f, 3e-8f};
        for (DType t : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            MemorySegment s = TensorCodec.encode(f, t, Arena.ofAuto());
            float[] asFloats = TensorCodec.toFloats(s, t, 3);
            double[] expect = {asFloats[0], asFloats[1], asFloats[2]};
            assertArrayEquals(expect, TensorCodec.toDoubles(s, t, 3), 0.0, t.name());
        }
        assertThrows(IndexOutOfBoundsException.class, () -> TensorCodec.toDoubles(n, DType.F64, 2));
    }
}
