package dev.impasto.quant;

import java.util.Objects;

/**
 * A weight W[n, k] quantized to int8 per output channel (row), symmetric.
 *
 * @param q     n*k signed codes, row-major, each in [-127, 127]
 * @param scale f32 per row; element (r, c) is {@code q[r*k + c] * scale[r]}
 * @param n     rows (output features)
 * @param k     columns (input features)
 */
public record Int8Quantized(byte[] q, float[] scale, int n, int k) {
    public Int8Quantized {
        Objects.requireNonNull(q, "q");
        Objects.requireNonNull(scale, "scale");
        Int8.checkShape(n, k);
        if (q.length != (long) n * k) throw new IllegalArgumentException(n + "x" + k + " needs " + (long) n * k + " int8 codes, got " + q.length);
        if (scale.length != n) throw new IllegalArgumentException(n + " rows need " + n + " scales, got " + scale.length);
    }

    /** The dequantized value of element (row, col). */
    public float get(int row, int col) {
        return q[row * k + col] * scale[row];
    }
}
