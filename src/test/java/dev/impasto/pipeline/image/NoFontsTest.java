package dev.impasto.pipeline.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.image.LatentImages;
import dev.impasto.image.Png;
import dev.impasto.train.LossPlot;
import java.awt.image.BufferedImage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On a machine without fonts (the GPU server: no fontconfig fonts, so the JDK throws "Fontconfig head is null" on the
 * first text it measures) every chart, the loss plot and the picture grids are still written, without text. A child
 * JVM with -Dsun.awt.fontconfig pointing nowhere fails exactly that way.
 */
class NoFontsTest {
    /** Runs in the child JVM: writes every kind of picture with text into args[0]. */
    public static final class Render {
        public static void main(String[] args) throws Exception {
            Path dir = Path.of(args[0]);
            Map<String, double[]> series = new LinkedHashMap<>();
            series.put("training", new double[] {1, 2, 2, 3, 3, 3, 4});
            series.put("LoRA", new double[] {2, 3, 3, 4, 5});
            Charts.histogram(dir.resolve("hist.png"), "title", "x", series, 10, true);
            Charts.bars(dir.resolve("bars.png"), "title", "axis", Map.of("a", 0.4, "b", 0.9));
            Charts.line(dir.resolve("line.png"), "title", "x", "y", Map.of("loss", new double[][] {{0, 1, 2, 3}, {1e6, 3e5, 2e5, 1e5}}));
            StringBuilder m = new StringBuilder();
            for (int s = 1; s <= 50; s++) m.append("{\"step\":").append(s).append(",\"loss\":").append(0.5 / s).append(",\"loss_ema\":").append(0.6 / s).append("}\n");
            Files.writeString(dir.resolve("metrics.jsonl"), m);
            LossPlot.write(dir.resolve("metrics.jsonl"), dir.resolve("loss.png"), "title");
            BufferedImage cell = new BufferedImage(16, 16, BufferedImage.TYPE_INT_RGB);
            for (int i = 0; i < 16; i++) cell.setRGB(i, i, 0xff0000);
            Png.write(LatentImages.grid(List.of(List.of(cell, cell)), List.of("row"), List.of("a", "b"), "title"), dir.resolve("grid.png"), Map.of());
            ContactSheet sheet = new ContactSheet("title", 4, 2, 64);
            sheet.add(cell, "label");
            sheet.add(cell, "label");
            sheet.write(dir.resolve("sheet.png"));
            System.out.println("rendered; fonts available: " + Charts.fontsAvailable());
        }
    }

    @Test
    void everyReportPictureIsWrittenWithoutFonts(@TempDir Path dir) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Djava.awt.headless=true",
                "-Dsun.awt.fontconfig=" + dir.resolve("no-such-fontconfig.properties"), "-cp", System.getProperty("java.class.path"),
                Render.class.getName(), dir.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        assertTrue(out.contains("rendered; fonts available: false"), "the child JVM must really have no fonts: " + out);
        assertTrue(out.contains("no fonts on this machine") && out.contains("apt install fontconfig"), "one warning says what to install: " + out);
        for (String f : List.of("hist.png", "bars.png", "line.png", "loss.png", "grid.png", "sheet.png")) {
            BufferedImage im = ImageIO.read(dir.resolve(f).toFile());
            assertTrue(im != null && im.getWidth() > 16 && im.getHeight() > 16, f);
            int first = im.getRGB(0, 0), differing = 0;
            for (int y = 0; y < im.getHeight(); y += 2) for (int x = 0; x < im.getWidth(); x += 2) if (im.getRGB(x, y) != first) differing++;
            assertTrue(differing > 20, f + " has its shapes drawn (" + differing + " sampled pixels differ from the corner)");
        }
    }
}
