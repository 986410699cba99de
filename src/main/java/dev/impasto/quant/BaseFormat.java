package dev.impasto.quant;

import java.util.Locale;

/** How frozen base weights are stored on the device. */
public enum BaseFormat {
    BF16("bf16", 16), F16("f16", 16), F32("f32", 32),
    NF4("nf4", 4.5), NF4_DQ("nf4-dq", 4.127), INT8("int8", 8.01), INT4("int4", 4.5),
    Q8_0("q8_0", 8.5), Q4_0("q4_0", 4.5), Q4_K("q4_k", 4.5);

    private final String id;
    private final double bitsPerParam;

    BaseFormat(String id, double bits) {
        this.id = id;
        this.bitsPerParam = bits;
    }

    public String id() {
        return id;
    }

    public double bitsPerParam() {
        return bitsPerParam;
    }

    public boolean quantized() {
        return this != BF16 && this != F16 && this != F32;
    }

    public static BaseFormat parse(String s) {
        String n = s.toLowerCase(Locale.ROOT).replace('_', '-');
        for (BaseFormat f : values()) if (f.id.replace('_', '-').equals(n)) return f;
        throw new IllegalArgumentException("unknown base format \"" + s + "\" (use bf16, f16, f32, nf4, nf4-dq, int8, int4, q8_0, q4_0 or q4_k)");
    }
}
