package dev.impasto.encoders.tokenizer;

import dev.impasto.encoders.tokenizer.HfPipeline.AddedToken;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * T5's SentencePiece UNIGRAM tokenizer (FLUX's second text encoder, T5-v1.1-XXL): the prompt's pieces, then
 * {@code </s>} (id 1), then {@code <pad>} (id 0) up to the sequence length FLUX uses (512 for FLUX.1-dev, 256 for
 * FLUX.1-schnell).
 *
 * <p>Two file types, each encoded as its reference library does:
 * <ul>
 *   <li>{@code tokenizer.json} (HF tokenizers; what diffusers' T5TokenizerFast reads from FLUX.1-dev/tokenizer_2/):
 *       added tokens ({@code </s>}, {@code <extra_id_N>}, ...) are recognised in the prompt text, then the file's
 *       normalizer (Precompiled charsmap, ...), pre-tokenizer (Metaspace, ...) and Unigram model run.</li>
 *   <li>{@code spiece.model} (the sentencepiece library): the model's own normalizer (precompiled nmt_nfkc
 *       charsmap, whitespace rules) and Viterbi; special-token text in the prompt is ordinary text.</li>
 * </ul>
 * A folder holding both is read through tokenizer.json, as diffusers does.
 *
 * <p>Instances are immutable and thread-safe.
 */
public final class T5Tokenizer {
    public static final int FLUX_DEV_MAX_LENGTH = 512;
    public static final int FLUX_SCHNELL_MAX_LENGTH = 256;

    private final HfPipeline pipeline;              // tokenizer.json mode, else null
    private final SentencePieceEncoder sentencePiece; // spiece.model mode, else null
    private final SentencePieceModelFile spModel;
    private final int eosId, padId, unkId;
    private final String source;

    private T5Tokenizer(HfPipeline pipeline, SentencePieceEncoder sentencePiece, SentencePieceModelFile spModel,
                        int eosId, int padId, int unkId, String source) {
        this.pipeline = pipeline;
        this.sentencePiece = sentencePiece;
        this.spModel = spModel;
        this.eosId = eosId;
        this.padId = padId;
        this.unkId = unkId;
        this.source = source;
    }

    // --- loading ------------------------------------------------------------------------------------------------

    /** Loads from a folder (FLUX.1-dev/tokenizer_2/: tokenizer.json or spiece.model) or from one of those files. */
    public static T5Tokenizer load(Path path) throws TokenizerFileException {
        if (Files.isDirectory(path)) {
            Path json = path.resolve("tokenizer.json"), spiece = path.resolve("spiece.model");
            if (Files.isRegularFile(json)) return fromTokenizerJson(json);
            if (Files.isRegularFile(spiece)) return fromSentencePiece(spiece);
            throw new TokenizerFileException(path, "no T5 tokenizer here: expected tokenizer.json or spiece.model (as in FLUX.1-dev/tokenizer_2/)");
        }
        if (!Files.exists(path)) {
            throw new TokenizerFileException(path, "does not exist; expected a T5 tokenizer folder (FLUX.1-dev/tokenizer_2/) or its "
                    + "spiece.model or tokenizer.json");
        }
        if (path.getFileName().toString().endsWith(".json")) return fromTokenizerJson(path);
        return fromSentencePiece(path);
    }

    /** A SentencePiece model file (spiece.model), encoded as the sentencepiece library encodes. */
    public static T5Tokenizer fromSentencePiece(Path spieceModel) throws TokenizerFileException {
        if (!Files.isRegularFile(spieceModel)) {
            throw new TokenizerFileException(spieceModel, "missing; expected a SentencePiece model such as FLUX.1-dev/tokenizer_2/spiece.model");
        }
        SentencePieceModelFile model = SentencePieceModelFile.read(spieceModel);
        SentencePieceEncoder encoder = new SentencePieceEncoder(model, spieceModel);
        int eos = model.eosId;
        if (eos < 0 || eos >= model.size()) eos = findPiece(model, "</s>");
        if (eos < 0) throw new TokenizerFileException(spieceModel, "the model has no end-of-sequence piece (trainer_spec.eos_id, \"</s>\")");
        // T5 models set pad_id = 0; a model without one pads with "<pad>" if it has it, else with </s>. T5 in FLUX
        // reads no attention mask, so the pad id only matters for real T5 files, which define it.
        int pad = model.padId >= 0 && model.padId < model.size() ? model.padId : findPiece(model, "<pad>");
        if (pad < 0) pad = eos;
        return new T5Tokenizer(null, encoder, model, eos, pad, encoder.unkId(), spieceModel.toString());
    }

