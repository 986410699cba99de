package dev.impasto.io.gguf;

/**
 * ggml tensor types with their block geometry (elements per block, bytes per block), as ggml's type_traits table
 * (ggml/src/ggml.c, block structs in ggml-common.h) defines them. Types impasto can dequantize are marked
 * {@link #isSupported()}; the others still open, list and size correctly, and are reported by name when a model
 * needs them. Numbers ggml has retired (4, 5, 31-33) and unknown numbers have no constant.
 */
public enum GgmlType {
    F32(0, 1, 4, true),
    F16(1, 1, 2, true),
    Q4_0(2, 32, 18, true),
    Q4_1(3, 32, 20, true),
    Q5_0(6, 32, 22, true),
    Q5_1(7, 32, 24, true),
    Q8_0(8, 32, 34, true),
    Q8_1(9, 32, 36, false),
    Q2_K(10, 256, 84, true),
    Q3_K(11, 256, 110, true),
    Q4_K(12, 256, 144, true),
    Q5_K(13, 256, 176, true),
    Q6_K(14, 256, 210, true),
    Q8_K(15, 256, 292, false),
    IQ2_XXS(16, 256, 66, false),
    IQ2_XS(17, 256, 74, false),
    IQ3_XXS(18, 256, 98, false),
    IQ1_S(19, 256, 50, false),
    IQ4_NL(20, 32, 18, false),
    IQ3_S(21, 256, 110, false),
    IQ2_S(22, 256, 82, false),
    IQ4_XS(23, 256, 136, false),
    I8(24, 1, 1, false),
    I16(25, 1, 2, false),
    I32(26, 1, 4, false),
    I64(27, 1, 8, false),
    F64(28, 1, 8, false),
    IQ1_M(29, 256, 56, false),
    BF16(30, 1, 2, true),
    TQ1_0(34, 256, 54, false),
    TQ2_0(35, 256, 66, false),
    MXFP4(39, 32, 17, false);

    private final int id;
    private final int blockSize;
    private final int typeSize;
    private final boolean supported;

    GgmlType(int id, int blockSize, int typeSize, boolean supported) {
        this.id = id;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
        this.supported = supported;
    }

    /** The number GGUF files store. */
    public int id() {
        return id;
    }

    /** Elements per block (1 for plain types). */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block. */
    public int typeSize() {
        return typeSize;
    }

    /** Whether impasto reads this type (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K). */
    public boolean isSupported() {
        return supported;
    }

    public boolean isQuantized() {
        return blockSize > 1;
    }

    /** Bytes for a row of {@code ne0} elements, or -1 when ne0 is not a whole number of blocks. */
    public long rowBytes(long ne0) {
        if (ne0 % blockSize != 0) return -1;
        return Math.multiplyExact(ne0 / blockSize, (long) typeSize);
    }

    /** Bytes of a tensor with ggml dims {@code ne} (ne[0] innermost), or -1 when ne[0] is not whole blocks. */
    public long byteSize(long[] ne) {
        if (ne.length == 0) return typeSize;
        long row = rowBytes(ne[0]);
        if (row < 0) return -1;
        long n = row;
        for (int i = 1; i < ne.length; i++) n = Math.multiplyExact(n, ne[i]);
        return n;
    }

    /** The type with this number, or null (retired or unknown numbers). */
    public static GgmlType byId(int id) {
        for (GgmlType t : values()) if (t.id == id) return t;
        return null;
    }
}
