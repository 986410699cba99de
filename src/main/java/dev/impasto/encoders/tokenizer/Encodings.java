package dev.impasto.encoders.tokenizer;

import java.util.Arrays;

/** Truncation and padding as HF transformers applies them with truncation=True, padding="max_length". */
final class Encodings {
    private Encodings() {}

    static TokenEncoding assemble(int[] content, int[] prefix, int[] suffix, int padId, int maxLength) {
        int specials = prefix.length + suffix.length;
        if (maxLength < specials) {
            throw new IllegalArgumentException("maxLength " + maxLength + " leaves no room for the " + specials + " special tokens");
        }
        int kept = Math.min(content.length, maxLength - specials);
        int[] ids = new int[maxLength];
        System.arraycopy(prefix, 0, ids, 0, prefix.length);
        System.arraycopy(content, 0, ids, prefix.length, kept);
        System.arraycopy(suffix, 0, ids, prefix.length + kept, suffix.length);
        int length = specials + kept;
        Arrays.fill(ids, length, maxLength, padId);
        return new TokenEncoding(ids, length, specials + content.length);
    }
}
