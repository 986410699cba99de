package dev.impasto.encoders.cache;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.encoders.FluxEncoders;
import dev.impasto.encoders.ImageTensors;
import dev.impasto.io.AtomicFiles;
import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.pipeline.image.ImageInspector;
import dev.impasto.pipeline.image.ImageOps;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.train.LatentCache;
import dev.impasto.util.ProgressBar;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Builds the training cache that {@link LatentCache} reads: each picture resized and cropped to its aspect bucket,
 * encoded once by the VAE (and once more mirrored with {@code flip}), its caption encoded by T5 and CLIP, written
 * to {@code items/<id>.safetensors} atomically; the empty prompt to {@code empty.safetensors}; {@code manifest.json}
 * rewritten atomically every few seconds and at the end.
 *
 * <p>Resumable: each item file carries in its metadata what it was made from (source size and time, caption,
 * settings), so a rerun skips every item whose file is intact and still matches, and rebuilds the manifest from
 * the item files if the last run died before writing it. A crash loses at most the item in flight. A rerun with
 * different settings (resolution, encoders, ...) into the same folder is refused: the cache would mix two kinds.
 */
public final class CacheBuilder {
    /**
     * @param resolution  bucket area is resolution^2 pixels
     * @param bucketStep  bucket sides are multiples of this (0: 2 x the VAE's downsampling, 16 for FLUX)
     * @param cropJitter  0 crops at the centre; j in (0, 1] moves the crop by up to j/2 of the slack either way (seeded)
     * @param textDtype   how T5 tokens are stored (BF16 halves the cache; the GPU computes them in bf16 anyway)
     * @param trigger     prepended to every caption ("trigger, caption") when not blank
     * @param limit       cache at most this many pictures (0: all)
     */
    public record Settings(int resolution, int bucketStep, double maxAspect, boolean noUpscale, boolean flip, double cropJitter, long seed,
                           DType textDtype, String captionField, String trigger, int limit, long maxPixels) {
        public Settings {
            if (cropJitter < 0 || cropJitter > 1) throw new IllegalArgumentException("crop jitter must be in [0, 1], got " + cropJitter);
            if (textDtype != DType.BF16 && textDtype != DType.F32 && textDtype != DType.F16)
                throw new IllegalArgumentException("text embeddings are stored as bf16, f16 or f32, not " + textDtype);
        }

        public static Settings defaults(int resolution) {
            return new Settings(resolution, 0, 2.0, false, false, 0, 0, DType.BF16, "text", "", 0, 100_000_000L);
        }
    }

    public record Summary(int images, int items, int encoded, int skipped, int failed, Map<String, Integer> buckets, int emptyCaptions, int truncatedCaptions) {}

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final FluxEncoders enc;
    private final Settings s;
    private final PrintStream log;
    /** Test hook: called after each item is written (a test throws here to simulate a crash). */
    java.util.function.IntConsumer afterItem = i -> {};

    private String vaeWeights = "";

    /** Records where the autoencoder came from (a path or tiny-random:SEED) so that training can decode its samples. */
    public CacheBuilder vaeWeights(String source) {
        this.vaeWeights = source == null ? "" : source;
        return this;
    }

    public CacheBuilder(FluxEncoders enc, Settings settings, PrintStream log) {
        this.enc = enc;
        this.s = settings;
        this.log = log;
    }

    private int step() {
        return s.bucketStep() > 0 ? s.bucketStep() : 2 * enc.latentFactor();
    }

    /** What must match for items of an earlier run to be reused. */
    ObjectNode fingerprint() {
        ObjectNode f = JSON.createObjectNode();
        f.put("encoders", enc.describe());
        f.put("resolution", s.resolution());
        f.put("bucketStep", step());
        f.put("maxAspect", s.maxAspect());
        f.put("noUpscale", s.noUpscale());
        f.put("flip", s.flip());
        f.put("cropJitter", s.cropJitter());
        f.put("seed", s.seed());
        f.put("textDtype", s.textDtype().name());
        f.put("textLen", enc.t5().config.maxLength());
        f.put("trigger", s.trigger());
        return f;
    }

