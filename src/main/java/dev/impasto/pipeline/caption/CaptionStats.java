package dev.impasto.pipeline.caption;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.pipeline.Json;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Statistics over a caption set: lengths, vocabulary, the most common openings (a set where every caption starts
 * "The image shows" trains that phrase in), and how many captions mention style words they should not.
 */
public final class CaptionStats {
    static final List<String> STYLE_WORDS = List.of("impressionis", "painting", "painted", "brushstroke", "brush stroke",
            "brushwork", "canvas", "artwork", "oil on", "style", "artist");

    public final int count;
    public final int minWords, maxWords, medianWords;
    public final double meanWords, meanChars;
    public final int vocabulary;
    public final Map<String, Integer> openings;
    public final int mentionStyle;
    public final int[] wordCounts;

    public CaptionStats(Collection<String> captions) {
        count = captions.size();
        wordCounts = captions.stream().mapToInt(c -> c.isBlank() ? 0 : c.strip().split("\\s+").length).sorted().toArray();
        minWords = count == 0 ? 0 : wordCounts[0];
        maxWords = count == 0 ? 0 : wordCounts[count - 1];
        medianWords = count == 0 ? 0 : wordCounts[count / 2];
        meanWords = java.util.Arrays.stream(wordCounts).average().orElse(0);
        meanChars = captions.stream().mapToInt(String::length).average().orElse(0);
        Set<String> vocab = new HashSet<>();
        Map<String, Integer> open = new HashMap<>();
        int style = 0;
        for (String c : captions) {
            String lower = c.toLowerCase(Locale.ROOT);
            String[] words = lower.replaceAll("[^a-z0-9' ]", " ").strip().split("\\s+");
            for (String w : words) if (!w.isEmpty()) vocab.add(w);
            if (words.length > 0 && !words[0].isEmpty())
                open.merge(String.join(" ", java.util.Arrays.copyOf(words, Math.min(3, words.length))).strip(), 1, Integer::sum);
            for (String s : STYLE_WORDS) if (lower.contains(s)) { style++; break; }
        }
        vocabulary = vocab.size();
        mentionStyle = style;
        openings = new LinkedHashMap<>();
        open.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed().thenComparing(Map.Entry.comparingByKey()))
                .limit(10).forEach(e -> openings.put(e.getKey(), e.getValue()));
    }

    public ObjectNode toJson() {
        ObjectNode o = Json.object();
        o.put("captions", count);
        o.putObject("words").put("min", minWords).put("median", medianWords).put("mean", meanWords).put("max", maxWords);
        o.put("mean_chars", meanChars);
        o.put("vocabulary", vocabulary);
        ObjectNode op = o.putObject("top_openings");
        openings.forEach(op::put);
        o.put("mentioning_style_words", mentionStyle);
        return o;
    }

    public String markdown() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%d captions; words min %d, median %d, mean %.1f, max %d; %.0f characters on average; "
                + "vocabulary %d distinct words.%n%n", count, minWords, medianWords, meanWords, maxWords, meanChars, vocabulary));
        if (mentionStyle > 0)
            sb.append(mentionStyle).append(" caption(s) mention style words (").append(String.join(", ", STYLE_WORDS))
                    .append("): a style LoRA learns best when captions describe content only.\n\n");
        sb.append("| most common openings | captions |\n|---|---:|\n");
        openings.forEach((k, v) -> sb.append("| ").append(k).append(" | ").append(v).append(" |\n"));
        return sb.toString();
    }
}
