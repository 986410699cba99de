package dev.impasto.encoders.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.encoders.FluxEncoders;
import dev.impasto.encoders.cli.CacheCommand;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import dev.impasto.train.LatentCache;
import dev.impasto.train.TrainingSet;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** `impasto cache` end to end on the CPU with the tiny encoders: buckets, flips, resume, a simulated crash, bad input. */
class CacheCommandTest {

    /** An imagefolder: train/ + metadata.jsonl (as curate/caption write it) with pictures of several shapes, one broken. */
    static Path dataset(Path dir) throws Exception {
        Path train = Files.createDirectories(dir.resolve("train"));
        int[][] sizes = {{48, 32}, {32, 48}, {40, 40}, {64, 24}};
        StringBuilder meta = new StringBuilder();
        for (int i = 0; i < sizes.length; i++) {
            BufferedImage img = new BufferedImage(sizes[i][0], sizes[i][1], BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < img.getHeight(); y++)
                for (int x = 0; x < img.getWidth(); x++) img.setRGB(x, y, ((x * 5 + i * 40) & 0xff) << 16 | ((y * 7) & 0xff) << 8 | (i * 60));
            ImageIO.write(img, "png", train.resolve("p" + i + ".png").toFile());
            meta.append("{\"file_name\": \"p").append(i).append(".png\", \"text\": \"a painting number ").append(i).append("\"}\n");
        }
        Files.write(train.resolve("broken.jpg"), new byte[] {(byte) 0xFF, (byte) 0xD8, 1, 2, 3});
        meta.append("{\"file_name\": \"broken.jpg\", \"text\": \"never cached\"}\n");
        Files.writeString(train.resolve("metadata.jsonl"), meta, StandardCharsets.UTF_8);
        return dir;
    }

    static String run(String... args) {
        String[] r = runRc(args);
        assertEquals("0", r[0], r[1]);
        return r[1];
    }

