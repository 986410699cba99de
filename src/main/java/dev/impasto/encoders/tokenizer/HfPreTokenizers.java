package dev.impasto.encoders.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntPredicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The pre-tokenizers of HF tokenizers' tokenizer.json that CLIP- and T5-family files use, with the same semantics. */
final class HfPreTokenizers {
    private HfPreTokenizers() {}

    /**
     * A piece of the text on its way to the model. {@code atOrigin} says whether it starts at offset 0 of the input,
     * which Metaspace's "first" prepend scheme asks.
     */
    record Piece(String text, boolean atOrigin) {}

    interface PreTokenizer {
        /** Splits every piece of {@code in} into {@code out}; empty pieces are dropped. */
        void split(List<Piece> in, List<Piece> out);
    }

    enum Behavior { REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS }

    static Behavior behavior(String name) {
        return switch (name) {
            case "Removed" -> Behavior.REMOVED;
            case "Isolated" -> Behavior.ISOLATED;
            case "MergedWithPrevious" -> Behavior.MERGED_WITH_PREVIOUS;
            case "MergedWithNext" -> Behavior.MERGED_WITH_NEXT;
            case "Contiguous" -> Behavior.CONTIGUOUS;
            default -> throw new IllegalArgumentException("unknown split behavior \"" + name + "\"");
        };
    }

    static final Pattern GPT2_PATTERN = TextRules.compileOniguruma(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
    static final Pattern WHITESPACE_PATTERN = TextRules.compileOniguruma("\\w+|[^\\w\\s]+");

    static PreTokenizer fromJson(JsonNode node) {
        if (node == null || node.isNull()) return null;
        String type = HfJson.type(node, "pre_tokenizer");
        return switch (type) {
            case "Sequence" -> {
                List<PreTokenizer> parts = new ArrayList<>();
                for (JsonNode n : HfJson.array(node, "pretokenizers")) {
                    PreTokenizer p = fromJson(n);
                    if (p != null) parts.add(p);
                }
                yield sequence(parts);
            }
            case "Split" -> split(HfJson.pattern(node.get("pattern")), behavior(HfJson.string(node, "behavior")),
                    node.path("invert").asBoolean(false));
            case "WhitespaceSplit" -> splitOn(TextRules::isWhiteSpace, Behavior.REMOVED);
            case "Whitespace" -> split(WHITESPACE_PATTERN, Behavior.REMOVED, true);
            case "Metaspace" -> metaspace(node);
            case "ByteLevel" -> byteLevel(node.path("add_prefix_space").asBoolean(true), node.path("use_regex").asBoolean(true));
            case "Punctuation" -> splitOn(HfPreTokenizers::isPunctuation, behavior(node.path("behavior").asText("Isolated")));
            case "BertPreTokenizer" -> sequence(List.of(splitOn(TextRules::isWhiteSpace, Behavior.REMOVED),
                    splitOn(HfPreTokenizers::isPunctuation, Behavior.ISOLATED)));
            case "Digits" -> node.path("individual_digits").asBoolean(false)
                    ? splitOn(HfPreTokenizers::isNumeric, Behavior.ISOLATED)
                    : splitOn(HfPreTokenizers::isNumeric, Behavior.CONTIGUOUS);
            default -> throw new IllegalArgumentException("pre_tokenizer type \"" + type + "\" is not supported (impasto reads "
                    + "Sequence, Split, WhitespaceSplit, Whitespace, Metaspace, ByteLevel, Punctuation, BertPreTokenizer, Digits)");
        };
    }

    static PreTokenizer sequence(List<PreTokenizer> parts) {
        return (in, out) -> {
            List<Piece> current = in;
            for (PreTokenizer p : parts) {
                List<Piece> next = new ArrayList<>(current.size() * 2);
                p.split(current, next);
                current = next;
            }
            out.addAll(current);
        };
    }

    /** Rust's char::is_numeric: general category Nd, Nl or No. */
    static boolean isNumeric(int cp) {
        int t = Character.getType(cp);
        return t == Character.DECIMAL_DIGIT_NUMBER || t == Character.LETTER_NUMBER || t == Character.OTHER_NUMBER;
    }

    /** Rust's char::is_ascii_punctuation or a Unicode P* category, as HF's is_punc. */
    static boolean isPunctuation(int cp) {
        if (cp < 0x80) return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) || (cp >= 0x7B && cp <= 0x7E);
        return switch (Character.getType(cp)) {
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                 Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                 Character.OTHER_PUNCTUATION -> true;
            default -> false;
        };
    }

    // --- splitting ----------------------------------------------------------------------------------------------

    /** Matches as {start, end, isMatch} triples covering the whole string, like HF's Pattern::find_matches. */
    private static List<int[]> regexMatches(Pattern pattern, String s) {
        List<int[]> out = new ArrayList<>();
        if (s.isEmpty()) {
            out.add(new int[] {0, 0, 0});
            return out;
        }
        Matcher m = pattern.matcher(s);
        int prev = 0;
        while (m.find()) {
            if (m.end() == m.start()) continue; // Oniguruma's find_iter gives no empty splits for these patterns
            if (prev != m.start()) out.add(new int[] {prev, m.start(), 0});
            out.add(new int[] {m.start(), m.end(), 1});
            prev = m.end();
        }
        if (prev != s.length()) out.add(new int[] {prev, s.length(), 0});
        return out;
    }

