package dev.impasto.io;

import dev.impasto.tensor.DType;
import dev.impasto.tensor.ElementCodec;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Little-endian element encoding of weight files (safetensors and GGUF are both little-endian and need not be
 * aligned, hence the unaligned layouts, which are {@link ElementCodec}'s), and float conversion for the element
 * types impasto computes in.
 */
public final class TensorCodec {
    public static final ValueLayout.OfShort LE_SHORT = ElementCodec.LE_SHORT;
    public static final ValueLayout.OfInt LE_INT = ElementCodec.LE_INT;
    public static final ValueLayout.OfLong LE_LONG = ElementCodec.LE_LONG;
    public static final ValueLayout.OfFloat LE_FLOAT = ElementCodec.LE_FLOAT;
    public static final ValueLayout.OfDouble LE_DOUBLE = ElementCodec.LE_DOUBLE;

    /** Largest element count read into one Java array. */
    public static final long MAX_ARRAY = Integer.MAX_VALUE - 16;

    private TensorCodec() {}

    /**
     * Element i of {@code data} as a float (integers converted exactly where a float can hold them). The segment is
     * bounds-checked: a short segment throws IndexOutOfBoundsException, never a crash.
     */
    public static float get(MemorySegment data, DType dtype, long i) {
        return switch (dtype) {
            case F32 -> data.get(LE_FLOAT, i * 4);
            case BF16 -> DType.bf16ToFloat(data.get(LE_SHORT, i * 2));
            case F16 -> Float.float16ToFloat(data.get(LE_SHORT, i * 2));
            case F64 -> (float) data.get(LE_DOUBLE, i * 8);
            case I64 -> (float) data.get(LE_LONG, i * 8);
            case I32 -> (float) data.get(LE_INT, i * 4);
            case I8 -> data.get(ValueLayout.JAVA_BYTE, i);
            case U8 -> data.get(ValueLayout.JAVA_BYTE, i) & 0xff;
        };
    }

    /** All {@code numel} elements as floats; numel must fit a Java array. */
    public static float[] toFloats(MemorySegment data, DType dtype, long numel) {
        int n = arrayLength(data, dtype, numel);
        float[] out = new float[n];
        if (dtype == DType.F32) {
            MemorySegment.copy(data, LE_FLOAT, 0, out, 0, out.length);
            return out;
        }
        for (int i = 0; i < out.length; i++) out[i] = get(data, dtype, i);
        return out;
    }

    /**
     * All {@code numel} elements as doubles, exactly: unlike {@link #toFloats}, F64, I64 and I32 values keep every
     * bit a double can hold. numel must fit a Java array.
     */
    public static double[] toDoubles(MemorySegment data, DType dtype, long numel) {
        int n = arrayLength(data, dtype, numel);
        double[] out = new double[n];
        if (dtype == DType.F64) MemorySegment.copy(data, LE_DOUBLE, 0, out, 0, out.length);
        else for (int i = 0; i < out.length; i++) out[i] = ElementCodec.read(data, dtype, i);
        return out;
    }

    /** numel as an array length, after checking that it fits an array and that {@code data} holds that many elements. */
    private static int arrayLength(MemorySegment data, DType dtype, long numel) {
        if (numel > MAX_ARRAY) throw new IllegalArgumentException(numel + " elements do not fit a Java array; read the tensor in slices");
        if (Math.multiplyExact(numel, (long) dtype.byteSize()) > data.byteSize())
            throw new IndexOutOfBoundsException(numel + " " + dtype + " elements need " + numel * dtype.byteSize()
                    + " bytes, the data holds " + data.byteSize());
        return (int) numel;
    }

    /** Writes {@code values} as {@code dtype} (round to nearest even for BF16/F16) into {@code dst} from offset 0. */
    public static void encodeInto(float[] values, DType dtype, MemorySegment dst) {
        switch (dtype) {
            case F32 -> MemorySegment.copy(values, 0, dst, LE_FLOAT, 0, values.length);
            case BF16 -> {
                for (int i = 0; i < values.length; i++) dst.set(LE_SHORT, 2L * i, DType.floatToBf16(values[i]));
            }
            case F16 -> {
                for (int i = 0; i < values.length; i++) dst.set(LE_SHORT, 2L * i, Float.floatToFloat16(values[i]));
            }
            case F64 -> {
                for (int i = 0; i < values.length; i++) dst.set(LE_DOUBLE, 8L * i, values[i]);
            }
            default -> {
                for (int i = 0; i < values.length; i++) {
                    double r = dtype.round(values[i]);
                    switch (dtype) {
                        case I64 -> dst.set(LE_LONG, 8L * i, (long) r);
                        case I32 -> dst.set(LE_INT, 4L * i, (int) r);
                        default -> dst.set(ValueLayout.JAVA_BYTE, i, (byte) (int) r);
                    }
                }
            }
        }
    }

    /** {@code values} encoded as {@code dtype} in a new segment of {@code arena}. */
    public static MemorySegment encode(float[] values, DType dtype, Arena arena) {
        MemorySegment seg = arena.allocate((long) values.length * dtype.byteSize(), 8);
        encodeInto(values, dtype, seg);
        return seg;
    }
}
