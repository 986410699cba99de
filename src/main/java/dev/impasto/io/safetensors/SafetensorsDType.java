package dev.impasto.io.safetensors;

import dev.impasto.tensor.DType;

/**
 * Every element type a safetensors header may name, in the order of the official crate's {@code Dtype} enum
 * (huggingface/safetensors, safetensors/src/tensor.rs), which is increasing alignment: the official writer sorts
 * tensors by this order descending, then by name, and {@link SafetensorsWriter} does the same.
 *
 * <p>Only the types with a {@link DType} counterpart can be read as numbers by impasto; the others (FP8, FP4, ...)
 * still open, list, and show up in {@code impasto inspect}, and fail with a clear message when their values are read.
 */
public enum SafetensorsDType {
    BOOL(8, null),
    F4(4, null),
    F6_E2M3(6, null),
    F6_E3M2(6, null),
    U8(8, DType.U8),
    I8(8, DType.I8),
    F8_E5M2(8, null),
    F8_E4M3(8, null),
    F8_E8M0(8, null),
    F8_E4M3FNUZ(8, null),
    F8_E5M2FNUZ(8, null),
    I16(16, null),
    U16(16, null),
    F16(16, DType.F16),
    BF16(16, DType.BF16),
    I32(32, DType.I32),
    U32(32, null),
    F32(32, DType.F32),
    C64(64, null),
    F64(64, DType.F64),
    I64(64, DType.I64),
    U64(64, null);

    private final int bits;
    private final DType dtype;

    SafetensorsDType(int bits, DType dtype) {
        this.bits = bits;
        this.dtype = dtype;
    }

    public int bits() {
        return bits;
    }

    /** The impasto type, or null where impasto does not compute in this type. */
    public DType dtype() {
        return dtype;
    }

    public boolean isSupported() {
        return dtype != null;
    }

    /** Exact (case-sensitive, as the official reader) lookup; null when the name is not a safetensors dtype. */
    public static SafetensorsDType byName(String name) {
        for (SafetensorsDType t : values()) if (t.name().equals(name)) return t;
        return null;
    }

    public static SafetensorsDType of(DType dtype) {
        return valueOf(dtype.safetensorsName());
    }

    /** Bytes for n elements, or -1 when n elements don't fill whole bytes (sub-byte types). Throws on overflow. */
    public long byteSize(long numel) {
        long totalBits = Math.multiplyExact(numel, (long) bits);
        return totalBits % 8 == 0 ? totalBits / 8 : -1;
    }
}
