package dev.impasto.quant;

/**
 * ggml tensor types as GGUF files number them ({@code enum ggml_type}), with ggml's block size (elements per block)
 * and type size (bytes per block), from ggml's {@code type_traits} table. Ids 4, 5 and 31..33, 36..38 were removed
 * from ggml and are not listed.
 */
public enum GgmlType {
    F32(0, "f32", 1, 4),
    F16(1, "f16", 1, 2),
    Q4_0(2, "q4_0", 32, 18),
    Q4_1(3, "q4_1", 32, 20),
    Q5_0(6, "q5_0", 32, 22),
    Q5_1(7, "q5_1", 32, 24),
    Q8_0(8, "q8_0", 32, 34),
    Q8_1(9, "q8_1", 32, 36),
    Q2_K(10, "q2_K", 256, 84),
    Q3_K(11, "q3_K", 256, 110),
    Q4_K(12, "q4_K", 256, 144),
    Q5_K(13, "q5_K", 256, 176),
    Q6_K(14, "q6_K", 256, 210),
    Q8_K(15, "q8_K", 256, 292),
    IQ2_XXS(16, "iq2_xxs", 256, 66),
    IQ2_XS(17, "iq2_xs", 256, 74),
    IQ3_XXS(18, "iq3_xxs", 256, 98),
    IQ1_S(19, "iq1_s", 256, 50),
    IQ4_NL(20, "iq4_nl", 32, 18),
    IQ3_S(21, "iq3_s", 256, 110),
    IQ2_S(22, "iq2_s", 256, 82),
    IQ4_XS(23, "iq4_xs", 256, 136),
    I8(24, "i8", 1, 1),
    I16(25, "i16", 1, 2),
    I32(26, "i32", 1, 4),
    I64(27, "i64", 1, 8),
    F64(28, "f64", 1, 8),
    IQ1_M(29, "iq1_m", 256, 56),
    BF16(30, "bf16", 1, 2),
    TQ1_0(34, "tq1_0", 256, 54),
    TQ2_0(35, "tq2_0", 256, 66),
    MXFP4(39, "mxfp4", 32, 17),
    NVFP4(40, "nvfp4", 64, 36),
    Q1_0(41, "q1_0", 128, 18),
    Q2_0(42, "q2_0", 64, 18);

    private static final GgmlType[] BY_ID = new GgmlType[64];

    static {
        for (GgmlType t : values()) BY_ID[t.id] = t;
    }

    private final int id;
    private final String ggmlName;
    private final int blockSize;
    private final int typeSize;

    GgmlType(int id, String ggmlName, int blockSize, int typeSize) {
        this.id = id;
        this.ggmlName = ggmlName;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
    }

    /** The number GGUF tensor infos store. */
    public int id() {
        return id;
    }

    /** ggml's name ({@code ggml_type_name}), e.g. "q4_K". */
    public String ggmlName() {
        return ggmlName;
    }

    /** Elements per block (1 for plain types). */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block. */
    public int typeSize() {
        return typeSize;
    }

    public boolean isQuantized() {
        return blockSize > 1;
    }

    /** Whether {@link GgmlQuants#dequantize} can decode this type. */
    public boolean canDequantize() {
        return switch (this) {
            case F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K -> true;
            default -> false;
        };
    }

    /** Whether {@link GgmlQuants#quantize} can encode this type. */
    public boolean canQuantize() {
        return switch (this) {
            case F32, F16, BF16, Q4_0, Q8_0, Q4_K -> true;
            default -> false;
        };
    }

    /**
     * Bytes that {@code elements} values of this type take. For a quantized type the count must be a whole number
     * of blocks (ggml quantizes rows, and a row is always whole blocks).
     */
    public long bytesFor(long elements) {
        if (elements < 0) throw new IllegalArgumentException("negative element count " + elements);
        if (elements % blockSize != 0) {
            throw new IllegalArgumentException(elements + " elements are not a whole number of " + ggmlName
                    + " blocks of " + blockSize);
        }
        return Math.multiplyExact(elements / blockSize, (long) typeSize);
    }

    /** Bytes for a row of {@code ne0} elements, or -1 when ne0 is not a whole number of blocks. */
    public long rowBytes(long ne0) {
        if (ne0 % blockSize() != 0) return -1;
        return Math.multiplyExact(ne0 / blockSize(), (long) typeSize());
    }

    /** Bytes of a tensor with ggml dims {@code ne} (ne[0] innermost), or -1 when ne[0] is not whole blocks. */
    public long byteSize(long[] ne) {
        if (ne.length == 0) return typeSize();
        long row = rowBytes(ne[0]);
        if (row < 0) return -1;
        long n = row;
        for (int k = 1; k < ne.length; k++) n = Math.multiplyExact(n, ne[k]);
        return n;
    }

    /** The type with GGUF id {@code id}, or an exception naming it. */
    public static GgmlType byId(int id) {
        GgmlType t = id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
        if (t == null) throw new IllegalArgumentException("unknown ggml tensor type id " + id + " (removed from ggml, or newer than impasto)");
        return t;
    }

    /** Like {@link #byId} but null for an unknown id. */
    public static GgmlType byIdOrNull(int id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
    }
}
