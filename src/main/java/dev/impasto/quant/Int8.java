package dev.impasto.quant;

import java.util.Objects;

/**
 * Symmetric per-output-channel int8: {@code scale[r] = max|W[r, :]| / 127}, {@code q = rint(w / scale)} clamped to
 * [-127, 127], {@code w' = q * scale}.
 *
 * <p>Rounding is half to even ({@link Math#rint}, the same as CUDA's {@code __float2int_rn} and
 * {@code torch.round}), on the float quotient {@code w / scale}. An all-zero row gets scale 0 and codes 0 (no NaN).
 * Round-trip error per element is at most {@code scale / 2} (plus float rounding of the quotient).
 */
public final class Int8 {
    private Int8() {}

    public static Int8Quantized quantize(float[] w, int n, int k) {
        Objects.requireNonNull(w, "w");
        checkShape(n, k);
        if (w.length != (long) n * k) throw new IllegalArgumentException("weight has " + w.length + " elements, not " + n + "x" + k);
        byte[] q = new byte[w.length];
        float[] scale = new float[n];
        Chunks.run(n, Math.max(1, 8192 / Math.max(1, k)), k, (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int base = r * k;
                float max = 0f;
                for (int c = 0; c < k; c++) {
                    float v = w[base + c];
                    if (!Float.isFinite(v)) throw new IllegalArgumentException("weight element (" + r + ", " + c + ") is " + v);
                    max = Math.max(max, Math.abs(v));
                }
                float s = max / 127f;
                scale[r] = s;
                if (s == 0f) continue; // all-zero row (or all below float resolution): codes stay 0
                for (int c = 0; c < k; c++) {
                    float t = (float) Math.rint(w[base + c] / s);
                    q[base + c] = (byte) Math.max(-127, Math.min(127, (int) t));
                }
            }
        });
        return new Int8Quantized(q, scale, n, k);
    }

    public static float[] dequantize(Int8Quantized x) {
        int n = x.n(), k = x.k();
        float[] out = new float[n * k];
        byte[] q = x.q();
        float[] scale = x.scale();
        Chunks.run(n, Math.max(1, 8192 / Math.max(1, k)), k, (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                float s = scale[r];
                for (int c = r * k, e = c + k; c < e; c++) out[c] = q[c] * s;
            }
        });
        return out;
    }

    static void checkShape(int n, int k) {
        if (n < 0 || k < 0 || (long) n * k > Integer.MAX_VALUE - 8L) {
            throw new IllegalArgumentException("shape " + n + "x" + k + " is negative or too large for one Java array");
        }
    }
}
