package dev.impasto.encoders.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.encoders.tokenizer.HfModels.Model;
import dev.impasto.encoders.tokenizer.HfNormalizers.Normalizer;
import dev.impasto.encoders.tokenizer.HfPreTokenizers.Piece;
import dev.impasto.encoders.tokenizer.HfPreTokenizers.PreTokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The encoding path of an HF {@code tokenizers} Tokenizer: added tokens are cut out of the raw text first, every
 * remaining segment is normalized on its own, tokens marked "normalized" are cut out of the normalized text, the
 * rest is pre-tokenized and each piece goes through the model; the post-processor's single-sequence template gives
 * the special ids around the result.
 */
final class HfPipeline {
    record AddedToken(String content, int id, boolean special, boolean singleWord, boolean lstrip, boolean rstrip,
                      boolean normalized) {}

    private final List<AddedToken> addedTokens;
    private final Map<Character, List<AddedToken>> rawTokensByFirstChar;
    private final Map<Character, List<AddedToken>> normalizedTokensByFirstChar;
    final Normalizer normalizer;
    final PreTokenizer preTokenizer;
    final Model model;
    final int[] prefixIds, suffixIds;

    HfPipeline(List<AddedToken> addedTokens, Normalizer normalizer, PreTokenizer preTokenizer, Model model,
               int[] prefixIds, int[] suffixIds) {
        this.addedTokens = List.copyOf(addedTokens);
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.model = model;
        this.prefixIds = prefixIds;
        this.suffixIds = suffixIds;
        rawTokensByFirstChar = index(addedTokens, false);
        normalizedTokensByFirstChar = index(addedTokens, true);
    }

    private static Map<Character, List<AddedToken>> index(List<AddedToken> tokens, boolean normalized) {
        Map<Character, List<AddedToken>> map = new HashMap<>();
        for (AddedToken t : tokens) {
            if (t.normalized() != normalized || t.content().isEmpty()) continue;
            map.computeIfAbsent(t.content().charAt(0), c -> new ArrayList<>()).add(t);
        }
        // Longest first, so the first hit at a position is the leftmost-longest match.
        for (List<AddedToken> l : map.values()) l.sort(Comparator.comparingInt((AddedToken t) -> t.content().length()).reversed());
        return map;
    }

    List<AddedToken> addedTokens() {
        return addedTokens;
    }

    static HfPipeline read(Path path) throws TokenizerFileException {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(path.toFile());
        } catch (IOException e) {
            throw new TokenizerFileException(path, "cannot read as JSON (" + e.getMessage() + ")", e);
        }
        if (root == null || !root.isObject()) throw new TokenizerFileException(path, "is not a JSON object (expected an HF tokenizer.json)");
        try {
            return fromJson(root);
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new TokenizerFileException(path, "unsupported or invalid tokenizer.json: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            // a field of the wrong shape (missing array element, object instead of string, ...)
            throw new TokenizerFileException(path, "malformed tokenizer.json (" + e + ")", e);
        }
    }

    static HfPipeline fromJson(JsonNode root) {
        Model model = HfModels.fromJson(root.get("model"));
        List<AddedToken> added = new ArrayList<>();
        JsonNode addedNode = root.get("added_tokens");
        if (addedNode != null && addedNode.isArray()) {
            for (JsonNode t : addedNode) {
                boolean special = t.path("special").asBoolean(false);
                added.add(new AddedToken(HfJson.string(t, "content"), t.path("id").asInt(), special,
                        t.path("single_word").asBoolean(false), t.path("lstrip").asBoolean(false),
                        t.path("rstrip").asBoolean(false), t.path("normalized").asBoolean(!special)));
            }
        }
        Normalizer normalizer = HfNormalizers.fromJson(root.get("normalizer"));
        PreTokenizer preTokenizer = HfPreTokenizers.fromJson(root.get("pre_tokenizer"));
        IntList prefix = new IntList(2), suffix = new IntList(2);
        postProcessor(root.get("post_processor"), prefix, suffix);
        return new HfPipeline(added, normalizer, preTokenizer, model, prefix.toArray(), suffix.toArray());
    }

