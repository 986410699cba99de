package dev.impasto.encoders.tokenizer;

import java.util.Locale;
import java.util.regex.Pattern;

/** Character classes and small text operations shared by the tokenizer pipelines. */
final class TextRules {
    private TextRules() {}

    /**
     * Unicode White_Space, the set that Rust's {@code char::is_whitespace} and Oniguruma's {@code \s} use (Java's
     * {@link Character#isWhitespace} leaves out the no-break spaces, so it cannot be used here).
     */
    static boolean isWhiteSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F
                || cp == 0x3000;
    }

    /**
     * Lower-cases code point by code point with the full (possibly multi-character) mapping and no context, as HF
     * tokenizers' Lowercase normalizer does: a final capital sigma becomes σ, not ς.
     */
    static String lowercase(String s) {
        StringBuilder out = null;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            int n = Character.charCount(cp);
            String lower;
            if (cp < 0x80) {
                lower = (cp >= 'A' && cp <= 'Z') ? String.valueOf((char) (cp + 32)) : null;
            } else {
                String one = s.substring(i, i + n);
                lower = one.toLowerCase(Locale.ROOT);
                if (lower.equals(one)) lower = null;
            }
            if (lower != null && out == null) out = new StringBuilder(s.length() + 8).append(s, 0, i);
            if (out != null) {
                if (lower != null) out.append(lower);
                else out.append(s, i, i + n);
            }
            i += n;
        }
        return out == null ? s : out.toString();
    }

    /**
     * Compiles an Oniguruma pattern from a tokenizer.json as a Java pattern. The patterns these files use
     * ({@code \p{L}}, {@code \s}, {@code (?i:...)}, lookahead) mean the same in both once {@code \s} and {@code \w}
     * are made Unicode-aware.
     */
    static Pattern compileOniguruma(String regex) {
        return Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
    }

    private static final Pattern WORD_CHAR = Pattern.compile("\\w", Pattern.UNICODE_CHARACTER_CLASS);

    static boolean isWordChar(int cp) {
        return WORD_CHAR.matcher(new String(Character.toChars(cp))).matches();
    }
}
