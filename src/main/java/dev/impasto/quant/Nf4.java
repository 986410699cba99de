package dev.impasto.quant;

import java.util.Objects;

/**
 * NF4 (4-bit NormalFloat) quantization exactly as bitsandbytes does it ({@code quantize_4bit(quant_type="nf4")}).
 *
 * <p>Layout: blocks of {@code blocksize} (default 64) consecutive elements of the flattened row-major weight
 * W[out, in]; f32 {@code absmax = max|w|} per block; each element becomes the 4-bit index of a value of
 * {@link #code()}; element 2j goes in the HIGH nibble of byte j, element 2j+1 in the LOW nibble. A last partial
 * block uses only its own elements for its absmax; when numel is odd the final low nibble encodes a zero pad
 * (index 7, or 0 for an all-zero last block), as bitsandbytes' CUDA kernel stores it.
 *
 * <p>The index of a value is chosen by bitsandbytes' decision tree {@code dQuantizeNF4} on
 * {@code x = w * (1.0f / absmax)} (float), whose thresholds are the float midpoints between neighbouring codes
 * and which sends a value exactly on a threshold to the LOWER code ({@code x > t} goes up). An all-zero block has
 * absmax 0, {@code x = 0 * inf = NaN}, and every comparison fails, so all its nibbles are 0 (code -1.0, times
 * absmax 0 = -0.0), again as on the GPU. Non-finite weights are rejected.
 *
 * <p>Known, deliberate difference: bitsandbytes builds its CUDA kernels with {@code --use_fast_math}, so its
 * {@code 1.0f / absmax} is the approximate reciprocal (within 1 ulp) and denormals flush to zero. This class uses the
 * IEEE reciprocal, so a value within an ulp or two of a threshold can land on the other side (never more than one
 * code step, and only for such boundary values).
 *
 * <p>Double quantization ({@code compress_statistics=True}): {@code offset = mean(absmax)}; the values
 * {@code absmax - offset} are quantized by {@link Blockwise8bit} in blocks of 256 with the signed dynamic map
 * ({@link Blockwise8bit#dynamicMapSigned()}); see {@link NestedAbsmax}.
 */
public final class Nf4 {
    public static final int DEFAULT_BLOCKSIZE = 64;
    public static final int NESTED_BLOCKSIZE = 256;

