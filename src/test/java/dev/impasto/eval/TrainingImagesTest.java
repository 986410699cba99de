package dev.impasto.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.train.ToyWorld;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainingImagesTest {

    @Test
    void curatedFolderWithMetadata(@TempDir Path dir) throws Exception {
        Path train = Files.createDirectories(dir.resolve("train"));
        ImageIO.write(MetricsTest.solid(1024, 768, 0x336699), "jpg", train.resolve("landscape_00001.jpg").toFile());
        ImageIO.write(MetricsTest.solid(300, 200, 0x993366), "png", train.resolve("portrait_00001.png").toFile());
        Files.write(train.resolve("broken.jpg"), new byte[] {(byte) 0xFF, (byte) 0xD8, 1, 2, 3});
        Files.writeString(train.resolve("metadata.jsonl"), """
                {"file_name": "landscape_00001.jpg", "text": "a harbour at dusk", "genre": "landscape"}
                {"file_name": "portrait_00001.png", "text": "a woman in a hat", "genre": "portrait"}

                {"file_name": "broken.jpg", "text": "x", "genre": "portrait"}
                """);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        TrainingImages t = TrainingImages.folder(dir, 10, 1, new PrintStream(log, true));
        assertEquals(2, t.items().size());
        assertEquals(1, t.skipped());
        assertTrue(log.toString().contains("skipping training picture") && log.toString().contains("broken.jpg"), log.toString());
        assertEquals("a harbour at dusk", t.items().getFirst().caption());
        assertEquals(Path.of("train", "landscape_00001.jpg").toString(), t.items().getFirst().source());
        // large paintings are held at the largest analysis size (shorter side 512), aspect kept
        assertEquals(512, t.items().getFirst().image().getHeight());
        assertEquals(683, t.items().getFirst().image().getWidth());
        assertEquals(300, t.items().get(1).image().getWidth());
        assertEquals("{landscape=1, portrait=1}", t.genres().toString());
        assertTrue(t.description().contains("2 of 3 pictures, 1 unreadable"), t.description());
        // a seeded subsample: unreadable files do not shrink it
        ImageIO.write(MetricsTest.solid(64, 64, 0x202020), "png", train.resolve("still_life_00001.png").toFile());
        Files.writeString(train.resolve("metadata.jsonl"), "{\"file_name\": \"still_life_00001.png\", \"genre\": \"still_life\"}\n", java.nio.file.StandardOpenOption.APPEND);
        for (long seed = 1; seed <= 5; seed++) {
            TrainingImages two = TrainingImages.folder(dir, 2, seed, new PrintStream(log, true));
            assertEquals(2, two.items().size());
            assertEquals(two.items().stream().map(TrainingImages.Item::source).toList(),
                    TrainingImages.folder(dir, 2, seed, new PrintStream(log, true)).items().stream().map(TrainingImages.Item::source).toList());
        }
    }

    @Test
    void refusesPathsOutsideTheDatasetAndEmptyFolders(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("metadata.jsonl"), "{\"file_name\": \"../../etc/passwd\"}\n");
        var e = assertThrows(IllegalArgumentException.class, () -> TrainingImages.folder(dir, 10, 1, System.err));
        assertTrue(e.getMessage().contains("leaves the dataset folder"), e.getMessage());
        Files.writeString(dir.resolve("metadata.jsonl"), "{\"text\": \"no file\"}\n");
        e = assertThrows(IllegalArgumentException.class, () -> TrainingImages.folder(dir, 10, 1, System.err));
        assertTrue(e.getMessage().contains("line 1: missing file_name"), e.getMessage());
        Path empty = Files.createDirectories(dir.resolve("empty"));
        e = assertThrows(IllegalArgumentException.class, () -> TrainingImages.folder(empty, 10, 1, System.err));
        assertTrue(e.getMessage().contains("no pictures found"), e.getMessage());
        // a bare folder of pictures works too
        Path bare = Files.createDirectories(dir.resolve("bare"));
        for (int i = 0; i < 3; i++) ImageIO.write(MetricsTest.solid(64, 64, 0x101010 * (i + 1)), "png", bare.resolve("p" + i + ".png").toFile());
        assertEquals(3, TrainingImages.folder(bare, 10, 1, System.err).items().size());
    }

    @Test
    void toyPicturesAreUpscaledLikeTheToyGenerator() {
        TrainingImages t = TrainingImages.toy(ToyWorld.Style.B, 8, 128, 64);
        assertEquals(8, t.items().size());
        assertEquals(128, t.items().getFirst().image().getWidth());
        assertEquals(64, t.items().getFirst().image().getHeight());
        assertEquals("a disc", t.items().getFirst().caption());
        assertEquals("{disc=2, ring=2, square=2, stripes=2}", t.genres().toString());
        // nearest neighbour: each latent pixel is an 8x4 block of one colour
        var img = t.items().getFirst().image();
        assertEquals(img.getRGB(0, 0), img.getRGB(7, 3));
    }
}
