package dev.impasto.tensor;

import java.util.Locale;

/**
 * Element types impasto stores. The names are those of safetensors' header ("BF16", "F32", ...).
 *
 * <p>{@link #round(double)} maps a real value to the nearest value the type can hold (round to nearest even for
 * the float types, saturating for the integer types). The CPU backend computes in double and rounds on every
 * store, so a BF16 tensor on the CPU holds exactly the values a BF16 tensor on the GPU could hold.
 */
public enum DType {
    F64(8, true),
    F32(4, true),
    BF16(2, true),
    F16(2, true),
    I64(8, false),
    I32(4, false),
    I8(1, false),
    U8(1, false);

    private final int byteSize;
    private final boolean floating;

    DType(int byteSize, boolean floating) {
        this.byteSize = byteSize;
        this.floating = floating;
    }

    public int byteSize() {
        return byteSize;
    }

    public boolean isFloatingPoint() {
        return floating;
    }

    /** The safetensors header name of this type. */
    public String safetensorsName() {
        return name();
    }

    /** The type a safetensors header names, or an exception that lists the names impasto reads. */
    public static DType fromSafetensorsName(String name) {
        String n = name.toUpperCase(Locale.ROOT);
        for (DType t : values()) if (t.name().equals(n)) return t;
        throw new IllegalArgumentException("unsupported dtype \"" + name + "\" (impasto reads F64, F32, BF16, F16, I64, I32, I8, U8)");
    }

    /** Nearest representable value of this type. */
    public double round(double v) {
        return switch (this) {
            case F64 -> v;
            case F32 -> (float) v;
            case BF16 -> bf16ToFloat(floatToBf16((float) v));
            case F16 -> Float.float16ToFloat(Float.floatToFloat16((float) v));
            case I64 -> Math.rint(v);
            case I32 -> Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, Math.rint(v)));
            case I8 -> Math.max(-128, Math.min(127, Math.rint(v)));
            case U8 -> Math.max(0, Math.min(255, Math.rint(v)));
        };
    }

    /** bfloat16 bits of a float, rounding to nearest even (NaN stays a quiet NaN). */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) return (short) ((bits >>> 16) | 0x0040);
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    public static float bf16ToFloat(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }
}