    private static final float[] CODE = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    };

    private Nf4() {}

    /** The 16 NF4 code values, index 0..15 (a copy). */
    public static float[] code() {
        return CODE.clone();
    }

    /** The code value of a 4-bit index (only the low 4 bits of {@code index} are used). */
    public static float code(int index) {
        return CODE[index & 0x0f];
    }

    /**
     * Whether a checkpoint's {@code quant_map} is the NF4 table (bitsandbytes stores it with every NF4 weight; an FP4
     * weight stores a different one).
     */
    public static boolean matchesCode(float[] quantMap) {
        return quantMap != null && java.util.Arrays.equals(quantMap, CODE);
    }

    /**
     * bitsandbytes' {@code dQuantizeNF4}: the 4-bit index for a value already divided by its block's absmax.
     * Thresholds are the kernel's float literals; a value equal to a threshold takes the lower index; NaN gives 0.
     */
    public static int quantizeValue(float x) {
        if (x > 0.03979014977812767f) {
            if (x > 0.3893125355243683f) {
                if (x > 0.6427869200706482f) return x > 0.8614784181118011f ? 0b1111 : 0b1110;
                return x > 0.5016634166240692f ? 0b1101 : 0b1100;
            }
            if (x > 0.2035212516784668f) return x > 0.2920137718319893f ? 0b1011 : 0b1010;
            return x > 0.1202552504837513f ? 0b1001 : 0b1000;
        }
        if (x > -0.33967943489551544f) {
            if (x > -0.13791173323988914f) return x > -0.045525018125772476f ? 0b0111 : 0b0110;
            return x > -0.23460740596055984f ? 0b0101 : 0b0100;
        }
        if (x > -0.6106329262256622f) return x > -0.4599952697753906f ? 0b0011 : 0b0010;
        return x > -0.8480964004993439f ? 0b0001 : 0b0000;
    }

    private static final float T0 = -0.8480964004993439f, T1 = -0.6106329262256622f, T2 = -0.4599952697753906f,
            T3 = -0.33967943489551544f, T4 = -0.23460740596055984f, T5 = -0.13791173323988914f,
            T6 = -0.045525018125772476f, T7 = 0.03979014977812767f, T8 = 0.1202552504837513f,
            T9 = 0.2035212516784668f, T10 = 0.2920137718319893f, T11 = 0.3893125355243683f,
            T12 = 0.5016634166240692f, T13 = 0.6427869200706482f, T14 = 0.8614784181118011f;

    /** Thresholds padded with +inf, so {@code x > THRESHOLDS[15]} is always false. */
    private static final float[] THRESHOLDS = {T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14,
        Float.POSITIVE_INFINITY};

    /** Buckets of width 1/1024 over [-1, 1). */
    private static final int BUCKETS = 2048;

    /**
     * Per bucket, the number of thresholds below the bucket's start minus one bucket width. Thresholds are at least
     * 0.08 apart, so at most one threshold lies between that count and any x in the bucket (float rounding of the
     * bucket index moves x by far less than the one-bucket margin).
     */
    private static final byte[] THRESHOLDS_BELOW_BUCKET = new byte[BUCKETS];

    static {
        for (int b = 0; b < BUCKETS; b++) {
            double start = -1 + (b - 1) / 1024.0;
            int below = 0;
            for (int t = 0; t < 15; t++) if (THRESHOLDS[t] < start) below++;
            THRESHOLDS_BELOW_BUCKET[b] = (byte) below;
        }
    }

    /**
     * Same result as {@link #quantizeValue(float)} (the tree over sorted thresholds returns the number of thresholds
     * strictly below x, none for NaN) from a bucket table and one comparison. Random weights make the tree's
     * branches unpredictable; this is about four times faster.
     */
    static int quantizeValueFast(float x) {
        int b = (int) ((x + 1f) * 1024f); // NaN -> 0
        b = Math.max(0, Math.min(BUCKETS - 1, b));
        int q = THRESHOLDS_BELOW_BUCKET[b];
        return x > THRESHOLDS[q] ? q + 1 : q;
    }

    /**
     * The decision thresholds of {@link #quantizeValue(float)}, ascending: index {@code t} separates code {@code t}
     * from code {@code t + 1}. A copy.
     */
    public static float[] thresholds() {
        return new float[] {T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14};
    }

    /** Quantizes with blocks of 64, as FLUX NF4 exports do. */
    public static Nf4Quantized quantize(float[] w, boolean doubleQuant) {
        return quantize(w, DEFAULT_BLOCKSIZE, doubleQuant);
    }

    /**
     * Quantizes the flattened weight {@code w}.
     *
     * @param blocksize   32, 64, ..., 4096 (bitsandbytes' allowed sizes)
     * @param doubleQuant also quantize the absmax values (bitsandbytes {@code compress_statistics=True})
     */
    public static Nf4Quantized quantize(float[] w, int blocksize, boolean doubleQuant) {
        Objects.requireNonNull(w, "w");
        checkBlocksize(blocksize);
        int n = w.length;
        int blocks = (int) (((long) n + blocksize - 1) / blocksize);
        byte[] packed = new byte[(int) (((long) n + 1) / 2)];
        float[] absmax = new float[blocks];
        Chunks.run(blocks, Math.max(1, 8192 / blocksize), blocksize, (b0, b1) -> {
            for (int b = b0; b < b1; b++) quantizeBlock(w, b, blocksize, packed, absmax);
        });
        if (!doubleQuant) return new Nf4Quantized(packed, absmax, n, blocksize, null);
        return new Nf4Quantized(packed, null, n, blocksize, compressAbsmax(absmax));
    }

    private static void quantizeBlock(float[] w, int b, int blocksize, byte[] packed, float[] absmax) {
        int n = w.length;
        int from = b * blocksize;
        int to = Math.min(n, from + blocksize);
        float max = 0f;
        for (int i = from; i < to; i++) {
            float v = w[i];
            if (!Float.isFinite(v)) {
                throw new IllegalArgumentException("weight element " + i + " is " + v
                        + "; NF4 can only hold finite values (is the checkpoint corrupt?)");
            }
            max = Math.max(max, Math.abs(v));
        }
        absmax[b] = max;
        float inv = 1.0f / max;
        // blocksize is even, so a block starts on a byte boundary; only the very last element can be unpaired.
        int i = from;
        for (; i + 1 < to; i += 2) {
            packed[i >>> 1] = (byte) (quantizeValueFast(w[i] * inv) << 4 | quantizeValueFast(w[i + 1] * inv));
        }
        if (i < to) packed[i >>> 1] = (byte) (quantizeValueFast(w[i] * inv) << 4 | quantizeValueFast(0f * inv));
    }

    /**
     * Double-quantizes per-block absmax values as bitsandbytes does: {@code offset = mean(absmax)} (computed in
     * double and rounded to float; torch's float32 mean can differ from it in the last bit), then
     * {@code absmax - offset} (float) quantized by {@link Blockwise8bit} in blocks of 256 with the signed dynamic map.
     */
    public static NestedAbsmax compressAbsmax(float[] absmax) {
        Objects.requireNonNull(absmax, "absmax");
        if (absmax.length == 0) {
            return new NestedAbsmax(new byte[0], new float[0], 0f, NESTED_BLOCKSIZE, Blockwise8bit.dynamicMapSigned());
        }
        double sum = 0;
        for (float a : absmax) sum += a;
        float offset = (float) (sum / absmax.length);
        float[] centered = new float[absmax.length];
        for (int i = 0; i < absmax.length; i++) centered[i] = absmax[i] - offset;
        float[] map = Blockwise8bit.dynamicMapSigned();
        Blockwise8bit.Result r = Blockwise8bit.quantize(centered, map, NESTED_BLOCKSIZE);
        return new NestedAbsmax(r.codes(), r.absmax(), offset, NESTED_BLOCKSIZE, map);
    }

    /** The dequantized tensor, flattened: {@code code(nibble(i)) * absmax[i / blocksize]} in float. */
    public static float[] dequantize(Nf4Quantized q) {
        float[] out = new float[(int) q.numel()];
        dequantize(q, out, 0);
        return out;
    }

    /** Dequantizes into {@code out[offset .. offset + numel)}. */
    public static void dequantize(Nf4Quantized q, float[] out, int offset) {
        Objects.requireNonNull(q, "q");
        Objects.requireNonNull(out, "out");
        int n = (int) q.numel();
        if (offset < 0 || (long) offset + n > out.length) {
            throw new IllegalArgumentException("output of " + out.length + " floats has no room for " + n
                    + " elements at offset " + offset);
        }
        float[] absmax = q.blockAbsmax();
        byte[] packed = q.packed();
        int bs = q.blocksize();
        Chunks.run(absmax.length, Math.max(1, 8192 / bs), bs, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                int from = b * bs;
                int to = Math.min(n, from + bs);
                float scale = absmax[b];
                for (int i = from; i < to; i++) {
                    int byt = packed[i >>> 1] & 0xff;
                    int nib = (i & 1) == 0 ? byt >>> 4 : byt & 0x0f;
                    out[offset + i] = CODE[nib] * scale;
                }
            }
        });
    }

    static void checkBlocksize(int blocksize) {
        if (blocksize < 32 || blocksize > 4096 || Integer.bitCount(blocksize) != 1) {
            throw new IllegalArgumentException("NF4 blocksize must be one of 32, 64, 128, 256, 512, 1024, 2048, 4096"
                    + " (bitsandbytes' sizes), got " + blocksize);
        }
    }
}
