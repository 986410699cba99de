package dev.impasto.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.image.Png;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** `impasto sample` from a prompt to a decoded PNG on the CPU: tiny FLUX, tiny random T5/CLIP/VAE. */
class SampleCommandTest {
    int run(StringWriter err, ByteArrayOutputStream out, String... args) {
        CommandLine cl = new CommandLine(new SampleCommand(new PrintStream(out, true, StandardCharsets.UTF_8)));
        cl.setErr(new PrintWriter(err));
        return cl.execute(args);
    }

    @Test
    void aPromptBecomesAPictureThroughTheCommandLine(@TempDir Path tmp) throws Exception {
        StringWriter err = new StringWriter();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Path dir = tmp.resolve("pics");
        int code = run(err, out, "--model", "flux-tiny", "--encoders", "tiny-random", "--prompt", "a lighthouse in a storm", "--device", "cpu",
                "--width", "64", "--height", "48", "--steps", "2", "--seed", "7", "--out", dir.toString());
        assertEquals(0, code, err.toString());
        Path png = dir.resolve("seed-7.png");
        assertTrue(out.toString(StandardCharsets.UTF_8).contains(png.toString()), out.toString(StandardCharsets.UTF_8));
        BufferedImage img = ImageIO.read(png.toFile());
        assertTrue(img.getWidth() > 0 && img.getHeight() > 0);
        assertEquals(64.0 / 48.0, (double) img.getWidth() / img.getHeight(), 1e-9, "the picture keeps the requested aspect");
        Map<String, String> text = Png.readText(png);
        assertEquals("a lighthouse in a storm", text.get("prompt"));
        assertEquals("7", text.get("seed"));
        assertTrue(Files.isRegularFile(dir.resolve("seed-7.latent.safetensors")));
    }

    @Test
    void tinyEncodersWithAFullSizeModelAreAClearError(@TempDir Path tmp) {
        StringWriter err = new StringWriter();
        int code = run(err, new ByteArrayOutputStream(), "--model", "flux-dev", "--encoders", "tiny-random", "--prompt", "x", "--device", "cpu",
                "--width", "32", "--height", "32", "--steps", "1", "--out", tmp.toString());
        assertEquals(1, code);
        assertTrue(err.toString().contains("use --model flux-tiny with --encoders tiny-random"), err.toString());
    }
}
