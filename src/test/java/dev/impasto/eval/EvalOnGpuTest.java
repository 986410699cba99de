package dev.impasto.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.api.TinyLora;
import dev.impasto.cuda.Cuda;
import dev.impasto.eval.cli.EvalCommand;
import java.awt.image.BufferedImage;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * impasto eval on the GPU with the tiny random FLUX (every real code path) and a tiny random CLIP: the generator and
 * the CLIP model each open a CUDA backend on the same device, as eval does with real weights.
 */
@Tag("gpu")
class EvalOnGpuTest {
    @Test
    void clipScoreAndClipKidWithFluxAndClipOnTheGpu(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        Path lora = TinyLora.write(dir.resolve("tiny.safetensors"));
        Path train = Files.createDirectories(dir.resolve("train"));
        Random r = new Random(5);
        for (int i = 0; i < 4; i++) {
            BufferedImage im = new BufferedImage(64, 64, BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) im.setRGB(x, y, r.nextInt(1 << 24));
            ImageIO.write(im, "png", train.resolve("p" + i + ".png").toFile());
        }
        Path out = dir.resolve("eval");
        StringWriter so = new StringWriter(), se = new StringWriter();
        CommandLine cl = new CommandLine(new EvalCommand());
        cl.setOut(new PrintWriter(so, true));
        cl.setErr(new PrintWriter(se, true));
        int rc = cl.execute("--lora", lora.toString(), "--model", "tiny-random", "--device", "cuda", "--clip", "tiny-random", "--features", "clip",
                "--train-images", train.toString(), "--prompt", "a red barn in snow", "--prompt", "a harbour at dusk", "--transfer-prompt", "a robot",
                "--seeds", "1,2", "--steps", "4", "--size", "64", "--no-images", "--out", out.toString());
        assertEquals(0, rc, so + "\n" + se);
        JsonNode j = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        assertEquals(j.path("clipModel").asText(), j.path("kidFeatures").asText(), "KID on the CLIP embeddings");
        EvalResult e = EvalResult.readJson(out.resolve("report.json"));
        for (String set : List.of("base", "tiny")) {
            EvalResult.SetResult s = e.set(set, false);
            assertEquals(4, s.clipScoreSummary().count(), set);
            assertTrue(Double.isFinite(s.clipScore()) && s.clipScore() >= 0 && s.clipScore() <= 2.5, set + ": " + s.clipScore());
            assertTrue(s.kid() != null && Double.isFinite(s.kid().mean()), set + ": " + s.kid());
        }
        double base = e.set("base", false).clipScore(), withLora = e.set("tiny", false).clipScore();
        assertTrue(base != withLora, "the LoRA changes the pictures, so their CLIP scores: " + base);
    }
}
