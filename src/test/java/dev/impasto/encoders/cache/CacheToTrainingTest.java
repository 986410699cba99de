package dev.impasto.encoders.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.encoders.FluxEncoders;
import dev.impasto.image.Png;
import dev.impasto.model.FluxConfig;
import dev.impasto.model.FluxModel;
import dev.impasto.model.Latents;
import dev.impasto.model.RandomWeights;
import dev.impasto.sample.Sampler;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import dev.impasto.train.LatentCache;
import dev.impasto.train.TrainConfig;
import dev.impasto.train.Trainer;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The two ends of the pipeline with the tiny encoders on the CPU: a folder of pictures -> `impasto cache` -> the
 * trainer trains a LoRA on a tiny FLUX whose dimensions match the encoders (flux-tiny); and a prompt -> sampler ->
 * VAE decode -> PNG carrying the prompt, seed and settings.
 */
class CacheToTrainingTest {
    @Test
    void theTrainerTrainsOnACacheMadeByImpastoCache(@TempDir Path tmp) throws Exception {
        Path data = CacheCommandTest.dataset(tmp.resolve("data")), cache = tmp.resolve("cache");
        CacheCommandTest.run("--data", data.toString(), "--out", cache.toString(), "--model", "tiny", "--device", "cpu", "--resolution", "16");
        TrainConfig cfg = TrainConfig.defaults();
        cfg.name = "cache-lora";
        cfg.output = tmp.resolve("runs").toString();
        cfg.device = "cpu";
        cfg.model.preset = "flux-tiny";
        cfg.data.cache = cache.toString();
        cfg.training.steps = 3;
        cfg.training.batchSize = 1;
        cfg.checkpoint.every = 0;
        cfg.sample.every = 0;
        cfg.sample.items = List.of(0);
        cfg.sample.seeds = List.of(1L);
        cfg.sample.steps = 2;
        CpuBackend be = new CpuBackend();
        java.io.ByteArrayOutputStream log = new java.io.ByteArrayOutputStream();
        try (LatentCache set = LatentCache.open(cache);
             FluxModel model = FluxModel.build(FluxConfig.tiny(), be, DType.F32, new RandomWeights(be, DType.F32, 1, 1.0))) {
            assertEquals("tiny-random:0", set.manifest().vaeWeights, "the cache names the autoencoder its latents came from");
            Trainer.Result r = new Trainer(cfg, be, model, set, new java.io.PrintStream(log, true)).run(false);
            assertEquals(3, r.steps());
            assertTrue(Double.isFinite(r.lastLossEma()) && r.lastLossEma() > 0);
            assertTrue(Files.size(r.lora()) > 0);
            // the sample grid is decoded through that autoencoder, not a latent preview
            assertTrue(log.toString().contains("samples are decoded with the tiny random autoencoder"), log.toString());
            try (var pngs = Files.list(r.runDir().resolve("samples"))) {
                assertTrue(pngs.anyMatch(f -> f.toString().endsWith(".png")), "a sample grid is written");
            }
        }
    }

    /** `impasto train --data.cache DIR` without --model.preset trains the architecture the cache was made for. */
    @Test
    void theTrainCommandPicksThePresetOfTheCache(@TempDir Path tmp) throws Exception {
        Path data = CacheCommandTest.dataset(tmp.resolve("data")), cache = tmp.resolve("cache");
        CacheCommandTest.run("--data", data.toString(), "--out", cache.toString(), "--model", "tiny", "--device", "cpu", "--resolution", "16");
        java.io.StringWriter err = new java.io.StringWriter();
        picocli.CommandLine cl = dev.impasto.cli.TrainCommand.commandLine(System.out);
        cl.setErr(new java.io.PrintWriter(err));
        int code = cl.execute("--data.cache", cache.toString(), "--device", "cpu", "--output", tmp.resolve("runs").toString(), "--name", "c",
                "--training.steps", "2", "--checkpoint.every", "0", "--sample.every", "0");
        assertEquals(0, code, err.toString());
        try (var files = Files.walk(tmp.resolve("runs/c"))) {
            assertTrue(files.anyMatch(f -> f.getFileName().toString().endsWith(".safetensors")), "a LoRA file is written");
        }
        try (LatentCache set = LatentCache.open(cache)) {
            TrainConfig cfg = TrainConfig.defaults();
            cfg.data.cache = cache.toString();
            assertEquals("flux-tiny", dev.impasto.cli.TrainCommand.architecture(cfg, set, false).name());
            cfg.model.preset = "flux-dev";
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> dev.impasto.cli.TrainCommand.architecture(cfg, set, false));
            assertTrue(e.getMessage().contains("--model.preset flux-dev takes text embeddings of width 4096"), e.getMessage());
        }
    }

    @Test
    void aPromptBecomesAPngWithItsSettingsInTextChunks(@TempDir Path tmp) throws Exception {
        CpuBackend be = new CpuBackend();
        try (FluxEncoders enc = FluxEncoders.random(be, DType.F32, FluxEncoders.Configs.tiny(), 2);
             FluxModel model = FluxModel.build(FluxConfig.tiny(), be, DType.F32, new RandomWeights(be, DType.F32, 1, 1.0));
             FluxEncoders.Prompt p = enc.encodePrompt("a lighthouse in a storm")) {
            int lh = 8, lw = 12;
            Sampler.Settings s = new Sampler.Settings(2, 3.5, 42, true, 1.0);
            BufferedImage img;
            try (Tensor tokens = Sampler.sample(model, p.t5(), p.pooled(), lh, lw, s, null)) {
                float[] zhw = Latents.unpack(be.toFloats(tokens), 16, lh, lw);
                img = enc.decode(zhw, lh, lw);
            }
            assertEquals(lw * enc.latentFactor(), img.getWidth());
            assertEquals(lh * enc.latentFactor(), img.getHeight());
            Path png = tmp.resolve("out/sample.png");
            Png.write(img, png, Map.of("prompt", "a lighthouse in a storm", "seed", "42", "steps", "2", "guidance", "3.5"));
            Map<String, String> text = Png.readText(png);
            assertEquals("a lighthouse in a storm", text.get("prompt"));
            assertEquals("42", text.get("seed"));
            BufferedImage back = ImageIO.read(png.toFile());
            assertEquals(img.getRGB(3, 5), back.getRGB(3, 5));
        }
    }
}