    public Summary build(Path data, Path out) throws IOException {
        List<DataItem> items = ImageFolderData.read(data, s.captionField());
        if (s.limit() > 0 && items.size() > s.limit()) items = items.subList(0, s.limit());
        Files.createDirectories(out.resolve("items"));
        String fp = fingerprint().toString();
        Path manifestFile = out.resolve("manifest.json");
        if (Files.isRegularFile(manifestFile)) {
            JsonNode old = JSON.readTree(manifestFile.toFile());
            String oldFp = old.path("settings").toString();
            if (!oldFp.equals(fp))
                throw new IOException(out + " holds a cache made with other settings (" + old.path("settings") + "); now asked for " + fp
                        + ": use another --out folder, or delete this one");
        }
        Buckets buckets = new Buckets(s.resolution(), step(), s.maxAspect(), s.noUpscale());
        writeEmptyPrompt(out, fp);

        List<LatentCache.Entry> entries = new ArrayList<>();
        Map<String, Integer> bucketCount = new LinkedHashMap<>();
        Set<String> ids = new HashSet<>();
        int encoded = 0, skipped = 0, failed = 0, empty = 0, truncated = 0;
        long lastManifest = System.nanoTime();
        try (ProgressBar bar = new ProgressBar("cache", items.size(), "img")) {
            for (int i = 0; i < items.size(); i++) {
                DataItem item = items.get(i);
                String id = uniqueId(item.name(), ids);
                String caption = caption(item);
                if (caption.isEmpty()) empty++;
                Path shard = out.resolve("items").resolve(id + ".safetensors");
                List<LatentCache.Entry> done = reuse(shard, id, item, caption, fp);
                if (done != null) {
                    skipped++;
                } else {
                    try {
                        Encoded e = encodeItem(item, id, caption, buckets, shard, fp);
                        done = e.entries;
                        if (e.truncated) truncated++;
                        encoded++;
                    } catch (ImageInspector.Rejected r) {
                        failed++;
                        log.println("[impasto] skipped " + item.file() + ": " + r.getMessage());
                        bar.step(1);
                        continue;
                    }
                }
                entries.addAll(done);
                for (LatentCache.Entry e : done) bucketCount.merge(e.latentWidth * enc.latentFactor() + "x" + e.latentHeight * enc.latentFactor(), 1, Integer::sum);
                bar.step(1);
                bar.status(id);
                afterItem.accept(i);
                if (System.nanoTime() - lastManifest > 5_000_000_000L) {
                    writeManifest(out, entries, fp);
                    lastManifest = System.nanoTime();
                }
            }
        }
        writeManifest(out, entries, fp);
        return new Summary(items.size(), entries.size(), encoded, skipped, failed, bucketCount, empty, truncated);
    }

    private String caption(DataItem item) {
        String c = item.caption() == null ? "" : item.caption().strip();
        if (s.trigger() != null && !s.trigger().isBlank()) c = c.isEmpty() ? s.trigger() : s.trigger() + ", " + c;
        return c;
    }

    static String uniqueId(String name, Set<String> taken) {
        String base = name.replaceAll("\\.[A-Za-z0-9]+$", "").replaceAll("[^A-Za-z0-9_.-]+", "_");
        if (base.isEmpty() || base.startsWith(".")) base = "img" + base;
        String id = base;
        for (int k = 2; !taken.add(id); k++) id = base + "_" + k;
        return id;
    }

    private String sourceStamp(DataItem item) throws IOException {
        return Files.size(item.file()) + "@" + Files.getLastModifiedTime(item.file()).toMillis();
    }

    /** The entries of an item file made earlier from the same source with the same settings, or null. */
    private List<LatentCache.Entry> reuse(Path shard, String id, DataItem item, String caption, String fp) {
        if (!Files.isRegularFile(shard)) return null;
        try (SafetensorsFile f = SafetensorsFile.open(shard)) {
            Map<String, String> m = f.metadata();
            if (!fp.equals(m.get("impasto.settings")) || !sourceStamp(item).equals(m.get("impasto.source")) || !caption.equals(m.get("impasto.caption")))
                return null;
            List<LatentCache.Entry> out = new ArrayList<>();
            for (String variant : m.getOrDefault("impasto.ids", "").split(",")) {
                if (variant.isEmpty() || !f.contains(variant + ".latent") || !f.contains(variant + ".t5") || !f.contains(variant + ".clip")) return null;
                long[] shape = f.tensor(variant + ".latent").shape();
                out.add(entry(variant, id, item, caption, (int) shape[1], (int) shape[2], variant.endsWith("_flip")));
            }
            return out.isEmpty() ? null : out;
        } catch (IOException | RuntimeException e) {
            return null; // unreadable (a torn write from another tool): made again
        }
    }

    private LatentCache.Entry entry(String variant, String id, DataItem item, String caption, int h, int w, boolean flipped) {
        LatentCache.Entry e = new LatentCache.Entry();
        e.id = variant;
        e.shard = "items/" + id + ".safetensors";
        e.caption = caption;
        e.source = item.name();
        e.latentHeight = h;
        e.latentWidth = w;
        e.flipped = flipped;
        return e;
    }

    private record Encoded(List<LatentCache.Entry> entries, boolean truncated) {}

    /** The picture resized to cover its bucket and cropped to it (centre, or jittered by the item's seed). */
    BufferedImage fit(BufferedImage img, Buckets.Size b, String id) {
        int w = img.getWidth(), h = img.getHeight();
        double scale = Math.max(b.width() / (double) w, b.height() / (double) h);
        int rw = Math.max(b.width(), (int) Math.ceil(w * scale - 1e-9)), rh = Math.max(b.height(), (int) Math.ceil(h * scale - 1e-9));
        BufferedImage resized = ImageOps.resize(img, rw, rh);
        int sx = rw - b.width(), sy = rh - b.height();
        double jx = 0, jy = 0;
        if (s.cropJitter() > 0) {
            SplittableRandom r = new SplittableRandom(s.seed() * 0x9E3779B97F4A7C15L ^ id.hashCode());
            jx = (r.nextDouble() - 0.5) * s.cropJitter();
            jy = (r.nextDouble() - 0.5) * s.cropJitter();
        }
        int x0 = (int) Math.round(Math.max(0, Math.min(sx, sx / 2.0 + jx * sx)));
        int y0 = (int) Math.round(Math.max(0, Math.min(sy, sy / 2.0 + jy * sy)));
        BufferedImage out = new BufferedImage(b.width(), b.height(), BufferedImage.TYPE_INT_RGB);
        out.getGraphics().drawImage(resized.getSubimage(x0, y0, b.width(), b.height()), 0, 0, null);
        return out;
    }

