package dev.impasto.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * CPU (de)quantization of ggml/GGUF block formats, bit-compatible with ggml's {@code dequantize_row_*} and
 * {@code quantize_row_*_ref} (ggml/src/ggml-quants.c).
 *
 * <p>Block layouts (little-endian; f16 = IEEE half):
 * <ul>
 *   <li>Q8_0, 34 bytes / 32: f16 d, i8 qs[32]; {@code y[j] = qs[j] * d}.</li>
 *   <li>Q4_0, 18 bytes / 32: f16 d, u8 qs[16]; {@code y[j] = ((qs[j] & 15) - 8) * d}, {@code y[j+16] =
 *       ((qs[j] >> 4) - 8) * d}.</li>
 *   <li>Q4_1, 20 bytes / 32: f16 d, f16 m, qs[16]; {@code y = q * d + m}, nibble order as Q4_0.</li>
 *   <li>Q5_0, 22 bytes / 32: f16 d, u32 qh, qs[16]; 5th bit of element j is bit j of qh; {@code y = (q - 16) * d}.</li>
 *   <li>Q5_1, 24 bytes / 32: f16 d, f16 m, u32 qh, qs[16]; {@code y = q * d + m}.</li>
 *   <li>Q4_K, 144 bytes / 256: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins (see {@link #scaleMinK4}),
 *       qs[128]. Sub-block s (32 elements) has {@code y = d*sc[s] * q - dmin*m[s]}; each 64 elements take 32 bytes
 *       of qs: the first 32 elements are the low nibbles, the next 32 the high nibbles.</li>
 *   <li>Q5_K, 176 bytes / 256: f16 d, f16 dmin, scales[12], qh[32], qs[128]; as Q4_K plus a 5th bit from qh
 *       (bit 2c of qh[l] for the low-nibble half of 64-chunk c, bit 2c+1 for the high half).</li>
 *   <li>Q6_K, 210 bytes / 256: ql[128], qh[64], i8 scales[16], f16 d (last); {@code y = d * scale * (q - 32)}.</li>
 * </ul>
 *
 * <p>Arithmetic is plain float in ggml's evaluation order with no fused multiply-add; the golden data in the tests
 * came from ggml built without FMA contraction. For dequantization this does not matter: every product there
 * (an 11-bit f16 scale times a 6-bit sub-scale times a code of at most 5 bits) is exact in float, so a kernel that fuses
 * {@code d*q - m} into an FMA gets the same bits. Q6_K's {@code (d * sc) * q} is the one two-rounding case, and it
 * is exact too (11 + 7 + 5 significant bits). The quantizers' decisions could in principle flip where a compiler contracts;
 * ggml built with {@code -march=x86-64-v3} gave the same bytes on the test data.
 */
public final class GgmlQuants {
    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfByte I8 = ValueLayout.JAVA_BYTE;

    private GgmlQuants() {}

    // ---------------------------------------------------------------- dequantization

    /** Dequantizes {@code numel} elements stored as {@code type} at the start of {@code src}. */
    public static float[] dequantize(GgmlType type, MemorySegment src, long numel) {
        checkNumel(numel);
        float[] out = new float[(int) numel];
        dequantize(type, src, numel, out, 0);
        return out;
    }

    /** Dequantizes {@code numel} elements stored as {@code type} in {@code src[srcOffset..]}. */
    public static float[] dequantize(GgmlType type, byte[] src, int srcOffset, long numel) {
        Objects.requireNonNull(src, "src");
        if (srcOffset < 0 || srcOffset > src.length) throw new IllegalArgumentException("offset " + srcOffset + " outside " + src.length + " bytes");
        return dequantize(type, MemorySegment.ofArray(src).asSlice(srcOffset), numel);
    }

    /**
     * Dequantizes {@code numel} elements stored as {@code type} at the start of {@code src} into
     * {@code dst[dstOffset .. dstOffset + numel)}. Checks that {@code src} holds enough bytes and that numel is whole
     * blocks before reading anything.
     */
    public static void dequantize(GgmlType type, MemorySegment src, long numel, float[] dst, int dstOffset) {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(src, "src");
        Objects.requireNonNull(dst, "dst");
        checkNumel(numel);
        if (!type.canDequantize()) {
            throw new UnsupportedOperationException("impasto cannot dequantize ggml type " + type.ggmlName()
                    + " yet (supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_K, q5_K, q6_K)");
        }
        long bytes = type.bytesFor(numel);
        if (src.byteSize() < bytes) {
            throw new IllegalArgumentException(numel + " " + type.ggmlName() + " elements need " + bytes
                    + " bytes, the data has only " + src.byteSize());
        }
        if (dstOffset < 0 || dstOffset + numel > dst.length) {
            throw new IllegalArgumentException("output of " + dst.length + " floats has no room for " + numel + " at " + dstOffset);
        }
        int blocks = (int) (numel / type.blockSize());
        int bs = type.blockSize();
        int ts = type.typeSize();
        int grain = Math.max(1, 8192 / bs);
        Chunks.run(blocks, grain, bs, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                long at = (long) b * ts;
                int y = dstOffset + b * bs;
                switch (type) {
                    case F32 -> dst[y] = src.get(F32, at);
                    case F16 -> dst[y] = Float.float16ToFloat(src.get(F16, at));
                    case BF16 -> dst[y] = Float.intBitsToFloat((src.get(F16, at) & 0xffff) << 16);
                    case Q8_0 -> q8_0(src, at, dst, y);
                    case Q4_0 -> q4_0(src, at, dst, y);
                    case Q4_1 -> q4_1(src, at, dst, y);
                    case Q5_0 -> q5_0(src, at, dst, y);
                    case Q5_1 -> q5_1(src, at, dst, y);
                    case Q4_K -> q4_K(src, at, dst, y);
                    case Q5_K -> q5_K(src, at, dst, y);
                    case Q6_K -> q6_K(src, at, dst, y);
                    default -> throw new AssertionError(type);
                }
            }
        });
    }

    private static float f16(MemorySegment s, long at) {
        return Float.float16ToFloat(s.get(F16, at));
    }

    private static int u8(MemorySegment s, long at) {
        return s.get(I8, at) & 0xff;
    }

    private static void q8_0(MemorySegment s, long at, float[] y, int yo) {
        float d = f16(s, at);
        for (int j = 0; j < 32; j++) y[yo + j] = s.get(I8, at + 2 + j) * d;
    }

    private static void q4_0(MemorySegment s, long at, float[] y, int yo) {
        float d = f16(s, at);
        for (int j = 0; j < 16; j++) {
            int q = u8(s, at + 2 + j);
            y[yo + j] = ((q & 0x0f) - 8) * d;
            y[yo + j + 16] = ((q >>> 4) - 8) * d;
        }
    }

    private static void q4_1(MemorySegment s, long at, float[] y, int yo) {
        float d = f16(s, at);
        float m = f16(s, at + 2);
        for (int j = 0; j < 16; j++) {
            int q = u8(s, at + 4 + j);
            y[yo + j] = (q & 0x0f) * d + m;
            y[yo + j + 16] = (q >>> 4) * d + m;
        }
    }

    private static void q5_0(MemorySegment s, long at, float[] y, int yo) {
        float d = f16(s, at);
        int qh = s.get(U32, at + 2);
        for (int j = 0; j < 16; j++) {
            int q = u8(s, at + 6 + j);
            int xh0 = ((qh >>> j) << 4) & 0x10;
            int xh1 = (qh >>> (j + 12)) & 0x10;
            y[yo + j] = (((q & 0x0f) | xh0) - 16) * d;
            y[yo + j + 16] = (((q >>> 4) | xh1) - 16) * d;
        }
    }

    private static void q5_1(MemorySegment s, long at, float[] y, int yo) {
        float d = f16(s, at);
        float m = f16(s, at + 2);
        int qh = s.get(U32, at + 4);
        for (int j = 0; j < 16; j++) {
            int q = u8(s, at + 8 + j);
            int xh0 = ((qh >>> j) << 4) & 0x10;
            int xh1 = (qh >>> (j + 12)) & 0x10;
            y[yo + j] = ((q & 0x0f) | xh0) * d + m;
            y[yo + j + 16] = ((q >>> 4) | xh1) * d + m;
        }
    }

    /**
     * ggml's {@code get_scale_min_k4}: the 6-bit scale and min of sub-block {@code j} (0..7) from the 12 packed
     * bytes. Sub-blocks 0..3: scale = low 6 bits of byte j, min = low 6 bits of byte j+4. Sub-blocks 4..7: the low
     * 4 bits come from byte j+4 (scale: low nibble, min: high nibble) and the top 2 bits from the top 2 bits of byte
     * j-4 (scale) and byte j (min). Returns {@code scale | min << 8}.
     */
    public static int scaleMinK4(int j, byte[] scales, int off) {
        int sc, m;
        if (j < 4) {
            sc = scales[off + j] & 63;
            m = scales[off + j + 4] & 63;
        } else {
            int b = scales[off + j + 4] & 0xff;
            sc = (b & 0x0f) | (((scales[off + j - 4] & 0xff) >>> 6) << 4);
            m = (b >>> 4) | (((scales[off + j] & 0xff) >>> 6) << 4);
        }
        return sc | m << 8;
    }

    private static int scaleMinK4(int j, MemorySegment s, long scalesAt) {
        int sc, m;
        if (j < 4) {
            sc = u8(s, scalesAt + j) & 63;
            m = u8(s, scalesAt + j + 4) & 63;
        } else {
            int b = u8(s, scalesAt + j + 4);
            sc = (b & 0x0f) | ((u8(s, scalesAt + j - 4) >>> 6) << 4);
            m = (b >>> 4) | ((u8(s, scalesAt + j) >>> 6) << 4);
        }
        return sc | m << 8;
    }

    private static void q4_K(MemorySegment s, long at, float[] y, int yo) {
        float d = f16(s, at);
        float min = f16(s, at + 2);
        long scales = at + 4;
        long q = at + 16;
        for (int c = 0; c < 4; c++) {
            int sm1 = scaleMinK4(2 * c, s, scales);
            int sm2 = scaleMinK4(2 * c + 1, s, scales);
            float d1 = d * (sm1 & 0xff), m1 = min * (sm1 >>> 8);
            float d2 = d * (sm2 & 0xff), m2 = min * (sm2 >>> 8);
            for (int l = 0; l < 32; l++) y[yo + l] = d1 * (u8(s, q + l) & 0x0f) - m1;
            for (int l = 0; l < 32; l++) y[yo + 32 + l] = d2 * (u8(s, q + l) >>> 4) - m2;
            q += 32;
            yo += 64;
        }
    }

    private static void q5_K(MemorySegment s, long at, float[] y, int yo) {
        float d = f16(s, at);
        float min = f16(s, at + 2);
        long scales = at + 4;
        long qh = at + 16;
        long ql = at + 48;
        int u1 = 1, u2 = 2;
        for (int c = 0; c < 4; c++) {
            int sm1 = scaleMinK4(2 * c, s, scales);
            int sm2 = scaleMinK4(2 * c + 1, s, scales);
            float d1 = d * (sm1 & 0xff), m1 = min * (sm1 >>> 8);
            float d2 = d * (sm2 & 0xff), m2 = min * (sm2 >>> 8);
            for (int l = 0; l < 32; l++) {
                y[yo + l] = d1 * ((u8(s, ql + l) & 0x0f) + ((u8(s, qh + l) & u1) != 0 ? 16 : 0)) - m1;
            }
            for (int l = 0; l < 32; l++) {
                y[yo + 32 + l] = d2 * ((u8(s, ql + l) >>> 4) + ((u8(s, qh + l) & u2) != 0 ? 16 : 0)) - m2;
            }
            ql += 32;
            yo += 64;
            u1 <<= 2;
            u2 <<= 2;
        }
    }

    private static void q6_K(MemorySegment s, long at, float[] y, int yo) {
        float d = f16(s, at + 208);
        long ql = at, qh = at + 128, sc = at + 192;
        for (int n = 0; n < 256; n += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int a = u8(s, ql + l), b = u8(s, ql + l + 32), h = u8(s, qh + l);
                int q1 = ((a & 0x0f) | ((h & 3) << 4)) - 32;
                int q2 = ((b & 0x0f) | (((h >>> 2) & 3) << 4)) - 32;
                int q3 = ((a >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
                int q4 = ((b >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
                y[yo + l] = d * s.get(I8, sc + is) * q1;
                y[yo + l + 32] = d * s.get(I8, sc + is + 2) * q2;
                y[yo + l + 64] = d * s.get(I8, sc + is + 4) * q3;
                y[yo + l + 96] = d * s.get(I8, sc + is + 6) * q4;
            }
            yo += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }

    // ---------------------------------------------------------------- quantization

    /**
     * Encodes {@code x} as {@code type} (F32, F16, BF16, Q8_0, Q4_0 or Q4_K), matching ggml's
     * {@code quantize_row_*_ref}. Quantized types need a whole number of blocks; for a 2-D weight that means the row
     * length (ne[0], the input dimension) must be a multiple of the block size, since ggml blocks never span rows.
     */
    public static byte[] quantize(GgmlType type, float[] x) {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(x, "x");
        if (!type.canQuantize()) {
            throw new UnsupportedOperationException("impasto cannot quantize to ggml type " + type.ggmlName()
                    + " (supported: f32, f16, bf16, q8_0, q4_0, q4_K)");
        }
        long bytes = type.bytesFor(x.length);
        for (int i = 0; i < x.length; i++) {
            if (!Float.isFinite(x[i]) && type.isQuantized()) {
                throw new IllegalArgumentException("element " + i + " is " + x[i] + "; " + type.ggmlName() + " can only hold finite values");
            }
        }
        if (bytes > Integer.MAX_VALUE - 8L) throw new IllegalArgumentException(x.length + " elements are too many for one array");
        byte[] out = new byte[(int) bytes];
        MemorySegment dst = MemorySegment.ofArray(out);
        int bs = type.blockSize();
        int ts = type.typeSize();
        int blocks = x.length / bs;
        Chunks.run(blocks, Math.max(1, 8192 / bs), bs * (type == GgmlType.Q4_K ? 64L : 1L), (b0, b1) -> {
            Q4KScratch scratch = type == GgmlType.Q4_K ? new Q4KScratch() : null;
            for (int b = b0; b < b1; b++) {
                long at = (long) b * ts;
                int xo = b * bs;
                switch (type) {
                    case F32 -> dst.set(F32, at, x[xo]);
                    case F16 -> dst.set(F16, at, Float.floatToFloat16(x[xo]));
                    case BF16 -> dst.set(F16, at, dev.impasto.tensor.DType.floatToBf16(x[xo]));
                    case Q8_0 -> quantizeQ8_0Block(x, xo, out, (int) at);
                    case Q4_0 -> quantizeQ4_0Block(x, xo, out, (int) at);
                    case Q4_K -> quantizeQ4_KBlock(x, xo, out, (int) at, scratch);
                    default -> throw new AssertionError(type);
                }
            }
        });
        return out;
    }

    /** ggml {@code quantize_row_q8_0_ref} for one block of 32 at {@code x[xo]} into 34 bytes at {@code y[yo]}. */
    static void quantizeQ8_0Block(float[] x, int xo, byte[] y, int yo) {
        float amax = 0f;
        for (int j = 0; j < 32; j++) {
            float v = Math.abs(x[xo + j]);
            amax = amax > v ? amax : v; // MAX(amax, fabsf(v))
        }
        float d = amax / 127f;
        float id = d != 0f ? 1.0f / d : 0.0f;
        putF16(y, yo, d);
        for (int j = 0; j < 32; j++) y[yo + 2 + j] = (byte) roundHalfAway(x[xo + j] * id);
    }

    /** ggml {@code quantize_row_q4_0_ref} for one block of 32 into 18 bytes. */
    static void quantizeQ4_0Block(float[] x, int xo, byte[] y, int yo) {
        float amax = 0f, max = 0f;
        for (int j = 0; j < 32; j++) {
            float v = x[xo + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        float d = max / -8f;
        float id = d != 0f ? 1.0f / d : 0.0f;
        putF16(y, yo, d);
        for (int j = 0; j < 16; j++) {
            float x0 = x[xo + j] * id;
            float x1 = x[xo + 16 + j] * id;
            int xi0 = Math.min(15, (byte) (int) (x0 + 8.5f));
            int xi1 = Math.min(15, (byte) (int) (x1 + 8.5f));
            y[yo + 2 + j] = (byte) ((xi0 & 0xff) | (xi1 << 4));
        }
    }

    /** Per-thread work arrays of the Q4_K quantizer (ggml keeps them on the stack). */
    static final class Q4KScratch {
        final int[] L = new int[256];
        final int[] laux = new int[32];
        final float[] weights = new float[32];
        final float[] mins = new float[8];
        final float[] scales = new float[8];
        final float[] theMin = new float[1];
    }

    /** ggml {@code quantize_row_q4_K_ref} for one super-block of 256 into 144 bytes. */
    static void quantizeQ4_KBlock(float[] xs, int xo, byte[] y, int yo, Q4KScratch scratch) {
        int[] L = scratch.L;
        int[] laux = scratch.laux;
        float[] weights = scratch.weights;
        float[] mins = scratch.mins;
        float[] scales = scratch.scales;
        float[] theMin = scratch.theMin;
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            int base = xo + 32 * j;
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += xs[base + l] * xs[base + l];
            float avX = (float) Math.sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + Math.abs(xs[base + l]);
            scales[j] = makeQkx2Quants(32, 15, xs, base, weights, L, 32 * j, theMin, laux, -1.f, 0.1f, 20, false);
            mins[j] = theMin[0];
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63.f / maxScale : 0.f;
        float invMin = maxMin > 0 ? 63.f / maxMin : 0.f;
        int sb = yo + 4; // scales[12]
        for (int j = 0; j < 8; j++) {
            int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xff);
            int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xff);
            if (j < 4) {
                y[sb + j] = (byte) ls;
                y[sb + j + 4] = (byte) lm;
            } else {
                y[sb + j + 4] = (byte) ((ls & 0xf) | ((lm & 0xf) << 4));
                y[sb + j - 4] |= (byte) ((ls >> 4) << 6);
                y[sb + j] |= (byte) ((lm >> 4) << 6);
            }
        }
        short dBits = Float.floatToFloat16(maxScale / 63.f);
        short dminBits = Float.floatToFloat16(maxMin / 63.f);
        putShortLE(y, yo, dBits);
        putShortLE(y, yo + 2, dminBits);
        float dStored = Float.float16ToFloat(dBits);
        float dminStored = Float.float16ToFloat(dminBits);
        for (int j = 0; j < 8; j++) {
            int sm = scaleMinK4(j, y, sb);
            float d = dStored * (sm & 0xff);
            if (d == 0f) continue;
            float dm = dminStored * (sm >>> 8);
            for (int ii = 0; ii < 32; ii++) {
                int l = nearestInt((xs[xo + 32 * j + ii] + dm) / d);
                L[32 * j + ii] = Math.max(0, Math.min(15, l));
            }
        }
        int q = yo + 16;
        for (int j = 0; j < 256; j += 64) {
            for (int l = 0; l < 32; l++) y[q + l] = (byte) (L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
    }

    /** ggml's {@code make_qkx2_quants}: best scale and min for n values in [0, nmax] (min returned negated). */
    private static float makeQkx2Quants(int n, int nmax, float[] xs, int xo, float[] weights, int[] L, int lo,
            float[] theMin, int[] laux, float rmin, float rdelta, int nstep, boolean useMad) {
        float min = xs[xo];
        float max = xs[xo];
        float sumW = weights[0];
        float sumX = sumW * xs[xo];
        for (int i = 1; i < n; ++i) {
            float xi = xs[xo + i];
            if (xi < min) min = xi;
            if (xi > max) max = xi;
            float w = weights[i];
            sumW += w;
            sumX += w * xi;
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; ++i) L[lo + i] = 0;
            theMin[0] = -min;
            return 0.f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearestInt(iscale * (xs[xo + i] - min));
            L[lo + i] = Math.max(0, Math.min(nmax, l));
            float diff = scale * L[lo + i] + min - xs[xo + i];
            diff = useMad ? Math.abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1) {
            theMin[0] = -min;
            return scale;
        }
        for (int is = 0; is <= nstep; ++is) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; ++i) {
                int l = nearestInt(iscale * (xs[xo + i] - min));
                l = Math.max(0, Math.min(nmax, l));
                laux[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * xs[xo + i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; ++i) {
                    float diff = thisScale * laux[i] + thisMin - xs[xo + i];
                    diff = useMad ? Math.abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError) {
                    System.arraycopy(laux, 0, L, lo, n);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin[0] = -min;
        return scale;
    }

    /** ggml's {@code nearest_int}: round half to even via the 1.5*2^23 trick (valid for |f| <= 4194303). */
    static int nearestInt(float f) {
        float v = f + 12582912.f;
        return (Float.floatToRawIntBits(v) & 0x007fffff) - 0x00400000;
    }

    /** C {@code roundf}: half away from zero. */
    static int roundHalfAway(float f) {
        double a = Math.floor(Math.abs((double) f) + 0.5);
        return (int) Math.copySign(a, f);
    }

    private static void putF16(byte[] y, int at, float v) {
        putShortLE(y, at, Float.floatToFloat16(v));
    }

    private static void putShortLE(byte[] y, int at, short v) {
        y[at] = (byte) v;
        y[at + 1] = (byte) (v >>> 8);
    }

    private static void checkNumel(long numel) {
        if (numel < 0 || numel > Integer.MAX_VALUE - 8L) {
            throw new IllegalArgumentException("element count " + numel + " is negative or too large for one float[]");
        }
    }
}
