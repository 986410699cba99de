package dev.impasto.encoders;

import dev.impasto.encoders.tokenizer.ClipTokenizer;
import dev.impasto.encoders.tokenizer.T5Tokenizer;
import dev.impasto.encoders.tokenizer.TokenEncoding;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.util.Closeables;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What FLUX needs around its transformer: prompts to (T5 token embeddings, CLIP pooled vector), pictures to latents
 * and latents back to pictures. Each part is optional (a sampler needs no image encoder weights beyond the VAE; the
 * cache builder needs everything); asking for a missing part is an error that says which file to give.
 *
 * <p>Built from the files people have ({@link #load}: a diffusers FLUX folder or single files such as
 * t5xxl_fp16.safetensors, clip_l.safetensors, ae.safetensors) or from random weights ({@link #random}: the tiny
 * configurations for tests and the CPU demo, or full size for benchmarks).
 */
public final class FluxEncoders implements AutoCloseable {
    /** Architectures of the three models. */
    public record Configs(T5Config t5, ClipConfig clip, AutoEncoderConfig vae) {
        /** FLUX.1's encoders; T5 prompts padded to {@code t5MaxLength} (512 dev, 256 schnell). */
        public static Configs flux(int t5MaxLength) {
            return new Configs(T5Config.xxl(t5MaxLength), ClipConfig.large(), AutoEncoderConfig.flux());
        }

        /** Miniatures that fit FluxConfig.tiny() (context 32, pooled 16, 16 latent channels = 64 packed). */
        public static Configs tiny() {
            return new Configs(T5Config.tiny(), ClipConfig.tiny(), AutoEncoderConfig.tiny());
        }
    }

    /**
     * Where the weights and tokenizers are; any may be null (that part is not loaded).
     * @param t5 T5 encoder weights: a safetensors file or a folder (diffusers text_encoder_2/ with its index)
     * @param t5Tokenizer tokenizer.json / spiece.model or their folder (tokenizer_2/)
     * @param clip CLIP text encoder weights (clip_l.safetensors or text_encoder/)
     * @param clipTokenizer tokenizer.json, vocab.json + merges.txt, or their folder (tokenizer/)
     * @param vae autoencoder weights (ae.safetensors or vae/)
     */
    public record Paths(Path t5, Path t5Tokenizer, Path clip, Path clipTokenizer, Path vae) {
        /** The parts of a FLUX.1 diffusers folder (as black-forest-labs/FLUX.1-dev ships it); ae.safetensors beside is preferred. */
        public static Paths fluxFolder(Path root) {
            Path ae = root.resolve("ae.safetensors");
            return new Paths(root.resolve("text_encoder_2"), root.resolve("tokenizer_2"), root.resolve("text_encoder"), root.resolve("tokenizer"),
                    Files.isRegularFile(ae) ? ae : root.resolve("vae"));
        }

        public Paths withT5(Path weights, Path tokenizer) {
            return new Paths(weights, tokenizer, clip, clipTokenizer, vae);
        }

        public Paths withClip(Path weights, Path tokenizer) {
            return new Paths(t5, t5Tokenizer, weights, tokenizer, vae);
        }

        public Paths withVae(Path weights) {
            return new Paths(t5, t5Tokenizer, clip, clipTokenizer, weights);
        }
    }

    /** One prompt's conditioning: T5 tokens [1, L, dModel] and CLIP pooled [1, hidden]; the caller closes it. */
    public record Prompt(Tensor t5, Tensor pooled, boolean truncatedT5, boolean truncatedClip) implements AutoCloseable {
        @Override
        public void close() {
            t5.close();
            pooled.close();
        }
    }

    private final Backend backend;
    private final DType dtype;
    private final Configs configs;
    private final T5Encoder t5;
    private final ClipTextEncoder clip;
    private final AutoEncoder vae;
    private final PromptTokenizer t5Tok, clipTok;
    private final String description;

    private FluxEncoders(Backend be, DType dt, Configs c, T5Encoder t5, PromptTokenizer t5Tok, ClipTextEncoder clip, PromptTokenizer clipTok,
                         AutoEncoder vae, String description) {
        this.backend = be;
        this.dtype = dt;
        this.configs = c;
        this.t5 = t5;
        this.t5Tok = t5Tok;
        this.clip = clip;
        this.clipTok = clipTok;
        this.vae = vae;
        this.description = description;
    }

    /**
     * Random weights for every part, drawn on the backend (deterministic per seed), with the byte tokenizers: the tiny
     * configurations for tests and CPU runs, or {@link Configs#flux} for full-size benchmarks.
     */
    public static FluxEncoders random(Backend be, DType dt, Configs c, long seed) {
        return random(be, dt, c, seed, true, true, true);
    }

    /** {@link #random} with only the chosen parts. */
    public static FluxEncoders random(Backend be, DType dt, Configs c, long seed, boolean withT5, boolean withClip, boolean withVae) {
        RandomEncoderWeights w = new RandomEncoderWeights(seed);
        T5Encoder t = null;
        ClipTextEncoder cl = null;
        AutoEncoder ae = null;
        try {
            if (withT5) t = T5Encoder.load(c.t5(), be, dt, w, BaseFormat.BF16);
            if (withClip) cl = ClipTextEncoder.load(c.clip(), be, dt, w, BaseFormat.BF16);
            if (withVae) ae = AutoEncoder.load(c.vae(), be, dt, w);
        } catch (RuntimeException e) {
            Closeables.closeQuietly(t, cl, ae);
            throw e;
        }
        return new FluxEncoders(be, dt, c, t, ByteTokenizer.t5(), cl, ByteTokenizer.clip(), ae, "random " + c.t5().name() + " / " + c.clip().name() + " / "
                + c.vae().name() + " (seed " + seed + ")");
    }

    /**
     * Loads the parts whose paths are given. {@code t5Format} stores T5's linear layers as bf16 (default), int8 or NF4
     * (the encoder is 4.7 B parameters: 9.5 GB in bf16, 4.8 GB in int8).
     */
    public static FluxEncoders load(Backend be, DType dt, Configs c, Paths p, BaseFormat t5Format) throws IOException {
        T5Encoder t = null;
        ClipTextEncoder cl = null;
        AutoEncoder ae = null;
        PromptTokenizer tt = null, ct = null;
        List<String> parts = new ArrayList<>();
        try {
            if (p.t5() != null) {
                tt = t5Tokenizer(p.t5Tokenizer(), p.t5());
                try (FileEncoderWeights w = FileEncoderWeights.open(p.t5(), "T5 encoder", EncoderKeys.T5_ANCHOR, EncoderKeys.t5(), "transformers")) {
                    t = T5Encoder.load(c.t5(), be, dt, w, t5Format);
                    parts.add("T5 " + w.describe() + (t5Format.quantized() ? " as " + t5Format.id() : ""));
                }
            }
            if (p.clip() != null) {
                ct = clipTokenizer(p.clipTokenizer(), p.clip());
                try (FileEncoderWeights w = FileEncoderWeights.open(p.clip(), "CLIP text encoder", EncoderKeys.CLIP_ANCHOR, EncoderKeys.clip(), "transformers")) {
                    cl = ClipTextEncoder.load(c.clip(), be, dt, w, BaseFormat.BF16);
                    parts.add("CLIP " + w.describe());
                }
            }
            if (p.vae() != null) {
                try (FileEncoderWeights w = FileEncoderWeights.open(p.vae(), "autoencoder", EncoderKeys.VAE_ANCHOR, EncoderKeys.vae(c.vae().levels()),
                        "BFL or diffusers")) {
                    ae = AutoEncoder.load(c.vae(), be, dt, w);
                    parts.add("VAE " + w.describe());
                }
            }
        } catch (IOException | RuntimeException e) {
            Closeables.closeQuietly(t, cl, ae);
            throw e;
        }
        return new FluxEncoders(be, dt, c, t, tt, cl, ct, ae, String.join(", ", parts));
    }

    private static PromptTokenizer t5Tokenizer(Path tok, Path weights) throws IOException {
        if (tok == null)
            throw new IOException("the T5 encoder " + weights + " needs its tokenizer: pass the tokenizer_2/ folder of FLUX.1 (tokenizer.json or spiece.model)");
        T5Tokenizer t = T5Tokenizer.load(tok);
        return t::encode;
    }

    private static PromptTokenizer clipTokenizer(Path tok, Path weights) throws IOException {
        if (tok == null)
            throw new IOException("the CLIP text encoder " + weights + " needs its tokenizer: pass the tokenizer/ folder of FLUX.1 (tokenizer.json, or vocab.json and merges.txt)");
        ClipTokenizer t = ClipTokenizer.load(tok);
        return t::encode;
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

    public String describe() {
        return description;
    }

    public T5Encoder t5() {
        return require(t5, "T5 encoder", "--t5");
    }

    public ClipTextEncoder clip() {
        return require(clip, "CLIP text encoder", "--clip");
    }

    public AutoEncoder vae() {
        return require(vae, "autoencoder", "--vae");
    }

    public boolean hasT5() {
        return t5 != null;
    }

    public boolean hasClip() {
        return clip != null;
    }

    public boolean hasVae() {
        return vae != null;
    }

    private static <T> T require(T part, String what, String option) {
        if (part == null) throw new IllegalStateException("no " + what + " was loaded: give its weights (" + option + ")");
        return part;
    }

    /** Width of the T5 embeddings this set's T5 configuration gives (4096 for T5-XXL: FLUX's context width). */
    public int textDim() {
        return (int) configs.t5().dModel();
    }

    /** Image pixels per latent pixel (8 for FLUX). */
    public int latentFactor() {
        return configs.vae().downsampling();
    }

    // ------------------------------------------------------------------------------------------------ prompts

    /** T5 tokens [1, L, dModel] and CLIP pooled [1, hidden] of a prompt, as FLUX's conditioner computes them. */
    public Prompt encodePrompt(String text) {
        T5Encoder t = t5();
        ClipTextEncoder c = clip();
        TokenEncoding te = t5Tok.encode(text, t.config.maxLength());
        TokenEncoding ce = clipTok.encode(text, c.config.maxPositions());
        Tensor tokens = t.forward(new int[][] {te.ids()});
        try (ClipTextEncoder.Output o = c.forward(new int[][] {ce.ids()}, new int[] {ClipTokenizer.pooledIndex(ce.ids())})) {
            Tensor pooled = backend.empty(dtype, 1, c.config.hidden());
            backend.copy(pooled, o.pooled());
            return new Prompt(tokens, pooled, te.truncated(), ce.truncated());
        } catch (RuntimeException e) {
            tokens.close();
            throw e;
        }
    }

    // ------------------------------------------------------------------------------------------------ images

    /** Latent [1, z, H / f, W / f] of an RGB picture whose sides are multiples of {@link #latentFactor()}. */
    public Tensor encode(BufferedImage img, boolean flip) {
        int h = img.getHeight(), w = img.getWidth();
        try (Tensor x = backend.fromFloats(ImageTensors.toChw(img, flip), dtype, 1, 3, h, w)) {
            return vae().encode(x);
        }
    }

    public Tensor encode(BufferedImage img) {
        return encode(img, false);
    }

    /**
     * The picture of a latent [1, z, h, w] (or [z, h, w]) in the transformer's scaled space. Decodes in one piece
     * when {@code tile} is 0 or covers the latent, else in overlapping tiles of {@code tile} latent pixels.
     */
    public BufferedImage decode(Tensor latent, int tile) {
        AutoEncoder ae = vae();
        Tensor l = latent.rank() == 3 ? latent.reshape(1, latent.dim(0), latent.dim(1), latent.dim(2)) : latent;
        int h = (int) l.dim(2), w = (int) l.dim(3), f = latentFactor();
        if (tile > 0 && (h > tile || w > tile))
            return ImageTensors.fromChw(ae.decodeTiled(l, tile, Math.max(1, tile / 4)), h * f, w * f);
        try (Tensor img = ae.decode(l)) {
            return ImageTensors.fromChw(backend.toFloats(img), h * f, w * f);
        }
    }

    /** {@link #decode(Tensor, int)} untiled on GPUs with room, in 64-latent-pixel tiles otherwise. */
    public BufferedImage decode(Tensor latent) {
        return decode(latent, autoTile(latent));
    }

    /** Latents from host floats [z, h, w] (a cache entry, a sampler's unpacked result). */
    public BufferedImage decode(float[] zhw, int h, int w) {
        try (Tensor t = backend.fromFloats(zhw, dtype, 1, configs.vae().zChannels(), h, w)) {
            return decode(t);
        }
    }

    /** 0 (no tiling) when the decoder's largest activations fit in a quarter of the free device memory. */
    private int autoTile(Tensor latent) {
        if (!backend.isGpu()) return 0;
        long h = latent.dim(-2), w = latent.dim(-1), f = latentFactor();
        long biggest = (long) configs.vae().ch() * configs.vae().chMult()[0] * h * f * w * f * dtype.byteSize();
        long free;
        try {
            free = dev.impasto.cuda.DeviceAllocator.memInfo()[0];
        } catch (RuntimeException | LinkageError e) {
            return 0;
        }
        return biggest * 8 < free ? 0 : 64;
    }

    @Override
    public void close() {
        Closeables.closeQuietly(t5, clip, vae);
    }
}
