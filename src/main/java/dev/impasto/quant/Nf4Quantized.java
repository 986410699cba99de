package dev.impasto.quant;

import java.util.Objects;

/**
 * An NF4-quantized tensor in bitsandbytes' layout.
 *
 * <p>Element {@code i} of the flattened row-major weight is in {@code packed[i / 2]}: the HIGH nibble for even
 * {@code i}, the LOW nibble for odd {@code i} (when numel is odd the last low nibble is padding). Its value is
 * {@code Nf4.code(nibble) * absmax[i / blocksize]}. Exactly one of {@code absmax} (plain f32 per block) and
 * {@code nested} (double-quantized) is non-null; {@link #blockAbsmax()} gives the f32 scales either way.
 *
 * @param packed    {@code (numel + 1) / 2} bytes
 * @param absmax    f32 per block of {@code blocksize} consecutive elements (last block may be shorter), or null
 * @param numel     element count of the original tensor
 * @param blocksize elements per block (64 for FLUX exports; bitsandbytes allows 32..4096, powers of two)
 * @param nested    the double-quantized form of the scales, or null
 */
public record Nf4Quantized(byte[] packed, float[] absmax, long numel, int blocksize, NestedAbsmax nested) {
    public Nf4Quantized {
        Objects.requireNonNull(packed, "packed");
        Nf4.checkBlocksize(blocksize);
        if (numel < 0 || numel > Integer.MAX_VALUE - 8L) {
            throw new IllegalArgumentException("numel " + numel + " is outside what a Java array can hold");
        }
        if (packed.length != (numel + 1) / 2) {
            throw new IllegalArgumentException(numel + " NF4 elements pack into " + (numel + 1) / 2 + " bytes, got "
                    + packed.length);
        }
        long blocks = (numel + blocksize - 1) / blocksize;
        if ((absmax == null) == (nested == null)) {
            throw new IllegalArgumentException("exactly one of absmax (plain) and nested (double-quantized) must be given");
        }
        long have = absmax != null ? absmax.length : nested.blocks();
        if (have != blocks) {
            throw new IllegalArgumentException(numel + " elements in blocks of " + blocksize + " need " + blocks
                    + " absmax values, got " + have);
        }
    }

    public boolean isNested() {
        return nested != null;
    }

    /** Number of blocks (= absmax values). */
    public int blocks() {
        return (int) ((numel + blocksize - 1) / blocksize);
    }

    /** The f32 scale per block: {@link #absmax()} itself, or the nested scales dequantized. */
    public float[] blockAbsmax() {
        return absmax != null ? absmax : nested.dequantize();
    }

    /** The 4-bit code of element {@code i}. */
    public int nibble(long i) {
        int b = packed[(int) (i >>> 1)] & 0xff;
        return (i & 1) == 0 ? b >>> 4 : b & 0x0f;
    }

    /** Bytes in a checkpoint: packed data plus scales. */
    public long storageBytes() {
        return packed.length + (absmax != null ? 4L * absmax.length : nested.storageBytes());
    }
}