    private Encoded encodeItem(DataItem item, String id, String caption, Buckets buckets, Path shard, String fp) throws IOException, ImageInspector.Rejected {
        byte[] bytes = Files.readAllBytes(item.file());
        BufferedImage img = ImageInspector.decode(bytes, s.maxPixels()).rgb();
        Buckets.Size b = buckets.of(img.getWidth(), img.getHeight());
        BufferedImage crop = fit(img, b, id);
        int f = enc.latentFactor(), lh = b.height() / f, lw = b.width() / f;
        List<SafetensorsWriter.Tensor> tensors = new ArrayList<>();
        List<LatentCache.Entry> entries = new ArrayList<>();
        List<String> variants = new ArrayList<>();
        boolean truncated;
        float[] t5, pooled;
        long[] t5Shape;
        try (FluxEncoders.Prompt p = enc.encodePrompt(caption)) {
            t5 = enc.backend().toFloats(p.t5());
            pooled = enc.backend().toFloats(p.pooled());
            t5Shape = new long[] {p.t5().dim(1), p.t5().dim(2)};
            truncated = p.truncatedT5() || p.truncatedClip();
        }
        for (boolean flipped : s.flip() ? new boolean[] {false, true} : new boolean[] {false}) {
            String variant = flipped ? id + "_flip" : id;
            float[] latent;
            try (Tensor z = enc.encode(crop, flipped)) {
                latent = enc.backend().toFloats(z);
            }
            tensors.add(SafetensorsWriter.Tensor.ofFloats(variant + ".latent", DType.F32, new long[] {latent.length / (lh * lw), lh, lw}, latent));
            tensors.add(SafetensorsWriter.Tensor.ofFloats(variant + ".t5", s.textDtype(), t5Shape, t5));
            tensors.add(SafetensorsWriter.Tensor.ofFloats(variant + ".clip", DType.F32, new long[] {pooled.length}, pooled));
            entries.add(entry(variant, id, item, caption, lh, lw, flipped));
            variants.add(variant);
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("impasto.settings", fp);
        meta.put("impasto.source", sourceStamp(item));
        meta.put("impasto.caption", caption);
        meta.put("impasto.ids", String.join(",", variants));
        meta.put("impasto.bucket", b.toString());
        SafetensorsWriter.write(shard, meta, tensors);
        return new Encoded(entries, truncated);
    }

    private void writeEmptyPrompt(Path out, String fp) throws IOException {
        Path file = out.resolve("empty.safetensors");
        if (Files.isRegularFile(file)) {
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                if (fp.equals(f.metadata().get("impasto.settings")) && f.contains("empty.t5") && f.contains("empty.clip")) return;
            } catch (IOException | RuntimeException e) {
                // torn or foreign: write it again
            }
        }
        try (FluxEncoders.Prompt p = enc.encodePrompt("")) {
            float[] t5 = enc.backend().toFloats(p.t5()), pooled = enc.backend().toFloats(p.pooled());
            SafetensorsWriter.write(file, Map.of("impasto.settings", fp), List.of(
                    SafetensorsWriter.Tensor.ofFloats("empty.t5", s.textDtype(), new long[] {p.t5().dim(1), p.t5().dim(2)}, t5),
                    SafetensorsWriter.Tensor.ofFloats("empty.clip", DType.F32, new long[] {pooled.length}, pooled)));
        }
    }

    private void writeManifest(Path out, List<LatentCache.Entry> entries, String fp) throws IOException {
        LatentCache.Manifest m = new LatentCache.Manifest();
        m.latentChannels = enc.configs().vae().zChannels();
        m.textLen = enc.t5().config.maxLength();
        m.textDim = enc.t5().config.dModel();
        m.pooledDim = enc.clip().config.hidden();
        m.vae = enc.hasVae() ? enc.configs().vae().toString() : "";
        m.textEncoder = enc.describe();
        m.vaeWeights = vaeWeights;
        m.items = entries;
        ObjectNode tree = JSON.valueToTree(m);
        tree.set("settings", JSON.readTree(fp));
        AtomicFiles.writeString(out.resolve("manifest.json"), JSON.writeValueAsString(tree));
    }

    static String fmt(Map<String, Integer> buckets) {
        StringBuilder sb = new StringBuilder();
        buckets.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed())
                .forEach(e -> sb.append(sb.isEmpty() ? "" : ", ").append(e.getKey()).append(" x").append(e.getValue()));
        return sb.toString().toLowerCase(Locale.ROOT);
    }
}
