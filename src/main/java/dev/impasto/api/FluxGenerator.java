package dev.impasto.api;

import dev.impasto.cuda.DeviceThread;
import dev.impasto.encoders.FluxEncoders;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.model.CheckpointWeights;
import dev.impasto.model.FluxConfig;
import dev.impasto.model.FluxModel;
import dev.impasto.model.Latents;
import dev.impasto.model.RandomWeights;
import dev.impasto.model.WeightProvider;
import dev.impasto.quant.BaseFormat;
import dev.impasto.sample.Sampler;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * FLUX as an {@link ImageGenerator}: prompt -> T5 + CLIP -> the transformer (with a LoRA at a strength) sampled on
 * FLUX's schedule -> the VAE decoder -> a picture. Loaded from the files people have (a transformer checkpoint in any
 * layout impasto reads, plus the text encoders, tokenizers and autoencoder: {@link FluxEncoders.Paths}), or random
 * tiny weights for tests and demos without downloads.
 */
public final class FluxGenerator implements ImageGenerator {
    private final Backend be;
    private final FluxModel model;
    private final FluxEncoders encoders;
    private final FluxCheckpoint ckpt;
    private final LoraSwitch loras;
    private final String name;

    private FluxGenerator(Backend be, FluxModel model, FluxEncoders encoders, FluxCheckpoint ckpt, Map<String, Path> loras, String name) {
        this.be = be;
        this.model = model;
        this.encoders = encoders;
        this.ckpt = ckpt;
        this.loras = new LoraSwitch(loras);
        this.name = name;
    }

    /**
     * Real weights: {@code transformer} (BFL file, diffusers folder, bnb-NF4 or GGUF) of architecture {@code config},
     * held as {@code baseFormat}; the encoders and VAE from {@code parts}. The generator owns the backend.
     */
    public static FluxGenerator open(Backend be, FluxConfig config, Path transformer, BaseFormat baseFormat, FluxEncoders.Paths parts,
                                     Map<String, Path> loras) throws IOException {
        try {
            return DeviceThread.call(() -> openHere(be, config, transformer, baseFormat, parts, loras));
        } catch (IllegalStateException e) {
            if (e.getCause() instanceof IOException io) throw io;
            throw e;
        }
    }

    private static FluxGenerator openHere(Backend be, FluxConfig config, Path transformer, BaseFormat baseFormat, FluxEncoders.Paths parts,
                                          Map<String, Path> loras) throws IOException {
        DType dt = be.isGpu() ? DType.BF16 : DType.F32;
        FluxCheckpoint ck = FluxCheckpoint.open(transformer);
        FluxEncoders enc = null;
        try {
            ck.requireComplete();
            enc = FluxEncoders.load(be, dt, FluxEncoders.Configs.flux(config.name().contains("schnell") ? 256 : 512), parts, BaseFormat.BF16);
            WeightProvider wp = new CheckpointWeights(ck, be, dt, baseFormat, false, null);
            return new FluxGenerator(be, FluxModel.build(config, be, dt, wp), enc, ck, loras, config.name() + " (" + transformer.getFileName() + ", " + baseFormat.id() + ")");
        } catch (IOException | RuntimeException e) {
            if (enc != null) enc.close();
            ck.close();
            throw e;
        }
    }

    /** Tiny random FLUX, encoders and VAE (FluxConfig.tiny() and FluxEncoders.Configs.tiny()): noise pictures, real code paths. */
    public static FluxGenerator tinyRandom(Backend be, long seed, Map<String, Path> loras) {
        return DeviceThread.call(() -> tinyRandomHere(be, seed, loras));
    }

    private static FluxGenerator tinyRandomHere(Backend be, long seed, Map<String, Path> loras) {
        DType dt = be.isGpu() ? DType.BF16 : DType.F32;
        FluxEncoders enc = FluxEncoders.random(be, dt, FluxEncoders.Configs.tiny(), seed);
        FluxModel m = FluxModel.build(FluxConfig.tiny(), be, dt, new RandomWeights(be, dt, seed, 1.0));
        return new FluxGenerator(be, m, enc, null, loras, "flux-tiny (random weights)");
    }

    public FluxModel model() {
        return model;
    }

    /** Callable from any thread: from a virtual thread the work runs on impasto's device thread ({@link DeviceThread}). */
    @Override
    public synchronized Result generate(Request r, IntConsumer onStep) {
        return DeviceThread.call(() -> generateHere(r, onStep));
    }

    private Result generateHere(Request r, IntConsumer onStep) {
        long t0 = System.nanoTime();
        loras.select(model, r.lora());
        int f = encoders.latentFactor();
        if (r.width() % (2 * f) != 0 || r.height() % (2 * f) != 0)
            throw new IllegalArgumentException("width and height must be multiples of " + 2 * f + " for this model, got " + r.width() + "x" + r.height());
        int lh = r.height() / f, lw = r.width() / f, ch = model.config.inChannels() / 4;
        double strength = r.lora() == null ? 0 : r.loraScale();
        float[] chw;
        BufferedImage img;
        try (FluxEncoders.Prompt p = encoders.encodePrompt(r.prompt());
             Tensor out = Sampler.sample(model, p.t5(), p.pooled(), lh, lw,
                     new Sampler.Settings(r.steps(), r.guidance(), r.seed(), !model.config.name().contains("schnell"), strength), onStep)) {
            chw = Latents.unpack(be.toFloats(out), ch, lh, lw);
        }
        img = encoders.decode(chw, lh, lw);
        Map<String, String> settings = r.settings(name);
        return new Result(img, chw, ch, lh, lw, settings, (System.nanoTime() - t0) / 1_000_000);
    }

    @Override
    public List<String> loras() {
        return loras.names();
    }

    @Override
    public Info info() {
        boolean schnell = model.config.name().contains("schnell");
        return new Info(name, be.name(), List.of("an impressionist landscape with poplars by a river", "a portrait of a woman in a garden, soft light"),
                schnell ? 4 : 28, schnell ? 0 : 3.5, 1024);
    }

    @Override
    public synchronized void close() {
        DeviceThread.call(() -> {
            closeHere();
            return null;
        });
    }

    private void closeHere() {
        loras.detach(model);
        model.close();
        encoders.close();
        if (ckpt != null) ckpt.close();
        be.close();
    }
}
