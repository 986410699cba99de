package dev.impasto.encoders.tokenizer;

import java.util.Arrays;

/**
 * One prompt as a text encoder sees it: ids padded (or truncated) to a fixed length, plus how many of them are real.
 *
 * @param ids              exactly {@code maxLength} ids: special tokens and prompt tokens first, padding after
 * @param length           number of leading ids that are not padding (special tokens included)
 * @param untruncatedLength number of ids the prompt would have needed without truncation (special tokens included);
 *                          larger than {@code length} when the prompt was cut
 */
public record TokenEncoding(int[] ids, int length, int untruncatedLength) {

    public TokenEncoding {
        if (length < 0 || length > ids.length) {
            throw new IllegalArgumentException("length " + length + " outside 0.." + ids.length);
        }
    }

    /** Whether the prompt lost tokens to truncation. */
    public boolean truncated() {
        return untruncatedLength > length;
    }

    /** 1 for the first {@link #length()} positions, 0 for the padding. */
    public int[] attentionMask() {
        int[] mask = new int[ids.length];
        Arrays.fill(mask, 0, length, 1);
        return mask;
    }

    /** The ids that are not padding. */
    public int[] unpaddedIds() {
        return Arrays.copyOf(ids, length);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TokenEncoding e && length == e.length && untruncatedLength == e.untruncatedLength
                && Arrays.equals(ids, e.ids);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(ids) * 31 + length;
    }

    @Override
    public String toString() {
        return "TokenEncoding[length=" + length + ", untruncatedLength=" + untruncatedLength + ", ids="
                + Arrays.toString(unpaddedIds()) + " + " + (ids.length - length) + " padding]";
    }
}