    /** {exit code, stdout + error message} */
    static String[] runRc(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(out, true, StandardCharsets.UTF_8);
        CommandLine cl = new CommandLine(new CacheCommand(ps));
        cl.setErr(new java.io.PrintWriter(ps, true));
        cl.setExecutionExceptionHandler((ex, line, parse) -> {
            line.getErr().println(ex.getMessage());
            return 1;
        });
        int rc = cl.execute(args);
        return new String[] {Integer.toString(rc), out.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void cachesBucketsFlipsAndResumes(@TempDir Path tmp) throws Exception {
        Path data = dataset(tmp.resolve("data")), cache = tmp.resolve("cache");
        String[] args = {"--data", data.toString(), "--out", cache.toString(), "--model", "tiny", "--device", "cpu", "--flip", "--crop-jitter", "0.5"};
        String first = run(args);
        assertTrue(first.contains("cached 5 pictures as 8 items") && first.contains("4 encoded, 0 already there, 1 unreadable"), first);
        try (LatentCache c = LatentCache.open(cache)) {
            assertEquals(8, c.size());
            assertEquals(16, c.latentChannels());
            assertEquals(32, c.textDim());
            assertEquals(16, c.pooledDim());
            // 48x32 -> bucket 40x24 (aspect 1.67 vs 1.5 is the nearest of the 32^2-area buckets with 4-pixel steps)
            assertEquals(12, c.item(0).height());
            assertEquals(20, c.item(0).width());
            TrainingSet.Item a = c.item(0), af = c.item(1);
            assertEquals("a painting number 0", a.caption());
            assertEquals(a.height(), af.height());
            assertEquals(16 * a.height() * a.width(), a.latent().length);
            assertNotEquals(a.latent()[0], af.latent()[0], "the flipped item has its own latent");
            assertArrayEquals(a.text(), af.text(), "both variants share the caption's embeddings");
            assertEquals(32 * 32, a.text().length);
            assertTrue(c.item(2).height() > c.item(2).width(), "a portrait picture gets a portrait bucket");
            assertEquals(20, c.item(6).width(), "a 64x24 picture gets the widest bucket, 40x24 (44x20 is wider than 2:1)");
            for (int i = 0; i < c.size(); i++) {
                assertTrue(c.item(i).height() % 2 == 0 && c.item(i).width() % 2 == 0);
                for (float v : c.item(i).latent()) assertTrue(Float.isFinite(v));
            }
            assertEquals(32 * 32, c.emptyPrompt().text().length);
        }
        String again = run(args);
        assertTrue(again.contains("0 encoded, 4 already there"), again);

        // other settings into the same folder are refused, naming the folder
        String[] refused = runRc("--data", data.toString(), "--out", cache.toString(), "--model", "tiny", "--device", "cpu");
        assertEquals("1", refused[0]);
        assertTrue(refused[1].contains(cache + " holds a cache made with other settings"), refused[1]);
        String[] noEncoders = runRc("--data", data.toString(), "--out", tmp.resolve("c2").toString(), "--device", "cpu");
        assertTrue(noEncoders[1].contains("needs all three encoders"), noEncoders[1]);
    }

    @Test
    void aCrashLosesAtMostTheItemInFlight(@TempDir Path tmp) throws Exception {
        Path data = dataset(tmp.resolve("data"));
        CpuBackend be = new CpuBackend();
        CacheBuilder.Settings s = CacheBuilder.Settings.defaults(16);
        float[] reference;
        try (FluxEncoders enc = FluxEncoders.random(be, DType.F32, FluxEncoders.Configs.tiny(), 3)) {
            new CacheBuilder(enc, s, System.err).build(data, tmp.resolve("whole"));
            try (LatentCache c = LatentCache.open(tmp.resolve("whole"))) {
                reference = c.item(3).latent();
            }
            CacheBuilder crashing = new CacheBuilder(enc, s, System.err);
            crashing.afterItem = i -> {
                if (i == 1) throw new IllegalStateException("simulated crash");
            };
            assertThrows(IllegalStateException.class, () -> crashing.build(data, tmp.resolve("resumed")));
            assertTrue(Files.isRegularFile(tmp.resolve("resumed/items/p1.safetensors")), "finished items are on disk");
            CacheBuilder.Summary sum = new CacheBuilder(enc, s, System.err).build(data, tmp.resolve("resumed"));
            assertEquals(2, sum.skipped());
            assertEquals(2, sum.encoded());
            try (LatentCache c = LatentCache.open(tmp.resolve("resumed"))) {
                assertEquals(4, c.size());
                assertArrayEquals(reference, c.item(3).latent());
            }
        }
    }

    @Test
    void bucketsCoverAspectRatiosWithinTheLimit() {
        Buckets b = new Buckets(1024, 16, 2.0, false);
        assertEquals(new Buckets.Size(1024, 1024), b.of(3000, 3000));
        Buckets.Size wide = b.of(1920, 1080), tall = b.of(1080, 1920);
        assertEquals(wide.width(), tall.height());
        assertTrue(Math.abs(wide.width() / (double) wide.height() - 16 / 9.0) < 0.1, wide.toString());
        for (Buckets.Size s : b.sizes()) {
            assertTrue(s.width() % 16 == 0 && s.height() % 16 == 0);
            assertTrue((long) s.width() * s.height() <= 1024L * 1024 && (long) s.width() * s.height() > 0.9 * 1024 * 1024, s.toString());
        }
        Buckets.Size small = new Buckets(1024, 16, 2.0, true).of(500, 300);
        assertTrue(small.width() <= 500 && small.height() <= 300, small.toString());
    }

    @Test
    void captionsComeFromMetadataOrSidecarFiles(@TempDir Path tmp) throws Exception {
        Files.createDirectories(tmp.resolve("sub"));
        ImageIO.write(new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB), "png", tmp.resolve("sub/a.png").toFile());
        Files.writeString(tmp.resolve("sub/a.txt"), "  a red barn \n");
        ImageIO.write(new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB), "png", tmp.resolve("b.png").toFile());
        List<DataItem> items = ImageFolderData.read(tmp, "text");
        assertEquals(List.of("b.png", "sub/a.png"), items.stream().map(DataItem::name).toList());
        assertEquals("a red barn", items.get(1).caption());
        assertEquals("", items.get(0).caption());
        Files.writeString(tmp.resolve("metadata.jsonl"), "{\"file_name\": \"../x.png\"}\n");
        assertTrue(assertThrows(java.io.IOException.class, () -> ImageFolderData.read(tmp, "text")).getMessage().contains("leaves the dataset folder"));
    }
}