    private static void postProcessor(JsonNode node, IntList prefix, IntList suffix) {
        if (node == null || node.isNull()) return;
        String type = HfJson.type(node, "post_processor");
        switch (type) {
            case "TemplateProcessing" -> {
                Map<String, int[]> specials = new HashMap<>();
                JsonNode st = node.get("special_tokens");
                if (st != null && st.isObject()) {
                    st.properties().forEach(e -> {
                        JsonNode ids = e.getValue().get("ids");
                        int[] arr = new int[ids == null ? 0 : ids.size()];
                        for (int i = 0; i < arr.length; i++) arr[i] = ids.get(i).asInt();
                        specials.put(e.getKey(), arr);
                    });
                }
                boolean seenSequence = false;
                for (JsonNode item : HfJson.array(node, "single")) {
                    if (item.has("Sequence")) {
                        seenSequence = true;
                    } else if (item.has("SpecialToken")) {
                        String id = item.get("SpecialToken").path("id").asText();
                        int[] ids = specials.get(id);
                        if (ids == null) throw new IllegalArgumentException("TemplateProcessing uses special token \"" + id + "\" that special_tokens does not define");
                        (seenSequence ? suffix : prefix).addAll(ids);
                    } else {
                        throw new IllegalArgumentException("TemplateProcessing item " + item + " is neither Sequence nor SpecialToken");
                    }
                }
            }
            case "RobertaProcessing", "BertProcessing" -> {
                prefix.add(node.get("cls").get(1).asInt());
                suffix.add(node.get("sep").get(1).asInt());
            }
            case "ByteLevel" -> { }
            case "Sequence" -> {
                for (JsonNode p : HfJson.array(node, "processors")) postProcessor(p, prefix, suffix);
            }
            default -> throw new IllegalArgumentException("post_processor type \"" + type + "\" is not supported (impasto reads "
                    + "TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence)");
        }
    }

    // --- encoding -----------------------------------------------------------------------------------------------

    /** A stretch of text, or an added token when {@code id >= 0}. {@code start} is its offset in the text it came from. */
    private record Segment(String text, int id, int start) {}

    /** Splits around added tokens: leftmost-longest matches, with single_word / lstrip / rstrip as HF applies them. */
    private static List<Segment> splitAdded(String s, Map<Character, List<AddedToken>> byFirstChar, int baseOffset) {
        List<Segment> out = new ArrayList<>();
        if (byFirstChar.isEmpty()) {
            out.add(new Segment(s, -1, baseOffset));
            return out;
        }
        int segmentStart = 0;
        int i = 0;
        while (i < s.length()) {
            List<AddedToken> candidates = byFirstChar.get(s.charAt(i));
            AddedToken hit = null;
            if (candidates != null) {
                for (AddedToken t : candidates) {
                    if (s.startsWith(t.content(), i)) {
                        hit = t;
                        break;
                    }
                }
            }
            if (hit == null) {
                i++;
                continue;
            }
            int start = i, stop = i + hit.content().length();
            i = stop;
            if (hit.singleWord()) {
                boolean startOk = start == 0 || !TextRules.isWordChar(s.codePointBefore(start));
                boolean stopOk = stop == s.length() || !TextRules.isWordChar(s.codePointAt(stop));
                if (!startOk || !stopOk) continue;
            }
            if (hit.lstrip()) {
                int newStart = start;
                while (newStart > 0 && TextRules.isWhiteSpace(s.codePointBefore(newStart))) newStart -= Character.charCount(s.codePointBefore(newStart));
                start = Math.max(newStart, segmentStart);
            }
            if (hit.rstrip()) {
                while (stop < s.length() && TextRules.isWhiteSpace(s.codePointAt(stop))) stop += Character.charCount(s.codePointAt(stop));
                i = stop;
            }
            if (segmentStart < start) out.add(new Segment(s.substring(segmentStart, start), -1, baseOffset + segmentStart));
            out.add(new Segment(s.substring(start, stop), hit.id(), baseOffset + start));
            segmentStart = stop;
        }
        if (segmentStart < s.length()) out.add(new Segment(s.substring(segmentStart), -1, baseOffset + segmentStart));
        return out;
    }

    /** The ids of {@code text} without the post-processor's special tokens. */
    int[] encode(String text) {
        IntList ids = new IntList(text.length() / 3 + 4);
        List<Piece> pieces = new ArrayList<>();
        List<Piece> split = new ArrayList<>();
        for (Segment raw : splitAdded(text, rawTokensByFirstChar, 0)) {
            if (raw.id() >= 0) {
                ids.add(raw.id());
                continue;
            }
            String normalized = normalizer == null ? raw.text() : normalizer.normalize(raw.text());
            if (normalized.isEmpty()) continue;
            for (Segment seg : splitAdded(normalized, normalizedTokensByFirstChar, 0)) {
                if (seg.id() >= 0) {
                    ids.add(seg.id());
                    continue;
                }
                if (seg.text().isEmpty()) continue;
                pieces.clear();
                pieces.add(new Piece(seg.text(), raw.start() == 0 && seg.start() == 0));
                List<Piece> toModel = pieces;
                if (preTokenizer != null) {
                    split.clear();
                    preTokenizer.split(pieces, split);
                    toModel = split;
                }
                for (Piece p : toModel) model.tokenize(p.text(), ids);
            }
        }
        return ids.toArray();
    }
}