    /** An HF tokenizer.json with a Unigram model, encoded as HF tokenizers encodes. */
    public static T5Tokenizer fromTokenizerJson(Path tokenizerJson) throws TokenizerFileException {
        if (!Files.isRegularFile(tokenizerJson)) {
            throw new TokenizerFileException(tokenizerJson, "missing; expected T5's tokenizer.json (FLUX.1-dev/tokenizer_2/tokenizer.json)");
        }
        HfPipeline p = HfPipeline.read(tokenizerJson);
        if (!(p.model instanceof HfModels.Unigram)) {
            throw new TokenizerFileException(tokenizerJson, "has a " + p.model.getClass().getSimpleName() + " model; T5 needs a Unigram model");
        }
        Path folder = tokenizerJson.toAbsolutePath().getParent();
        int eos = idOf(p, configured(folder, "eos_token", "</s>"), tokenizerJson);
        String padToken = SpecialTokenConfig.find(folder, "pad_token");
        int pad;
        if (padToken != null) pad = idOf(p, padToken, tokenizerJson);
        else pad = p.model.tokenToId("<pad>") >= 0 || hasAdded(p, "<pad>") ? idOf(p, "<pad>", tokenizerJson) : eos;
        int unk = idOf(p, configured(folder, "unk_token", "<unk>"), tokenizerJson);
        if (p.prefixIds.length == 0 && p.suffixIds.length == 0) {
            // Older files carry no post_processor; T5TokenizerFast still appends </s>.
            p = new HfPipeline(p.addedTokens(), p.normalizer, p.preTokenizer, p.model, new int[0], new int[] {eos});
        }
        return new T5Tokenizer(p, null, null, eos, pad, unk, tokenizerJson.toString());
    }

    private static String configured(Path folder, String key, String fallback) throws TokenizerFileException {
        String v = SpecialTokenConfig.find(folder, key);
        return v == null ? fallback : v;
    }

    private static int idOf(HfPipeline p, String token, Path source) throws TokenizerFileException {
        for (AddedToken t : p.addedTokens()) if (t.content().equals(token)) return t.id();
        int id = p.model.tokenToId(token);
        if (id < 0) throw new TokenizerFileException(source, "token \"" + token + "\" is not in the vocabulary");
        return id;
    }

    private static boolean hasAdded(HfPipeline p, String token) {
        for (AddedToken t : p.addedTokens()) if (t.content().equals(token)) return true;
        return false;
    }

    private static int findPiece(SentencePieceModelFile model, String piece) {
        for (int i = 0; i < model.size(); i++) if (model.pieces[i].equals(piece)) return i;
        return -1;
    }

    // --- encoding -----------------------------------------------------------------------------------------------

    /** Ids of the prompt without {@code </s>} and without any length limit. */
    public int[] tokenize(String text) {
        return pipeline != null ? pipeline.encode(text) : sentencePiece.encode(text);
    }

    /**
     * The prompt's first {@code maxLength - 1} tokens, {@code </s>}, then {@code <pad>} up to {@code maxLength}
     * (HF's truncation=True, padding="max_length").
     */
    public TokenEncoding encode(String text, int maxLength) {
        int[] prefix = pipeline != null ? pipeline.prefixIds : new int[0];
        int[] suffix = pipeline != null ? pipeline.suffixIds : new int[] {eosId};
        return Encodings.assemble(tokenize(text), prefix, suffix, padId, maxLength);
    }

    /** Text of the ids with {@code </s>}, padding and other control tokens left out. */
    public String decode(int[] ids) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int id : ids) {
            if (id == eosId || id == padId) continue;
            String piece = piece(id);
            if (piece == null || (isControl(id))) continue;
            if (piece.length() == 6 && piece.startsWith("<0x") && piece.endsWith(">")) {
                try {
                    bytes.write(Integer.parseInt(piece.substring(3, 5), 16));
                    continue;
                } catch (NumberFormatException ignored) {
                    // an ordinary piece that happens to look like a byte piece
                }
            }
            bytes.writeBytes(piece.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8));
        }
        String text = bytes.toString(StandardCharsets.UTF_8);
        return text.startsWith(" ") ? text.substring(1) : text;
    }

    private boolean isControl(int id) {
        if (spModel != null) return spModel.types[id] == SentencePieceModelFile.CONTROL;
        for (AddedToken t : pipeline.addedTokens()) if (t.id() == id && t.special()) return true;
        return false;
    }

    /** The piece text of an id, or null when the id is outside the vocabulary. */
    public String piece(int id) {
        if (spModel != null) return id >= 0 && id < spModel.size() ? spModel.pieces[id] : null;
        for (AddedToken t : pipeline.addedTokens()) if (t.id() == id) return t.content();
        return pipeline.model.idToToken(id);
    }

    public int eosId() {
        return eosId;
    }

    public int padId() {
        return padId;
    }

    public int unkId() {
        return unkId;
    }

    /** Number of ids the tokenizer can produce (T5 from tokenizer.json: 32100 with the extra ids; spiece.model: 32000). */
    public int vocabSize() {
        if (spModel != null) return spModel.size();
        int n = pipeline.model.vocabSize();
        for (AddedToken t : pipeline.addedTokens()) n = Math.max(n, t.id() + 1);
        return n;
    }

    @Override
    public String toString() {
        return "T5Tokenizer[" + source + ", " + (pipeline != null ? "tokenizer.json" : "sentencepiece") + ", vocab " + vocabSize() + "]";
    }
}
