package dev.impasto.quant;

import java.util.Objects;

/**
 * Double-quantized ("nested", bitsandbytes {@code compress_statistics=True}) NF4 block scales.
 *
 * <p>The real absmax of NF4 block {@code b} is {@code code[codes[b] & 255] * nestedAbsmax[b / blocksize] + offset},
 * computed in float in that order (bitsandbytes: {@code dequantize_blockwise} then {@code absmax += offset}).
 * Safetensors keys of a bitsandbytes export: {@code weight.absmax} (u8, = codes), {@code weight.nested_absmax}
 * (= nestedAbsmax), {@code weight.nested_quant_map} (= code), {@code nested_offset} and {@code nested_blocksize} in
 * the quant_state JSON.
 *
 * @param codes        one u8 code per NF4 block
 * @param nestedAbsmax f32 scale per {@code blocksize} consecutive codes (the last group may be shorter)
 * @param offset       mean of the original absmax values, subtracted before quantizing
 * @param blocksize    codes per nested block (256 in bitsandbytes)
 * @param code         the 256-entry map (bitsandbytes' signed dynamic map unless a file says otherwise)
 */
public record NestedAbsmax(byte[] codes, float[] nestedAbsmax, float offset, int blocksize, float[] code) {
    public NestedAbsmax {
        Objects.requireNonNull(codes, "codes");
        Objects.requireNonNull(nestedAbsmax, "nestedAbsmax");
        Blockwise8bit.checkCode(code);
        if (blocksize <= 0) throw new IllegalArgumentException("nested blocksize must be positive, got " + blocksize);
        long groups = ((long) codes.length + blocksize - 1) / blocksize;
        if (nestedAbsmax.length != groups) {
            throw new IllegalArgumentException(codes.length + " nested absmax codes in blocks of " + blocksize + " need "
                    + groups + " nested_absmax values, got " + nestedAbsmax.length);
        }
        if (!Float.isFinite(offset)) throw new IllegalArgumentException("nested_offset is " + offset);
    }

    /** Number of NF4 blocks described. */
    public int blocks() {
        return codes.length;
    }

    /** The f32 absmax per NF4 block that dequantization multiplies by. */
    public float[] dequantize() {
        float[] out = new float[codes.length];
        for (int b = 0; b < codes.length; b++) {
            out[b] = code[codes[b] & 0xff] * nestedAbsmax[b / blocksize] + offset;
        }
        return out;
    }

    /** Bytes this takes in a checkpoint: u8 codes, f32 nested absmax, the 256-entry f32 map and the offset. */
    public long storageBytes() {
        return codes.length + 4L * nestedAbsmax.length + 4L * code.length + 4;
    }
}
