package dev.impasto.encoders.tokenizer;

import dev.impasto.encoders.tokenizer.HfPipeline.AddedToken;
import dev.impasto.encoders.tokenizer.HfPreTokenizers.Behavior;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer.Form;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * CLIP's byte-level BPE tokenizer (the text encoder FLUX, SD and SDXL share), producing the ids HF's
 * CLIPTokenizerFast produces: NFC, runs of whitespace to one space, lowercase; split by
 * {@code 's|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+}; bytes mapped to GPT-2's byte alphabet; BPE with
 * a {@code </w>} end-of-word suffix; {@code <|startoftext|>} before and {@code <|endoftext|>} after.
 *
 * <p>openai/CLIP's own tokenizer also runs ftfy and html.unescape; HF's fast tokenizer (and therefore diffusers
 * with transformers 5) does not, and neither does this class: "&amp;amp;" stays five characters.
 *
 * <p>Instances are immutable and thread-safe.
 */
public final class ClipTokenizer {
    /** Sequence length of every CLIP text encoder (77 positional embeddings). */
    public static final int MAX_LENGTH = 77;
    public static final String START_OF_TEXT = "<|startoftext|>";
    public static final String END_OF_TEXT = "<|endoftext|>";

    /** Number of merges openai/CLIP reads from bpe_simple_vocab_16e6.txt.gz (the file holds many more). */
    private static final int OPENAI_MERGES = 49152 - 256 - 2;
    static final String SPLIT_REGEX =
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

    private final HfPipeline pipeline;
    private final int bosId, eosId, padId;
    private final String source;

    private ClipTokenizer(HfPipeline pipeline, int bosId, int eosId, int padId, String source) {
        this.pipeline = pipeline;
        this.bosId = bosId;
        this.eosId = eosId;
        this.padId = padId;
        this.source = source;
    }

    // --- loading ------------------------------------------------------------------------------------------------

    /**
     * Loads from a folder (FLUX.1-dev/tokenizer/: tokenizer.json, or vocab.json + merges.txt, or
     * bpe_simple_vocab_16e6.txt.gz) or from one of those files.
     */
    public static ClipTokenizer load(Path path) throws TokenizerFileException {
        if (Files.isDirectory(path)) {
            Path json = path.resolve("tokenizer.json");
            Path vocab = path.resolve("vocab.json"), merges = path.resolve("merges.txt");
            Path openai = path.resolve("bpe_simple_vocab_16e6.txt.gz");
            if (Files.isRegularFile(json)) return fromTokenizerJson(json);
            if (Files.isRegularFile(vocab) && Files.isRegularFile(merges)) return fromVocabAndMerges(vocab, merges);
            if (Files.isRegularFile(openai)) return fromOpenAiBpe(openai);
            throw new TokenizerFileException(path, "no CLIP tokenizer here: expected tokenizer.json, or vocab.json and merges.txt, "
                    + "or bpe_simple_vocab_16e6.txt.gz (as in FLUX.1-dev/tokenizer/)");
        }
        if (!Files.exists(path)) {
            throw new TokenizerFileException(path, "does not exist; expected a CLIP tokenizer folder (FLUX.1-dev/tokenizer/) or its "
                    + "tokenizer.json, vocab.json or bpe_simple_vocab_16e6.txt.gz");
        }
        String name = path.getFileName().toString();
        if (name.equals("vocab.json")) return fromVocabAndMerges(path, path.resolveSibling("merges.txt"));
        if (name.endsWith(".json")) return fromTokenizerJson(path);
        if (name.endsWith(".gz") || name.endsWith(".txt")) return fromOpenAiBpe(path);
        throw new TokenizerFileException(path, "unrecognised CLIP tokenizer file; expected tokenizer.json, vocab.json (with merges.txt) "
                + "or bpe_simple_vocab_16e6.txt.gz");
    }

    /** openai/CLIP's merges file; the vocabulary is rebuilt the way simple_tokenizer.py builds it. */
    public static ClipTokenizer fromOpenAiBpe(Path gz) throws TokenizerFileException {
        List<String> lines;
        try (InputStream in = new GZIPInputStream(Files.newInputStream(gz))) {
            lines = List.of(new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n", -1));
        } catch (IOException e) {
            throw new TokenizerFileException(gz, "cannot read as the gzip'd BPE merges list bpe_simple_vocab_16e6.txt.gz (" + e + ")", e);
        }
        if (lines.size() < OPENAI_MERGES + 1) {
            throw new TokenizerFileException(gz, "has " + (lines.size() - 1) + " merge lines; CLIP needs " + OPENAI_MERGES);
        }
        List<String[]> merges = parseMerges(lines.subList(1, OPENAI_MERGES + 1), gz, 2);
        List<String> vocab = new ArrayList<>(49408);
        for (char c : ByteLevelAlphabet.vocabularyOrder()) vocab.add(String.valueOf(c));
        for (char c : ByteLevelAlphabet.vocabularyOrder()) vocab.add(c + "</w>");
        for (String[] m : merges) vocab.add(m[0] + m[1]);
        vocab.add(START_OF_TEXT);
        vocab.add(END_OF_TEXT);
        Map<String, Integer> ids = new HashMap<>(vocab.size() * 2);
        for (int i = 0; i < vocab.size(); i++) ids.put(vocab.get(i), i);
        return build(ids, merges, END_OF_TEXT, gz);
    }

    /** HF's slow-tokenizer files (vocab.json + merges.txt), as FLUX.1-dev/tokenizer/ ships them. */
    public static ClipTokenizer fromVocabAndMerges(Path vocabJson, Path mergesTxt) throws TokenizerFileException {
        if (!Files.isRegularFile(vocabJson)) throw new TokenizerFileException(vocabJson, "missing; expected CLIP's vocab.json (token -> id)");
        if (!Files.isRegularFile(mergesTxt)) throw new TokenizerFileException(mergesTxt, "missing; expected CLIP's merges.txt beside vocab.json");
        Map<String, Integer> vocab = new HashMap<>();
        try {
            JsonNode root = new ObjectMapper().readTree(vocabJson.toFile());
            if (root == null || !root.isObject()) throw new TokenizerFileException(vocabJson, "is not a JSON object of token -> id");
            root.properties().forEach(e -> vocab.put(e.getKey(), e.getValue().asInt()));
        } catch (IOException e) {
            if (e instanceof TokenizerFileException t) throw t;
            throw new TokenizerFileException(vocabJson, "cannot read as JSON (" + e.getMessage() + ")", e);
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(mergesTxt, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new TokenizerFileException(mergesTxt, "cannot read (" + e + ")", e);
        }
        // HF's CLIPTokenizer reads lines [1, 48895) of the stripped file: the header line, then at most 48894 merges.
        List<String> body = new ArrayList<>();
        for (int i = 1; i < lines.size() && body.size() < OPENAI_MERGES; i++) {
            if (!lines.get(i).isBlank()) body.add(lines.get(i));
        }
        List<String[]> merges = parseMerges(body, mergesTxt, 2);
        String pad = SpecialTokenConfig.find(vocabJson.toAbsolutePath().getParent(), "pad_token");
        return build(vocab, merges, pad == null ? END_OF_TEXT : pad, vocabJson);
    }

    /** An HF tokenizer.json (BPE model, ByteLevel pre-tokenizer). The pad token comes from tokenizer_config.json beside it. */
    public static ClipTokenizer fromTokenizerJson(Path tokenizerJson) throws TokenizerFileException {
        if (!Files.isRegularFile(tokenizerJson)) throw new TokenizerFileException(tokenizerJson, "missing; expected CLIP's tokenizer.json");
        HfPipeline p = HfPipeline.read(tokenizerJson);
        int bos = idOf(p, START_OF_TEXT, tokenizerJson);
        int eos = idOf(p, END_OF_TEXT, tokenizerJson);
        String pad = SpecialTokenConfig.find(tokenizerJson.toAbsolutePath().getParent(), "pad_token");
        int padId = pad == null ? eos : idOf(p, pad, tokenizerJson);
        if (p.prefixIds.length == 0 && p.suffixIds.length == 0) {
            // A file without post_processor: CLIP still needs BOS ... EOS.
            p = new HfPipeline(p.addedTokens(), p.normalizer, p.preTokenizer, p.model, new int[] {bos}, new int[] {eos});
        }
        return new ClipTokenizer(p, bos, eos, padId, tokenizerJson.toString());
    }

    private static int idOf(HfPipeline p, String token, Path source) throws TokenizerFileException {
        for (AddedToken t : p.addedTokens()) if (t.content().equals(token)) return t.id();
        int id = p.model.tokenToId(token);
        if (id < 0) throw new TokenizerFileException(source, "token \"" + token + "\" is not in the vocabulary");
        return id;
    }

    private static List<String[]> parseMerges(List<String> lines, Path source, int firstLineNumber) throws TokenizerFileException {
        List<String[]> merges = new ArrayList<>(lines.size());
        for (int i = 0; i < lines.size(); i++) {
            String[] parts = splitMerge(lines.get(i));
            if (parts == null) {
                throw new TokenizerFileException(source, "line " + (firstLineNumber + i) + " \"" + lines.get(i) + "\" is not a merge (two tokens)");
            }
            merges.add(parts);
        }
        return merges;
    }

    /** "a b" as {"a", "b"} (split on runs of whitespace, as Python's str.split()), or null when it is not two tokens. */
    private static String[] splitMerge(String line) {
        int n = line.length(), i = 0;
        while (i < n && Character.isWhitespace(line.charAt(i))) i++;
        int aStart = i;
        while (i < n && !Character.isWhitespace(line.charAt(i))) i++;
        int aEnd = i;
        while (i < n && Character.isWhitespace(line.charAt(i))) i++;
        int bStart = i;
        while (i < n && !Character.isWhitespace(line.charAt(i))) i++;
        int bEnd = i;
        while (i < n && Character.isWhitespace(line.charAt(i))) i++;
        if (aEnd == aStart || bEnd == bStart || i != n) return null;
        return new String[] {line.substring(aStart, aEnd), line.substring(bStart, bEnd)};
    }

    private static ClipTokenizer build(Map<String, Integer> vocab, List<String[]> merges, String padToken, Path source)
            throws TokenizerFileException {
        Integer bos = vocab.get(START_OF_TEXT), eos = vocab.get(END_OF_TEXT), pad = vocab.get(padToken);
        if (bos == null || eos == null) throw new TokenizerFileException(source, "vocabulary lacks " + START_OF_TEXT + " or " + END_OF_TEXT);
        if (pad == null) throw new TokenizerFileException(source, "pad token \"" + padToken + "\" is not in the vocabulary");
        HfModels.Bpe bpe;
        try {
            bpe = new HfModels.Bpe(vocab, merges, END_OF_TEXT, "", "</w>", false, false, false);
        } catch (IllegalArgumentException e) {
            throw new TokenizerFileException(source, "inconsistent vocabulary and merges: " + e.getMessage(), e);
        }
        List<AddedToken> added = List.of(
                new AddedToken(START_OF_TEXT, bos, true, false, false, false, false),
                new AddedToken(END_OF_TEXT, eos, true, false, false, false, false));
        HfNormalizers.Normalizer normalizer = HfNormalizers.sequence(List.of(
                HfNormalizers.unicode(Form.NFC),
                HfNormalizers.replace(TextRules.compileOniguruma("\\s+"), " "),
                TextRules::lowercase));
        HfPreTokenizers.PreTokenizer preTokenizer = HfPreTokenizers.sequence(List.of(
                HfPreTokenizers.split(TextRules.compileOniguruma(SPLIT_REGEX), Behavior.REMOVED, true),
                HfPreTokenizers.byteLevel(false, true)));
        HfPipeline pipeline = new HfPipeline(added, normalizer, preTokenizer, bpe, new int[] {bos}, new int[] {eos});
        return new ClipTokenizer(pipeline, bos, eos, pad, source.toString());
    }

    // --- encoding -----------------------------------------------------------------------------------------------

    /** Ids of the prompt, without start/end tokens and without any length limit. */
    public int[] tokenize(String text) {
        return pipeline.encode(text);
    }

    /** The prompt as CLIP's text encoder takes it: 77 ids, start and end tokens included, padded. */
    public TokenEncoding encode(String text) {
        return encode(text, MAX_LENGTH);
    }

    /**
     * {@code <|startoftext|>}, the prompt's first {@code maxLength - 2} tokens, {@code <|endoftext|>}, then padding
     * up to {@code maxLength} (HF's truncation=True, padding="max_length").
     */
    public TokenEncoding encode(String text, int maxLength) {
        return Encodings.assemble(tokenize(text), pipeline.prefixIds, pipeline.suffixIds, padId, maxLength);
    }

    /**
     * Where CLIPTextModel takes its pooled output: with the FLUX / openai config (eos_token_id = 2 in config.json)
     * transformers pools at {@code argmax(input_ids)}, the first position holding the largest id, which for this
     * vocabulary is the first {@code <|endoftext|>} (49407); configs with a corrected eos_token_id pool at the first
     * position equal to it. Both rules pick the same position for ids made by this class.
     */
    public static int pooledIndex(int[] ids) {
        int best = 0;
        for (int i = 1; i < ids.length; i++) if (ids[i] > ids[best]) best = i;
        return best;
    }

    /** Text of the ids (start, end and padding tokens left out), as HF's decode with skip_special_tokens. */
    public String decode(int[] ids) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int id : ids) {
            if (id == bosId || id == eosId || id == padId) continue;
            String token = pipeline.model.idToToken(id);
            if (token == null) continue;
            token = token.replace("</w>", " ");
            for (int i = 0; i < token.length(); i++) {
                char c = token.charAt(i);
                int b = c == ' ' ? ' ' : ByteLevelAlphabet.decode(c);
                if (b >= 0) bytes.write(b);
            }
        }
        return bytes.toString(StandardCharsets.UTF_8).strip();
    }

    public int bosId() {
        return bosId;
    }

    public int eosId() {
        return eosId;
    }

    public int padId() {
        return padId;
    }

    public int vocabSize() {
        return pipeline.model.vocabSize();
    }

    @Override
    public String toString() {
        return "ClipTokenizer[" + source + ", vocab " + vocabSize() + "]";
    }
}
