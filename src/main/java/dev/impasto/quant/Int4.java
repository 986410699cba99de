package dev.impasto.quant;

import java.util.Objects;

/**
 * Asymmetric int4 with groups along the input dimension: per group {@code min}, {@code max},
 * {@code scale = (max - min) / 15}, {@code q = clamp(rint((w - min) / scale), 0, 15)}, {@code w' = min + q * scale}
 * (all float). Layout in {@link Int4Quantized}.
 *
 * <p>Rounding is half to even. A constant group has scale 0 and codes 0, and reconstructs exactly to min. The
 * round-trip error per element is at most {@code scale / 2} (plus float rounding). Note a GPU kernel that fuses
 * {@code min + q * scale} into one FMA can differ from this in the last bit.
 */
public final class Int4 {
    public static final int DEFAULT_GROUP_SIZE = 128;

    private Int4() {}

    public static Int4Quantized quantize(float[] w, int n, int k) {
        return quantize(w, n, k, DEFAULT_GROUP_SIZE);
    }

    public static Int4Quantized quantize(float[] w, int n, int k, int groupSize) {
        Objects.requireNonNull(w, "w");
        Int8.checkShape(n, k);
        if (groupSize <= 0) throw new IllegalArgumentException("group size must be positive, got " + groupSize);
        if (w.length != (long) n * k) throw new IllegalArgumentException("weight has " + w.length + " elements, not " + n + "x" + k);
        int rowBytes = (k + 1) / 2;
        int groupsPerRow = (k + groupSize - 1) / groupSize;
        byte[] packed = new byte[n * rowBytes];
        float[] scale = new float[n * groupsPerRow];
        float[] min = new float[n * groupsPerRow];
        Chunks.run(n, Math.max(1, 8192 / Math.max(1, k)), k, (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                for (int g = 0; g < groupsPerRow; g++) {
                    int from = g * groupSize;
                    int to = Math.min(k, from + groupSize);
                    float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
                    for (int c = from; c < to; c++) {
                        float v = w[r * k + c];
                        if (!Float.isFinite(v)) throw new IllegalArgumentException("weight element (" + r + ", " + c + ") is " + v);
                        lo = Math.min(lo, v);
                        hi = Math.max(hi, v);
                    }
                    float s = (hi - lo) / 15f;
                    int gi = r * groupsPerRow + g;
                    scale[gi] = s;
                    min[gi] = lo;
                    for (int c = from; c < to; c++) {
                        int q = 0;
                        if (s != 0f) q = Math.max(0, Math.min(15, (int) Math.rint((w[r * k + c] - lo) / s)));
                        int at = r * rowBytes + (c >>> 1);
                        packed[at] = (byte) ((c & 1) == 0 ? (packed[at] & 0x0f) | q << 4 : (packed[at] & 0xf0) | q);
                    }
                }
            }
        });
        return new Int4Quantized(packed, scale, min, n, k, groupSize);
    }

    public static float[] dequantize(Int4Quantized x) {
        int n = x.n(), k = x.k(), gs = x.groupSize();
        int rowBytes = x.rowBytes(), groupsPerRow = x.groupsPerRow();
        byte[] packed = x.packed();
        float[] scale = x.scale(), min = x.min();
        float[] out = new float[n * k];
        Chunks.run(n, Math.max(1, 8192 / Math.max(1, k)), k, (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                for (int c = 0; c < k; c++) {
                    int b = packed[r * rowBytes + (c >>> 1)] & 0xff;
                    int q = (c & 1) == 0 ? b >>> 4 : b & 0x0f;
                    int g = r * groupsPerRow + c / gs;
                    out[r * k + c] = min[g] + q * scale[g];
                }
            }
        });
        return out;
    }
}
