package dev.impasto.pipeline.caption;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Turns a model's answer text into a validated caption, or says why it can't. */
public final class CaptionParser {
    public static final int MIN_WORDS = 3, MAX_WORDS = 150;
    private static final Pattern FENCE = Pattern.compile("^```(?:json)?\\s*(.*?)\\s*```$", Pattern.DOTALL);

    private CaptionParser() {}

    public static Reply parse(String answer) {
        if (answer == null || answer.isBlank()) return new Reply.Malformed("empty answer");
        String s = answer.strip();
        Matcher m = FENCE.matcher(s);
        if (m.matches()) s = m.group(1).strip();
        JsonNode node;
        try {
            node = Json.parse(s);
        } catch (Exception e) {
            return new Reply.Malformed("answer is not JSON: " + brief(answer));
        }
        if (node == null || !node.isObject()) return new Reply.Malformed("answer is not a JSON object: " + brief(answer));
        JsonNode c = node.get("caption");
        if (c == null || !c.isTextual()) return new Reply.Malformed("answer has no string field 'caption': " + brief(answer));
        String caption = c.asText().replaceAll("\\s+", " ").strip();
        int words = caption.isEmpty() ? 0 : caption.split(" ").length;
        if (words < MIN_WORDS) return new Reply.Malformed("caption has " + words + " words, fewer than " + MIN_WORDS);
        if (words > MAX_WORDS) return new Reply.Malformed("caption has " + words + " words, more than " + MAX_WORDS);
        return new Reply.Caption(caption);
    }

    static String brief(String s) {
        String t = s.replaceAll("\\s+", " ").strip();
        return t.length() > 120 ? t.substring(0, 120) + "..." : t;
    }
}
