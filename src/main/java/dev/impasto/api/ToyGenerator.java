package dev.impasto.api;

import dev.impasto.image.LatentImages;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.model.CheckpointWeights;
import dev.impasto.model.FluxModel;
import dev.impasto.model.Latents;
import dev.impasto.quant.BaseFormat;
import dev.impasto.sample.Sampler;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import dev.impasto.train.ToyBase;
import dev.impasto.train.ToyWorld;
import java.awt.Image;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * The toy world as an {@link ImageGenerator}: the pretrained toy base (built on first use) plus any LoRA files, on
 * the CPU. Prompts are the class names ("disc", "a square", ...). A latent pixel stands for 8x8 image pixels, as with
 * FLUX's VAE, so a 128x128 request samples a 16x16 latent; "decoding" is a nearest-neighbour upscale.
 */
public final class ToyGenerator implements ImageGenerator {
    private final Backend be = new CpuBackend();
    private final FluxCheckpoint ckpt;
    private final FluxModel model;
    private final ToyWorld world = new ToyWorld(ToyWorld.Style.A, 1, 11);
    private final LoraSwitch loras;

    /** baseFolder: where the toy base lives (built there if missing); loras: name -> LoRA file. */
    public ToyGenerator(Path baseFolder, Map<String, Path> loras, PrintStream log) throws IOException {
        Path base = ToyBase.ensure(baseFolder, log);
        ckpt = FluxCheckpoint.open(base);
        model = FluxModel.build(ToyWorld.config(), be, DType.F32, new CheckpointWeights(ckpt, be, DType.F32, BaseFormat.F32, false, null));
        this.loras = new LoraSwitch(loras);
    }

    public static int classOf(String prompt) {
        String p = prompt.toLowerCase(Locale.ROOT).trim();
        for (int c = 0; c < ToyWorld.CLASSES.length; c++) if (p.contains(ToyWorld.CLASSES[c])) return c;
        throw new IllegalArgumentException("the toy model knows only these prompts: " + String.join(", ", ToyWorld.CLASSES) + " (got \"" + prompt + "\")");
    }

    @Override
    public synchronized Result generate(Request r, IntConsumer onStep) {
        long t0 = System.nanoTime();
        int cls = classOf(r.prompt());
        this.loras.select(model, r.lora());
        int lh = r.height() / 8, lw = r.width() / 8;
        var prompt = world.prompt(cls);
        double scale = r.lora() == null ? 0 : r.loraScale();
        float[] lat;
        try (Tensor txt = be.fromFloats(prompt.text(), DType.F32, 1, prompt.textLen(), ToyWorld.TEXT_DIM);
             Tensor y = be.fromFloats(prompt.pooled(), DType.F32, 1, ToyWorld.POOLED_DIM);
             Tensor out = Sampler.sample(model, txt, y, lh, lw, new Sampler.Settings(r.steps(), r.guidance(), r.seed(), true, scale), onStep)) {
            lat = Latents.unpack(be.toFloats(out), ToyWorld.CHANNELS, lh, lw);
        }
        BufferedImage small = LatentImages.fromLatent(lat, ToyWorld.CHANNELS, lh, lw, 1);
        BufferedImage img = new BufferedImage(r.width(), r.height(), BufferedImage.TYPE_INT_RGB);
        var g = img.createGraphics();
        g.drawImage(small.getScaledInstance(r.width(), r.height(), Image.SCALE_FAST), 0, 0, null);
        g.dispose();
        Map<String, String> settings = r.settings("flux-toy");
        return new Result(img, lat, ToyWorld.CHANNELS, lh, lw, settings, (System.nanoTime() - t0) / 1_000_000);
    }

    @Override
    public List<String> loras() {
        return loras.names();
    }

    @Override
    public Info info() {
        return new Info("flux-toy (16x16 latents; prompts: " + String.join(", ", ToyWorld.CLASSES) + ")", be.name(),
                List.of(ToyWorld.CLASSES), 20, 1.0, 128);
    }

    @Override
    public synchronized void close() {
        loras.detach(model);
        model.close();
        ckpt.close();
    }
}
