package dev.impasto.io;

import dev.impasto.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A dense tensor stored in a weight file: its name, element type, PyTorch-order shape and a read-only,
 * bounds-checked slice of its bytes (little-endian, row-major). For mapped files the slice is valid until the file
 * is closed; touching it afterwards throws IllegalStateException.
 *
 * @param typeName the type as the file names it ("BF16", "F8_E4M3", ...)
 * @param dtype    the impasto type, or null when impasto does not compute in the stored type (FP8, ...): the
 *                 {@link #dtype()} accessor then throws with a message naming the tensor and type; check
 *                 {@link #isSupported()} first where such tensors are expected
 * @param file     the file the tensor lives in, null for tensors made in memory
 */
public record TensorEntry(String name, String typeName, DType dtype, long[] shape, MemorySegment data, Path file)
        implements StoredTensor {

    public TensorEntry {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(typeName, "typeName");
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(data, "data");
        shape = shape.clone();
    }

    /** A tensor of an impasto type (in memory or from a file that is not named). */
    public TensorEntry(String name, DType dtype, long[] shape, MemorySegment data) {
        this(name, dtype.safetensorsName(), dtype, shape, data, null);
    }

    /** A tensor holding {@code values} rounded to {@code dtype}, in memory owned by the garbage collector. */
    public static TensorEntry ofFloats(String name, DType dtype, long[] shape, float[] values) {
        if (Shapes.numel(shape) != values.length)
            throw new IllegalArgumentException(name + ": shape " + Shapes.format(shape) + " holds " + Shapes.numel(shape)
                    + " elements, " + values.length + " values given");
        return new TensorEntry(name, dtype, shape, TensorCodec.encode(values, dtype, Arena.ofAuto()).asReadOnly());
    }

    /** The element type; throws IllegalStateException for stored types impasto does not compute in (FP8, ...). */
    @Override
    public DType dtype() {
        if (dtype == null)
            throw new IllegalStateException("tensor \"" + name + "\"" + (file == null ? "" : " in " + file) + " has dtype "
                    + typeName + ", which impasto does not read (it reads F64, F32, BF16, F16, I64, I32, I8, U8): "
                    + "use a BF16/F16/F32 checkpoint, or a GGUF / bitsandbytes-NF4 one for quantized weights");
        return dtype;
    }

    public boolean isSupported() {
        return dtype != null;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Dimension i of the shape without copying it. */
    public long dim(int i) {
        return shape[i];
    }

    public int rank() {
        return shape.length;
    }

    @Override
    public long byteSize() {
        return data.byteSize();
    }

    /** All elements as floats (BF16/F16/F32/F64 exactly; integer types converted). For tensors that fit an array. */
    public float[] toFloatArray() {
        return TensorCodec.toFloats(data, dtype(), numel());
    }

    /** All elements as doubles, exactly (F64, I64 and I32 included). For tensors that fit an array. */
    public double[] toDoubleArray() {
        return TensorCodec.toDoubles(data, dtype(), numel());
    }

    /** Element i (row-major) as a float. */
    public float getFloat(long i) {
        return TensorCodec.get(data, dtype(), i);
    }

    @Override
    public String toString() {
        return name + " " + typeName + " " + Shapes.format(shape) + (file == null ? "" : " (" + file.getFileName() + ")");
    }
}