    private static List<int[]> charMatches(IntPredicate isDelimiter, String s) {
        List<int[]> out = new ArrayList<>();
        if (s.isEmpty()) {
            out.add(new int[] {0, 0, 0});
            return out;
        }
        int last = 0;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            int n = Character.charCount(cp);
            if (isDelimiter.test(cp)) {
                if (last < i) out.add(new int[] {last, i, 0});
                out.add(new int[] {i, i + n, 1});
                last = i + n;
            }
            i += n;
        }
        if (last < s.length()) out.add(new int[] {last, s.length(), 0});
        return out;
    }

    /** Applies a split behavior to find_matches output, as NormalizedString::split does. */
    private static void applyBehavior(Piece piece, List<int[]> matches, Behavior behavior, List<Piece> out) {
        List<int[]> kept = new ArrayList<>(matches.size());
        switch (behavior) {
            case ISOLATED -> kept.addAll(matches);
            case REMOVED -> {
                for (int[] m : matches) if (m[2] == 0) kept.add(m);
            }
            case CONTIGUOUS -> {
                boolean previousMatch = false;
                for (int[] m : matches) {
                    boolean isMatch = m[2] == 1;
                    if (isMatch == previousMatch && !kept.isEmpty()) kept.get(kept.size() - 1)[1] = m[1];
                    else kept.add(new int[] {m[0], m[1], 0});
                    previousMatch = isMatch;
                }
            }
            case MERGED_WITH_PREVIOUS -> {
                boolean previousMatch = false;
                for (int[] m : matches) {
                    boolean isMatch = m[2] == 1;
                    if (isMatch && !previousMatch && !kept.isEmpty()) kept.get(kept.size() - 1)[1] = m[1];
                    else kept.add(new int[] {m[0], m[1], 0});
                    previousMatch = isMatch;
                }
            }
            case MERGED_WITH_NEXT -> {
                boolean previousMatch = false;
                List<int[]> reversed = new ArrayList<>();
                for (int k = matches.size() - 1; k >= 0; k--) {
                    int[] m = matches.get(k);
                    boolean isMatch = m[2] == 1;
                    if (isMatch && !previousMatch && !reversed.isEmpty()) reversed.get(reversed.size() - 1)[0] = m[0];
                    else reversed.add(new int[] {m[0], m[1], 0});
                    previousMatch = isMatch;
                }
                for (int k = reversed.size() - 1; k >= 0; k--) kept.add(reversed.get(k));
            }
        }
        for (int[] k : kept) {
            if (k[1] > k[0]) out.add(new Piece(piece.text().substring(k[0], k[1]), piece.atOrigin() && k[0] == 0));
        }
    }

    static PreTokenizer split(Pattern pattern, Behavior behavior, boolean invert) {
        return (in, out) -> {
            for (Piece p : in) {
                List<int[]> matches = regexMatches(pattern, p.text());
                if (invert) for (int[] m : matches) m[2] = 1 - m[2];
                applyBehavior(p, matches, behavior, out);
            }
        };
    }

    static PreTokenizer splitOn(IntPredicate isDelimiter, Behavior behavior) {
        return (in, out) -> {
            for (Piece p : in) applyBehavior(p, charMatches(isDelimiter, p.text()), behavior, out);
        };
    }

    // --- Metaspace ----------------------------------------------------------------------------------------------

    private static PreTokenizer metaspace(JsonNode node) {
        String replacement = HfJson.string(node, "replacement");
        if (replacement.codePointCount(0, replacement.length()) != 1) {
            throw new IllegalArgumentException("Metaspace replacement must be one character, got \"" + replacement + "\"");
        }
        String scheme;
        if (node.has("prepend_scheme") && !node.get("prepend_scheme").isNull()) scheme = node.get("prepend_scheme").asText();
        else scheme = "always";
        if (node.has("add_prefix_space") && !node.get("add_prefix_space").asBoolean(true)) {
            if (node.has("prepend_scheme") && !scheme.equals("never")) {
                throw new IllegalArgumentException("Metaspace: add_prefix_space=false does not match prepend_scheme \"" + scheme + "\"");
            }
            scheme = "never";
        }
        boolean split = node.path("split").asBoolean(true);
        return metaspace(replacement, scheme, split);
    }

    static PreTokenizer metaspace(String replacement, String scheme, boolean split) {
        if (!scheme.equals("always") && !scheme.equals("first") && !scheme.equals("never")) {
            throw new IllegalArgumentException("Metaspace prepend_scheme \"" + scheme + "\" is not always, first or never");
        }
        int rep = replacement.codePointAt(0);
        return (in, out) -> {
            for (Piece p : in) {
                String s = p.text().replace(" ", replacement);
                boolean prepend = switch (scheme) {
                    case "always" -> !s.startsWith(replacement);
                    case "first" -> !s.startsWith(replacement) && p.atOrigin();
                    default -> false;
                };
                if (prepend) s = replacement + s;
                Piece replaced = new Piece(s, p.atOrigin());
                if (split) applyBehavior(replaced, charMatches(cp -> cp == rep, s), Behavior.MERGED_WITH_NEXT, out);
                else if (!s.isEmpty()) out.add(replaced);
            }
        };
    }

    // --- ByteLevel ----------------------------------------------------------------------------------------------

    static PreTokenizer byteLevel(boolean addPrefixSpace, boolean useRegex) {
        return (in, out) -> {
            List<Piece> parts = new ArrayList<>();
            for (Piece p : in) {
                String s = p.text();
                if (addPrefixSpace && !s.startsWith(" ")) s = " " + s;
                Piece q = new Piece(s, p.atOrigin());
                if (useRegex) applyBehavior(q, regexMatches(GPT2_PATTERN, s), Behavior.ISOLATED, parts);
                else if (!s.isEmpty()) parts.add(q);
            }
            for (Piece p : parts) out.add(new Piece(ByteLevelAlphabet.encode(p.text().getBytes(StandardCharsets.UTF_8)), p.atOrigin()));
        };
    }
}
