package dev.impasto.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Reads and writes single little-endian elements of any {@link DType} in a memory segment (bounds-checked). The
 * layouts are unaligned: weight files (safetensors, GGUF) do not align their tensors to the element size.
 */
public final class ElementCodec {
    public static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfDouble LE_DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private ElementCodec() {}

    /** Element i as a double, exactly (every DType's values are doubles). */
    public static double read(MemorySegment s, DType type, long i) {
        return switch (type) {
            case F64 -> s.getAtIndex(LE_DOUBLE, i);
            case F32 -> s.getAtIndex(LE_FLOAT, i);
            case BF16 -> DType.bf16ToFloat(s.getAtIndex(LE_SHORT, i));
            case F16 -> Float.float16ToFloat(s.getAtIndex(LE_SHORT, i));
            case I64 -> s.getAtIndex(LE_LONG, i);
            case I32 -> s.getAtIndex(LE_INT, i);
            case I8 -> s.get(ValueLayout.JAVA_BYTE, i);
            case U8 -> s.get(ValueLayout.JAVA_BYTE, i) & 0xff;
        };
    }

    /** Writes v rounded to the type (round to nearest even; integers saturate). */
    public static void write(MemorySegment s, DType type, long i, double v) {
        switch (type) {
            case F64 -> s.setAtIndex(LE_DOUBLE, i, v);
            case F32 -> s.setAtIndex(LE_FLOAT, i, (float) v);
            case BF16 -> s.setAtIndex(LE_SHORT, i, DType.floatToBf16((float) v));
            case F16 -> s.setAtIndex(LE_SHORT, i, Float.floatToFloat16((float) v));
            case I64 -> s.setAtIndex(LE_LONG, i, (long) DType.I64.round(v));
            case I32 -> s.setAtIndex(LE_INT, i, (int) DType.I32.round(v));
            case I8, U8 -> s.set(ValueLayout.JAVA_BYTE, i, (byte) (int) type.round(v));
        }
    }
}
