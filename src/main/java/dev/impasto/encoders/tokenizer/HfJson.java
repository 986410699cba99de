package dev.impasto.encoders.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.regex.Pattern;

/** Field access for tokenizer.json with messages that say which field is wrong. */
final class HfJson {
    private HfJson() {}

    static String type(JsonNode node, String what) {
        JsonNode t = node.get("type");
        if (t == null || !t.isTextual()) throw new IllegalArgumentException(what + " without a \"type\" field: " + abbreviate(node));
        return t.asText();
    }

    static Iterable<JsonNode> array(JsonNode node, String field) {
        JsonNode a = node.get(field);
        if (a == null || !a.isArray()) throw new IllegalArgumentException("\"" + field + "\" must be an array in " + abbreviate(node));
        return a;
    }

    static String string(JsonNode node, String field) {
        JsonNode s = node.get(field);
        if (s == null || !s.isTextual()) throw new IllegalArgumentException("\"" + field + "\" must be a string in " + abbreviate(node));
        return s.asText();
    }

    /** A {"String": "..."} or {"Regex": "..."} pattern object as a Java pattern. */
    static Pattern pattern(JsonNode node) {
        if (node != null && node.has("String")) return Pattern.compile(Pattern.quote(node.get("String").asText()));
        if (node != null && node.has("Regex")) return TextRules.compileOniguruma(node.get("Regex").asText());
        throw new IllegalArgumentException("pattern must be {\"String\": ...} or {\"Regex\": ...}, got " + abbreviate(node));
    }

    static String abbreviate(JsonNode node) {
        String s = String.valueOf(node);
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }
}
