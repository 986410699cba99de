package dev.impasto.quant;

import java.util.Objects;

/**
 * bitsandbytes' blockwise 8-bit quantization with a 256-entry code map ({@code quantize_blockwise} /
 * {@code dequantize_blockwise}), used here for the nested ("double-quantized") NF4 absmax.
 *
 * <p>Quantization follows the CUDA kernel {@code kQuantizeBlockwise<..., General8bit>}: per block of
 * {@code blocksize} consecutive elements, {@code absmax = max|a|}, {@code x = a * (1.0f / absmax)} in float, and the
 * code index comes from {@code dQuantize<0>}'s binary search (pivot 127, steps 64..1, then a midpoint test), which
 * {@link #quantizeValue(float[], float)} reproduces branch for branch, including where ties go. Dequantization is
 * {@code code[q] * absmax[block]} in float.
 */
public final class Blockwise8bit {

    /** Codes and per-block absmax of one quantized array. */
    public record Result(byte[] codes, float[] absmax) {
        public Result {
            Objects.requireNonNull(codes, "codes");
            Objects.requireNonNull(absmax, "absmax");
        }
    }

    private Blockwise8bit() {}

    /**
     * bitsandbytes' {@code create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)}, value for value.
     *
     * <p>For exponent i = 0..6 there are 2^i mean values of {@code torch.linspace(0.1, 1, 2^i + 1)} (float32, which
     * torch fills as {@code start + step*k} for the first half and {@code end - step*(n-1-k)} for the second), scaled
     * by 10^(i-6) in float32, with both signs; then 0 and 1.0; sorted. Index 127 is 0, index 255 is 1.0.
     *
     * <p>Checked bit for bit against torch 2.11 on x86-64, whose AVX2/AVX-512 build of the linspace kernel fuses
     * {@code start + step*k} into one FMA; a torch running its non-FMA kernel would give 1-ulp different values for
     * about a fifth of the entries. Files store the map they were made with ({@code nested_quant_map}), and
     * {@link NestedAbsmax} dequantizes with the stored one.
     */
    public static float[] dynamicMapSigned() {
        return DYNAMIC_SIGNED.clone();
    }

    private static final float[] DYNAMIC_SIGNED = buildDynamicMapSigned();

    private static float[] buildDynamicMapSigned() {
        final int maxExponentBits = 7;
        final int nonSignBits = 7;
        // Python's 10 ** (i - 6) is a double; torch multiplies a float32 tensor by it after converting it to float.
        final double[] powersOfTen = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};
        float[] data = new float[256];
        int count = 0;
        for (int i = 0; i < maxExponentBits; i++) {
            int fractionItems = (1 << (i + nonSignBits - maxExponentBits)) + 1;
            float[] boundaries = torchLinspaceFloat(0.1f, 1.0f, fractionItems);
            float scale = (float) powersOfTen[i];
            for (int k = 0; k + 1 < fractionItems; k++) {
                float mean = (boundaries[k] + boundaries[k + 1]) / 2.0f;
                data[count++] = scale * mean;
                data[count++] = -scale * mean;
            }
        }
        // additional_items = 2^(non_sign_bits - max_exponent_bits) - 1 = 0 for the signed 8-bit map
        data[count++] = 0f;
        data[count++] = 1.0f;
        if (count != 256) throw new AssertionError("dynamic map has " + count + " values");
        java.util.Arrays.sort(data);
        return data;
    }

    /**
     * {@code torch.linspace(start, end, steps, dtype=float32)} on an x86-64 CPU (aten linspace_kernel, compiled with
     * FMA contraction).
     */
    static float[] torchLinspaceFloat(float start, float end, int steps) {
        float[] out = new float[steps];
        if (steps == 1) {
            out[0] = start;
            return out;
        }
        float step = (end - start) / (float) (steps - 1);
        int halfway = steps / 2;
        for (int idx = 0; idx < steps; idx++) {
            out[idx] = idx < halfway ? Math.fma(step, (float) idx, start) : Math.fma(-step, (float) (steps - idx - 1), end);
        }
        return out;
    }

    /**
     * The code index bitsandbytes' {@code dQuantize<0>} picks for {@code x} (already divided by the block absmax).
     * {@code code} must be sorted ascending with 256 entries. A NaN {@code x} (an all-zero block: 0 * (1/0)) gives
     * index 0, as on the GPU.
     */
    public static int quantizeValue(float[] code, float x) {
        int pivot = 127;
        int upperPivot = 255;
        int lowerPivot = 0;
        float lower = -1.0f;
        float upper = 1.0f;
        float val = code[pivot];
        for (int i = 64; i > 0; i >>= 1) {
            if (x > val) {
                lowerPivot = pivot;
                lower = val;
                pivot += i;
            } else {
                upperPivot = pivot;
                upper = val;
                pivot -= i;
            }
            val = code[pivot];
        }
        if (upperPivot == 255) upper = code[upperPivot];
        if (lowerPivot == 0) lower = code[lowerPivot];
        if (x > val) {
            float midpoint = (upper + val) * 0.5f;
            return x > midpoint ? upperPivot : pivot;
        } else {
            float midpoint = (lower + val) * 0.5f;
            return x < midpoint ? lowerPivot : pivot;
        }
    }

    /** Quantizes {@code a} blockwise with {@code code} (256 sorted entries). The last block may be shorter. */
    public static Result quantize(float[] a, float[] code, int blocksize) {
        Objects.requireNonNull(a, "a");
        checkCode(code);
        if (blocksize <= 0) throw new IllegalArgumentException("blocksize must be positive, got " + blocksize);
        int n = a.length;
        int blocks = (int) (((long) n + blocksize - 1) / blocksize);
        byte[] q = new byte[n];
        float[] absmax = new float[blocks];
        Chunks.run(blocks, Math.max(1, (1 << 16) / blocksize), blocksize, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                int from = b * blocksize;
                int to = Math.min(n, from + blocksize);
                float max = 0f;
                for (int i = from; i < to; i++) {
                    float v = a[i];
                    if (!Float.isFinite(v)) {
                        throw new IllegalArgumentException("element " + i + " is " + v + "; blockwise quantization needs finite values");
                    }
                    max = Math.max(max, Math.abs(v));
                }
                absmax[b] = max;
                float inv = 1.0f / max;
                for (int i = from; i < to; i++) q[i] = (byte) quantizeValue(code, a[i] * inv);
            }
        });
        return new Result(q, absmax);
    }

    /** {@code out[i] = code[q[i] & 255] * absmax[i / blocksize]}. */
    public static float[] dequantize(byte[] q, float[] absmax, float[] code, int blocksize) {
        Objects.requireNonNull(q, "codes");
        Objects.requireNonNull(absmax, "absmax");
        checkCode(code);
        if (blocksize <= 0) throw new IllegalArgumentException("blocksize must be positive, got " + blocksize);
        long blocks = ((long) q.length + blocksize - 1) / blocksize;
        if (absmax.length != blocks) {
            throw new IllegalArgumentException(q.length + " codes in blocks of " + blocksize + " need " + blocks
                    + " absmax values, got " + absmax.length);
        }
        float[] out = new float[q.length];
        for (int i = 0; i < q.length; i++) out[i] = code[q[i] & 0xff] * absmax[i / blocksize];
        return out;
    }

    static void checkCode(float[] code) {
        Objects.requireNonNull(code, "code");
        if (code.length != 256) throw new IllegalArgumentException("an 8-bit code map has 256 entries, got " + code.length);
    }
}
