package dev.impasto.encoders;

/**
 * The two FP8 formats people store text encoders in (t5xxl_fp8_e4m3fn.safetensors): decoded to float on load, since
 * impasto computes in BF16/F32. E4M3FN: 1 sign, 4 exponent (bias 7), 3 mantissa bits, no infinities, S.1111.111 = NaN.
 * E5M2: 1 sign, 5 exponent (bias 15), 2 mantissa bits, IEEE-like infinities and NaNs.
 */
final class Float8 {
    private Float8() {}

    private static final float[] E4M3 = new float[256], E5M2 = new float[256];

    static {
        for (int b = 0; b < 256; b++) {
            E4M3[b] = decode(b, 4, 3, 7, false);
            E5M2[b] = decode(b, 5, 2, 15, true);
        }
    }

    private static float decode(int bits, int expBits, int manBits, int bias, boolean ieee) {
        int sign = (bits >> 7) & 1, exp = (bits >> manBits) & ((1 << expBits) - 1), man = bits & ((1 << manBits) - 1);
        float v;
        int maxExp = (1 << expBits) - 1;
        if (ieee && exp == maxExp) v = man == 0 ? Float.POSITIVE_INFINITY : Float.NaN;
        else if (!ieee && exp == maxExp && man == (1 << manBits) - 1) v = Float.NaN;
        else if (exp == 0) v = (float) (man / (double) (1 << manBits) * Math.pow(2, 1 - bias));
        else v = (float) ((1 + man / (double) (1 << manBits)) * Math.pow(2, exp - bias));
        return sign == 1 ? -v : v;
    }

    static float e4m3(byte b) {
        return E4M3[b & 0xff];
    }

    static float e5m2(byte b) {
        return E5M2[b & 0xff];
    }

    /** Whether {@code typeName} (a safetensors dtype name) is an FP8 format this class decodes. */
    static boolean supports(String typeName) {
        return typeName.equals("F8_E4M3") || typeName.equals("F8_E5M2");
    }

    static float[] decode(java.lang.foreign.MemorySegment data, String typeName, long n) {
        boolean e4 = typeName.equals("F8_E4M3");
        float[] out = new float[Math.toIntExact(n)];
        for (int i = 0; i < out.length; i++) {
            byte b = data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i);
            out[i] = e4 ? e4m3(b) : e5m2(b);
        }
        return out;
    }
}
