package dev.impasto.encoders.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * SentencePiece's {@code precompiled_charsmap}: a darts-clone double-array trie from UTF-8 byte sequences to
 * offsets into a block of NUL-terminated replacement strings. nmt_nfkc (T5's normalizer) is NFKC plus a few
 * NMT-specific rules (control characters removed, unusual spaces folded to ' '), all baked into this table.
 *
 * <p>Layout: {@code uint32 trieBytes (little endian) | trie units (uint32 LE each) | replacement strings}.
 * Each unit packs {@code label}, {@code has_leaf}, {@code value} and {@code offset} as in darts.h.
 *
 * <p>Two readers of the same table disagree in one respect and both are needed: sentencepiece itself takes the
 * longest matching prefix of the remaining input ({@link #longestPrefix}); HF tokenizers' {@code Precompiled}
 * normalizer takes the first (shortest) match of a whole grapheme cluster ({@link #firstMatch}).
 */
final class PrecompiledCharsMap {
    private final int[] units;
    private final byte[] normalized;

    private PrecompiledCharsMap(int[] units, byte[] normalized) {
        this.units = units;
        this.normalized = normalized;
    }

    /** Parses the blob; throws IllegalArgumentException with what is wrong. */
    static PrecompiledCharsMap parse(byte[] blob) {
        if (blob.length <= 4) throw new IllegalArgumentException("precompiled_charsmap of " + blob.length + " bytes is too short");
        long trieSize = (blob[0] & 0xFFL) | (blob[1] & 0xFFL) << 8 | (blob[2] & 0xFFL) << 16 | (blob[3] & 0xFFL) << 24;
        if (trieSize >= blob.length - 4L + 1 || trieSize % 4 != 0 || trieSize == 0) {
            throw new IllegalArgumentException("precompiled_charsmap trie size " + trieSize + " does not fit its " + blob.length + "-byte blob");
        }
        int n = (int) (trieSize / 4);
        int[] units = new int[n];
        for (int i = 0; i < n; i++) {
            int o = 4 + 4 * i;
            units[i] = (blob[o] & 0xFF) | (blob[o + 1] & 0xFF) << 8 | (blob[o + 2] & 0xFF) << 16 | (blob[o + 3] & 0xFF) << 24;
        }
        byte[] normalized = Arrays.copyOfRange(blob, 4 + (int) trieSize, blob.length);
        return new PrecompiledCharsMap(units, normalized);
    }

    private static boolean hasLeaf(int unit) {
        return ((unit >>> 8) & 1) == 1;
    }

    private static int value(int unit) {
        return unit & 0x7FFFFFFF;
    }

    private static int label(int unit) {
        return unit & (0x80000000 | 0xFF);
    }

    private static int offset(int unit) {
        return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    }

    /**
     * Walks {@code key[from..to)} through the trie. Calls back for every prefix that is a key, shortest first.
     * A NUL byte ends the walk when {@code stopAtNul} (HF's reader does so; sentencepiece's walks the given length).
     */
    private int walk(byte[] key, int from, int to, boolean stopAtNul, boolean firstOnly, int[] out) {
        // out[0] = length of the chosen match (0 = none), out[1] = its value
        out[0] = 0;
        out[1] = -1;
        if (units.length == 0) return 0;
        int nodePos = offset(units[0]);
        int found = 0;
        for (int i = from; i < to; i++) {
            int c = key[i] & 0xFF;
            if (stopAtNul && c == 0) break;
            nodePos ^= c;
            if (nodePos < 0 || nodePos >= units.length) return found;
            int unit = units[nodePos];
            if (label(unit) != c) return found;
            nodePos ^= offset(unit);
            if (hasLeaf(unit)) {
                if (nodePos < 0 || nodePos >= units.length) return found;
                found++;
                out[0] = i + 1 - from;
                out[1] = value(units[nodePos]);
                if (firstOnly) return found;
            }
        }
        return found;
    }

    /**
     * sentencepiece's rule: the longest key that is a prefix of {@code input[from..to)}.
     * Returns the replacement's byte range in {@link #normalizedBytes()} as {@code {start, end}} and the matched
     * length in {@code matched[0]}, or null when no key matches.
     */
    int[] longestPrefix(byte[] input, int from, int to, int[] matched) {
        int[] out = new int[2];
        if (walk(input, from, to, false, false, out) == 0) return null;
        matched[0] = out[0];
        return replacementRange(out[1]);
    }

    /** HF tokenizers' rule: the replacement of the first (shortest) key that is a prefix of the chunk, or null. */
    String firstMatch(String chunk) {
        byte[] key = chunk.getBytes(StandardCharsets.UTF_8);
        int[] out = new int[2];
        if (walk(key, 0, key.length, true, true, out) == 0) return null;
        int[] range = replacementRange(out[1]);
        return new String(normalized, range[0], range[1] - range[0], StandardCharsets.UTF_8);
    }

    byte[] normalizedBytes() {
        return normalized;
    }

    private int[] replacementRange(int start) {
        if (start < 0 || start > normalized.length) {
            throw new IllegalStateException("precompiled_charsmap points at byte " + start + " of a " + normalized.length + "-byte string block");
        }
        int end = start;
        while (end < normalized.length && normalized[end] != 0) end++;
        return new int[] {start, end};
    }
}
