package dev.impasto.encoders;

import dev.impasto.encoders.tokenizer.ClipTokenizer;
import dev.impasto.encoders.tokenizer.TokenEncoding;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import dev.impasto.util.Closeables;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A whole CLIP (transformers CLIPModel) for measuring pictures against prompts: the text tower with
 * {@code text_projection} and the vision tower with {@code visual_projection} (both without bias) map a prompt and a
 * picture into one space, where their cosine is the CLIP score's similarity; plus the tokenizer. Unlike FLUX's
 * conditioner, which uses the text tower's pooled output unprojected ({@link ClipTextEncoder}), both embeddings here
 * are the projected ones (CLIPModel's text_embeds and image_embeds before their normalisation).
 *
 * <p>Built from openai/clip-vit-large-patch14's model.safetensors (or its folder, which also holds the tokenizer) or
 * from random weights ({@link #random}: the tiny configuration with the byte tokenizer, for tests).
 */
public final class ClipModel implements AutoCloseable {
    /** The two towers' architectures; both project to {@code vision.projection()} dimensions. */
    public record Configs(ClipConfig text, ClipVisionConfig vision) {
        /** openai/clip-vit-large-patch14: ViT-L/14 at 224 pixels, 12-layer text tower, both projected to 768. */
        public static Configs large() {
            return new Configs(ClipConfig.large(), ClipVisionConfig.large());
        }

        /** Miniatures for tests: {@link ClipConfig#tiny()} (byte tokenizer) and {@link ClipVisionConfig#tiny()}. */
        public static Configs tiny() {
            return new Configs(ClipConfig.tiny(), ClipVisionConfig.tiny());
        }

        public int projection() {
            return vision.projection();
        }
    }

    /** A key only a whole CLIPModel has (text encoders such as FLUX's clip_l.safetensors do not); its prefix is the file's. */
    public static final String ANCHOR = "vision_model.post_layernorm.weight";
    static final String COMPONENT = "CLIP model";
    static final String EXPECTED = "--clip needs a whole transformers CLIPModel (text and vision towers with text_projection and "
            + "visual_projection), as openai/clip-vit-large-patch14's model.safetensors holds it; FLUX's clip_l.safetensors and "
            + "text_encoder/ hold the text tower only";

    private final Backend backend;
    private final DType dtype;
    private final Configs configs;
    private final ClipTextEncoder text;
    private final LinearWeight textProjection;
    private final ClipVisionEncoder vision;
    private final PromptTokenizer tokenizer;
    private final String description;

    private ClipModel(Backend be, DType dt, Configs c, ClipTextEncoder text, LinearWeight textProjection, ClipVisionEncoder vision,
                      PromptTokenizer tokenizer, String description) {
        this.backend = be;
        this.dtype = dt;
        this.configs = c;
        this.text = text;
        this.textProjection = textProjection;
        this.vision = vision;
        this.tokenizer = tokenizer;
        this.description = description;
    }

    /** Both towers and projections from {@code w} (transformers CLIPModel names), with {@code tokenizer}. */
    public static ClipModel load(Backend be, DType dt, Configs c, EncoderWeights w, PromptTokenizer tokenizer, String description) {
        ClipTextEncoder t = null;
        LinearWeight tp = null;
        ClipVisionEncoder v = null;
        try {
            t = ClipTextEncoder.load(c.text(), be, dt, w, BaseFormat.BF16);
            tp = w.linear(be, "text_projection.weight", c.projection(), c.text().hidden(), dt, BaseFormat.BF16);
            v = ClipVisionEncoder.load(c.vision(), be, dt, w, BaseFormat.BF16);
        } catch (RuntimeException e) {
            Closeables.closeQuietly(v, tp, t);
            throw e;
        }
        return new ClipModel(be, dt, c, t, tp, v, tokenizer, description);
    }

    /** Random weights (deterministic per seed) and the byte tokenizer; {@code c} must be {@link Configs#tiny()}-like (vocabulary 258). */
    public static ClipModel random(Backend be, DType dt, Configs c, long seed) {
        if (c.text().vocab() < 258)
            throw new IllegalArgumentException("random CLIP: the byte tokenizer needs a vocabulary of 258, " + c.text().name() + " has " + c.text().vocab());
        return load(be, dt, c, new RandomEncoderWeights(seed), ByteTokenizer.clip(),
                "random " + c.text().name() + " / " + c.vision().name() + " (seed " + seed + ")");
    }

    /**
     * Opens {@code weights} (openai/clip-vit-large-patch14's model.safetensors, or the folder holding it) and its
     * tokenizer: {@code tokenizer} (tokenizer.json, vocab.json + merges.txt, or their folder) or, when null, the one
     * beside the weights. Every tensor is checked against {@code c}; a missing or misshapen one is an error naming the
     * file and the key.
     */
    public static ClipModel load(Backend be, DType dt, Configs c, Path weights, Path tokenizer) throws IOException {
        Path tokPath = tokenizer != null ? tokenizer : tokenizerBeside(weights);
        if (tokPath == null)
            throw new IOException("the CLIP model " + weights + " needs its tokenizer and none is beside it: give --clip-tokenizer (tokenizer.json, "
                    + "or vocab.json and merges.txt, as openai/clip-vit-large-patch14 ships them beside model.safetensors)");
        ClipTokenizer tok = ClipTokenizer.load(tokPath);
        try (FileEncoderWeights w = openWeights(weights)) {
            return load(be, dt, c, w, tok::encode, w.describe() + ", tokenizer " + tokPath.getFileName());
        }
    }

    /**
     * The weights of a whole CLIPModel (under any prefix), checked for the keys that tell it from a text encoder alone:
     * a file without them is an error naming it, the key and the file that is expected.
     */
    public static FileEncoderWeights openWeights(Path weights) throws IOException {
        FileEncoderWeights w;
        try {
            w = FileEncoderWeights.open(weights, COMPONENT, ANCHOR, UnaryOperator.identity(), "transformers CLIPModel");
        } catch (IOException e) {
            if (e.getMessage() != null && e.getMessage().contains("has no tensor named like")) throw new IOException(e.getMessage() + ". " + EXPECTED, e);
            throw e;
        }
        for (String key : List.of("visual_projection.weight", "text_projection.weight", "text_model.final_layer_norm.weight"))
            if (!w.has(key)) {
                Path file = w.path();
                w.close();
                throw new IllegalArgumentException(file + ": the CLIP weight \"" + key + "\" is missing. " + EXPECTED);
            }
        return w;
    }

    /** The folder of {@code weights} (itself if a folder) when it holds a CLIP tokenizer, else null. */
    public static Path tokenizerBeside(Path weights) {
        Path dir = Files.isDirectory(weights) ? weights : weights.toAbsolutePath().getParent();
        if (dir == null) return null;
        boolean has = Files.isRegularFile(dir.resolve("tokenizer.json"))
                || (Files.isRegularFile(dir.resolve("vocab.json")) && Files.isRegularFile(dir.resolve("merges.txt")));
        return has ? dir : null;
    }

    public Backend backend() {
        return backend;
    }

    public DType dtype() {
        return dtype;
    }

    public Configs configs() {
        return configs;
    }

    public ClipVisionEncoder vision() {
        return vision;
    }

    public ClipTextEncoder text() {
        return text;
    }

    public String describe() {
        return description;
    }

    /** text_embeds [B, projection] of token ids [B][L] (as the tokenizer pads them): the pooled output times text_projection. */
    public Tensor textEmbeds(int[][] ids) {
        int[] pooled = new int[ids.length];
        for (int b = 0; b < ids.length; b++) pooled[b] = ClipTokenizer.pooledIndex(ids[b]);
        try (ClipTextEncoder.Output o = text.forward(ids, pooled)) {
            Tensor e = backend.empty(dtype, ids.length, configs.projection());
            try {
                backend.linear(e, o.pooled(), textProjection, null, 0);
            } catch (RuntimeException ex) {
                e.close();
                throw ex;
            }
            return e;
        }
    }

    /** The prompts' text embeddings, one row each (prompts longer than 77 tokens are cut, as CLIP's tokenizer cuts them). */
    public float[][] embedTexts(List<String> prompts) {
        int[][] ids = new int[prompts.size()][];
        for (int i = 0; i < ids.length; i++) {
            TokenEncoding te = tokenizer.encode(prompts.get(i), configs.text().maxPositions());
            ids[i] = te.ids();
        }
        try (Tensor e = textEmbeds(ids)) {
            return rows(backend.toFloats(e), ids.length);
        }
    }

    /** image_embeds of {@code batch} preprocessed pictures [B, 3, S, S], one row each. */
    public float[][] embedPixels(float[] pixels, int batch) {
        try (ClipVisionEncoder.Output o = vision.forward(pixels, batch)) {
            return rows(backend.toFloats(o.embeds()), batch);
        }
    }

    private static float[][] rows(float[] flat, int n) {
        int d = flat.length / n;
        float[][] out = new float[n][];
        for (int i = 0; i < n; i++) out[i] = java.util.Arrays.copyOfRange(flat, i * d, (i + 1) * d);
        return out;
    }

    @Override
    public void close() {
        Closeables.closeQuietly(vision, textProjection, text);
    }
}
