package dev.impasto.quant;

import java.util.Objects;

/**
 * A weight W[n, k] quantized to asymmetric int4 in groups of {@code groupSize} consecutive elements along k.
 *
 * <p>Element (r, c) has code {@code q} in byte {@code r * rowBytes() + c / 2}: HIGH nibble for even c, LOW nibble
 * for odd c; each row starts on a byte boundary ({@code rowBytes() = (k + 1) / 2}; for even k this is the plain
 * flattened packing, element 2j high / 2j+1 low). Its value is {@code min[g] + q * scale[g]} with
 * {@code g = r * groupsPerRow() + c / groupSize}. The last group of a row is shorter when k is not a multiple of
 * groupSize.
 *
 * @param packed    n * rowBytes() bytes
 * @param scale     f32 per group, [n, groupsPerRow()] row-major; 0 for a constant group
 * @param min       f32 per group, same layout
 * @param n         rows (output features)
 * @param k         columns (input features)
 * @param groupSize elements per group along k (128 by default)
 */
public record Int4Quantized(byte[] packed, float[] scale, float[] min, int n, int k, int groupSize) {
    public Int4Quantized {
        Objects.requireNonNull(packed, "packed");
        Objects.requireNonNull(scale, "scale");
        Objects.requireNonNull(min, "min");
        Int8.checkShape(n, k);
        if (groupSize <= 0) throw new IllegalArgumentException("group size must be positive, got " + groupSize);
        long bytes = (long) n * ((k + 1) / 2);
        if (packed.length != bytes) throw new IllegalArgumentException(n + "x" + k + " int4 needs " + bytes + " bytes, got " + packed.length);
        long groups = (long) n * ((k + groupSize - 1) / groupSize);
        if (scale.length != groups || min.length != groups) {
            throw new IllegalArgumentException(n + "x" + k + " in groups of " + groupSize + " needs " + groups
                    + " scales and mins, got " + scale.length + " and " + min.length);
        }
    }

    public int rowBytes() {
        return (k + 1) / 2;
    }

    public int groupsPerRow() {
        return (k + groupSize - 1) / groupSize;
    }

    /** The 4-bit code of element (row, col). */
    public int code(int row, int col) {
        int b = packed[row * rowBytes() + (col >>> 1)] & 0xff;
        return (col & 1) == 0 ? b >>> 4 : b & 0x0f;
    }

    /** The dequantized value of element (row, col). */
    public float get(int row, int col) {
        int g = row * groupsPerRow() + col / groupSize;
        return min[g] + code(row, col) * scale[g];
    }
}
