package dev.impasto.encoders.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.charset.StandardCharsets;
import java.text.BreakIterator;
import java.text.Normalizer.Form;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The normalizers of HF tokenizers' tokenizer.json that CLIP- and T5-family files use, with the same semantics. */
final class HfNormalizers {
    private HfNormalizers() {}

    interface Normalizer {
        String normalize(String s);
    }

    /** Builds the normalizer a tokenizer.json "normalizer" object describes; null for JSON null. */
    static Normalizer fromJson(JsonNode node) {
        if (node == null || node.isNull()) return null;
        String type = HfJson.type(node, "normalizer");
        return switch (type) {
            case "Sequence" -> {
                List<Normalizer> parts = new ArrayList<>();
                for (JsonNode n : HfJson.array(node, "normalizers")) {
                    Normalizer part = fromJson(n);
                    if (part != null) parts.add(part);
                }
                yield sequence(parts);
            }
            case "NFC" -> unicode(Form.NFC);
            case "NFD" -> unicode(Form.NFD);
            case "NFKC" -> unicode(Form.NFKC);
            case "NFKD" -> unicode(Form.NFKD);
            case "Lowercase" -> TextRules::lowercase;
            case "Strip" -> strip(node.path("strip_left").asBoolean(true), node.path("strip_right").asBoolean(true));
            case "StripAccents" -> HfNormalizers::stripAccents;
            case "Replace" -> replace(HfJson.pattern(node.get("pattern")), HfJson.string(node, "content"));
            case "Prepend" -> prepend(HfJson.string(node, "prepend"));
            case "Precompiled" -> {
                JsonNode map = node.get("precompiled_charsmap");
                if (map == null || map.isNull() || map.asText().isEmpty()) yield s -> s;
                byte[] blob;
                try {
                    blob = Base64.getDecoder().decode(map.asText());
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("Precompiled normalizer: precompiled_charsmap is not base64: " + e.getMessage());
                }
                yield precompiled(PrecompiledCharsMap.parse(blob));
            }
            default -> throw new IllegalArgumentException("normalizer type \"" + type + "\" is not supported (impasto reads "
                    + "Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Replace, Prepend, Precompiled)");
        };
    }

    static Normalizer sequence(List<Normalizer> parts) {
        Normalizer[] array = parts.toArray(new Normalizer[0]);
        return s -> {
            for (Normalizer n : array) s = n.normalize(s);
            return s;
        };
    }

    static Normalizer unicode(Form form) {
        return s -> java.text.Normalizer.normalize(s, form);
    }

    static Normalizer strip(boolean left, boolean right) {
        return s -> {
            int start = 0, end = s.length();
            if (left) {
                while (start < end) {
                    int cp = s.codePointAt(start);
                    if (!TextRules.isWhiteSpace(cp)) break;
                    start += Character.charCount(cp);
                }
            }
            if (right) {
                while (end > start) {
                    int cp = s.codePointBefore(end);
                    if (!TextRules.isWhiteSpace(cp)) break;
                    end -= Character.charCount(cp);
                }
            }
            return s.substring(start, end);
        };
    }

    static String stripAccents(String s) {
        StringBuilder out = new StringBuilder(s.length());
        s.codePoints().filter(cp -> Character.getType(cp) != Character.NON_SPACING_MARK).forEach(out::appendCodePoint);
        return out.toString();
    }

    static Normalizer replace(Pattern pattern, String content) {
        String literal = Matcher.quoteReplacement(content);
        return s -> pattern.matcher(s).replaceAll(literal);
    }

    static Normalizer prepend(String prefix) {
        return s -> s.isEmpty() ? s : prefix + s;
    }

    /**
     * HF tokenizers' Precompiled normalizer: per extended grapheme cluster, the replacement of the cluster's first
     * (shortest) matching prefix replaces the whole cluster when the cluster is under 6 UTF-8 bytes; otherwise each
     * code point is looked up alone. This is not what sentencepiece does (longest match over the raw bytes), and the
     * two differ on some combining sequences; both are kept so each file type matches its own reference library.
     */
    static Normalizer precompiled(PrecompiledCharsMap map) {
        return s -> {
            if (s.isEmpty()) return s;
            StringBuilder out = new StringBuilder(s.length() + 8);
            BreakIterator graphemes = BreakIterator.getCharacterInstance(Locale.ROOT);
            graphemes.setText(s);
            int start = graphemes.first();
            for (int end = graphemes.next(); end != BreakIterator.DONE; start = end, end = graphemes.next()) {
                String grapheme = s.substring(start, end);
                if (utf8Length(grapheme) < 6) {
                    String replaced = map.firstMatch(grapheme);
                    if (replaced != null) {
                        out.append(replaced);
                        continue;
                    }
                }
                for (int i = 0; i < grapheme.length(); ) {
                    int cp = grapheme.codePointAt(i);
                    int n = Character.charCount(cp);
                    String one = grapheme.substring(i, i + n);
                    String replaced = map.firstMatch(one);
                    out.append(replaced != null ? replaced : one);
                    i += n;
                }
            }
            return out.toString();
        };
    }

    static int utf8Length(String s) {
        int n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) n += 1;
            else if (c < 0x800) n += 2;
            else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                n += 4;
                i++;
            } else n += 3;
        }
        return n;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
