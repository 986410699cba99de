package dev.impasto.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.image.LatentImages;
import dev.impasto.pipeline.image.ImageInspector;
import dev.impasto.train.ToyWorld;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The pictures a LoRA was trained on, the reference its samples are measured against: the toy world's pictures, or
 * a dataset folder (curated {@code train/} + {@code metadata.jsonl}, any folder with {@code metadata.jsonl}, or a bare
 * folder of images). Large sets are subsampled with a fixed seed, so reruns compare against the same pictures.
 */
public record TrainingImages(List<Item> items, String description, TreeMap<String, Integer> genres, int skipped) {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_PIXELS = 80_000_000L;

    /** One picture with its caption (may be empty) and where it came from. */
    public record Item(BufferedImage image, String caption, String source) {}

    /** {@code count} pictures of the toy world in {@code style}, upscaled nearest-neighbour to width x height as the toy generator shows latents. */
    public static TrainingImages toy(ToyWorld.Style style, int count, int width, int height) {
        int perClass = (count + ToyWorld.CLASSES.length - 1) / ToyWorld.CLASSES.length;
        ToyWorld world = new ToyWorld(style, perClass, 11);
        List<Item> items = new ArrayList<>();
        TreeMap<String, Integer> genres = new TreeMap<>();
        for (int i = 0; i < count; i++) {
            var it = world.item(i);
            BufferedImage small = LatentImages.fromLatent(it.latent(), ToyWorld.CHANNELS, ToyWorld.SIZE, ToyWorld.SIZE, 1);
            BufferedImage big = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
            var g = big.createGraphics();
            g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR);
            g.drawImage(small, 0, 0, width, height, null);
            g.dispose();
            items.add(new Item(big, it.caption(), "toy:" + style + "#" + i));
            genres.merge(ToyWorld.CLASSES[ToyWorld.classOf(i)], 1, Integer::sum);
        }
        return new TrainingImages(items, "toy world, style " + style + " (" + count + " pictures)", genres, 0);
    }

    /** Up to {@code max} pictures of a dataset folder; unreadable files are skipped with a warning on {@code log}. */
    public static TrainingImages folder(Path dir, int max, long seed, PrintStream log) throws IOException {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException("--train-images " + dir + ": not a folder (give the dataset folder the cache was built from)");
        Path meta = Files.isRegularFile(dir.resolve("train").resolve("metadata.jsonl")) ? dir.resolve("train").resolve("metadata.jsonl")
                : Files.isRegularFile(dir.resolve("metadata.jsonl")) ? dir.resolve("metadata.jsonl") : null;
        record Entry(Path file, String caption, String genre) {}
        List<Entry> entries = new ArrayList<>();
        if (meta != null) {
            Path root = meta.getParent().toAbsolutePath().normalize();
            List<String> lines = Files.readAllLines(meta);
            for (int i = 0; i < lines.size(); i++) {
                if (lines.get(i).isBlank()) continue;
                JsonNode o;
                try {
                    o = JSON.readTree(lines.get(i));
                } catch (IOException e) {
                    throw new IllegalArgumentException(meta + " line " + (i + 1) + ": not valid JSON (" + e.getMessage() + ")");
                }
                String name = o.path("file_name").asText("");
                if (name.isBlank()) throw new IllegalArgumentException(meta + " line " + (i + 1) + ": missing file_name");
                Path f = root.resolve(name).normalize();
                if (!f.startsWith(root)) throw new IllegalArgumentException(meta + " line " + (i + 1) + ": file_name " + name + " leaves the dataset folder");
                entries.add(new Entry(f, o.path("text").asText(""), o.path("genre").asText("")));
            }
        } else {
            try (Stream<Path> s = Files.list(dir)) {
                s.filter(p -> p.getFileName().toString().toLowerCase(Locale.ROOT).matches(".*\\.(jpe?g|png|webp|bmp|gif|tiff?)$"))
                        .sorted().forEach(p -> entries.add(new Entry(p, "", "")));
            }
        }
        if (entries.isEmpty()) throw new IllegalArgumentException(dir + ": no pictures found (expected train/metadata.jsonl, metadata.jsonl or image files)");
        // a seeded sample: entries in a shuffled order, decoded until max pictures are readable, then in file order
        List<Entry> order = new ArrayList<>(entries);
        if (order.size() > max) Collections.shuffle(order, new Random(seed));
        List<Item> items = new ArrayList<>();
        TreeMap<String, Integer> genres = new TreeMap<>();
        int skipped = 0;
        Path base = dir.toAbsolutePath().normalize();
        for (Entry e : order) {
            if (items.size() >= max) break;
            try {
                BufferedImage img = ImageInspector.decode(Files.readAllBytes(e.file), MAX_PIXELS).rgb();
                // held at most at the largest analysis size: hundreds of full-size paintings would not fit the heap
                if (Math.min(img.getWidth(), img.getHeight()) > ImageMetrics.MAX_ANALYSIS_SIZE) img = ImageMetrics.prepare(img, ImageMetrics.MAX_ANALYSIS_SIZE);
                items.add(new Item(img, e.caption, base.relativize(e.file.toAbsolutePath().normalize()).toString()));
                if (!e.genre.isBlank()) genres.merge(e.genre, 1, Integer::sum);
            } catch (ImageInspector.Rejected | IOException ex) {
                skipped++;
                log.println("[impasto] eval: skipping training picture " + e.file + ": " + ex.getMessage());
            }
        }
        items.sort((a, b) -> a.source().compareTo(b.source()));
        if (items.size() < 2) throw new IllegalArgumentException(dir + ": fewer than 2 readable pictures (" + skipped + " unreadable)");
        return new TrainingImages(items, dir + " (" + items.size() + " of " + entries.size() + " pictures" + (skipped > 0 ? ", " + skipped + " unreadable" : "") + ")", genres, skipped);
    }
}
