package dev.impasto.pipeline.curate;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.io.Folders;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.image.ContactSheet;
import dev.impasto.pipeline.image.DecodedImage;
import dev.impasto.pipeline.image.ImageInspector;
import dev.impasto.pipeline.image.ImageOps;
import dev.impasto.pipeline.image.PerceptualHash;
import dev.impasto.util.ProgressBar;
import java.awt.image.BufferedImage;
import java.io.BufferedWriter;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import javax.imageio.ImageIO;

/**
 * Picks a balanced, de-duplicated, seeded random sample.
 *
 * <p>Pass 1 reads only the label columns of every shard and keeps the rows whose style and genre are wanted
 * (a few bytes each). Each genre's candidates are ordered by a seeded hash of (shard name, row), so the sample is
 * spread over all shards and the same seed gives the same picks. Pass 2 works in rounds: it fetches the next
 * candidates of each unfilled genre (as many as the observed pass rate says are needed), checks them on worker
 * threads and stages passing images on disk, then walks them in priority order, accepting until the quota is met
 * and dropping near-duplicates of earlier picks. Memory holds candidates' labels, pHashes and small thumbnails,
 * never more than a row group and a few images in flight.
 */
public final class Curator {
    private final CurationSource source;
    private final CurateSettings settings;
    private final Path out;
    private final PrintStream log;

    public Curator(CurationSource source, CurateSettings settings, Path out, PrintStream log) {
        this.source = source;
        this.settings = settings;
        this.out = out;
        this.log = log;
    }

    /** The verdict on one fetched candidate. {@code staged} is set when it passed the image checks. */
    record Evaluation(Candidate c, String code, String detail, int width, int height, double bytesPerPixel, long phash,
                      double colourfulness, Path staged, byte[] thumb, String conversion) {
        boolean passed() {
            return code == null;
        }
    }

    public CurationReport run() throws IOException {
        ClassLabels labels = source.labels();
        settings.validate("options");
        Map<Integer, Integer> quota = new LinkedHashMap<>();
        settings.quotas.forEach((g, n) -> quota.put(labels.genreId(g, "field 'quotas'"), n));
        java.util.Set<Integer> styles = new java.util.HashSet<>();
        for (String s : settings.styles) styles.add(labels.styleId(s, "field 'styles'"));
        Map<Integer, String> outLabel = new HashMap<>();
        for (int g : quota.keySet()) outLabel.put(g, ClassLabels.slug(labels.genreName(g)));
        settings.rename.forEach((g, name) -> outLabel.put(labels.genreId(g, "field 'rename'"), name));

        Path train = out.resolve("train"), reportDir = out.resolve("report"), staging = out.resolve(".staging");
        if (Files.exists(train.resolve("metadata.jsonl")))
            throw new PipelineException(out + " already holds a curated set (train/metadata.jsonl); choose another --out or delete it");
        Files.createDirectories(train);
        Files.createDirectories(reportDir);
        Files.createDirectories(staging);
        List<String> shardNames = source.shardNames();
        CurationReport report = new CurationReport(labels, quota, outLabel, shardNames, settings.seed);

        // Pass 1: labels only.
        Map<Integer, List<Candidate>> byGenre = new LinkedHashMap<>();
        for (int g : quota.keySet()) byGenre.put(g, new ArrayList<>());
        try (BufferedWriter rejections = Files.newBufferedWriter(reportDir.resolve("rejections.jsonl"))) {
            try (ProgressBar bar = dev.impasto.pipeline.Progress.bar("scan labels", source.rowCount(), "rows", log)) {
            source.scan(row -> {
                bar.step(1);
                report.scanned++;
                String where = shardNames.get(row.shard());
                if (!styles.isEmpty() && row.style() >= 0 && !styles.contains(row.style())) {
                    reject(rejections, report, row.shard(), row.row(), where, row.genre(), "style",
                            "style " + labels.styleName(row.style()) + " is not wanted");
                } else if (!quota.containsKey(row.genre())) {
                    reject(rejections, report, row.shard(), row.row(), where, row.genre(), "genre",
                            "genre " + labels.genreName(row.genre()) + " has no quota");
                } else {
                    byGenre.get(row.genre()).add(new Candidate(row.shard(), row.row(), row.genre(), row.style(), row.artist(),
                            row.path(), Candidate.priorityKey(settings.seed, shardNames.get(row.shard()), row.row())));
                }
            });
            }
            byGenre.values().forEach(l -> l.sort(Comparator.comparingLong(Candidate::priority).thenComparingInt(Candidate::shard)
                    .thenComparingLong(Candidate::row)));
            byGenre.forEach((g, l) -> report.candidates.put(g, l.size()));

            // Pass 2: rounds of fetch, check, accept.
            Map<Integer, Integer> cursor = new HashMap<>();
            Map<Integer, Integer> accepted = new HashMap<>();
            List<long[]> acceptedHashes = new ArrayList<>(); // {phash, pick number}
            Map<Integer, ContactSheet> sheets = new LinkedHashMap<>();
            for (int g : quota.keySet()) {
                cursor.put(g, 0);
                accepted.put(g, 0);
                sheets.put(g, new ContactSheet(outLabel.get(g) + " (" + quota.get(g) + " wanted)",
                        Math.min(settings.contactSheetMax, quota.get(g)), 15, 96));
            }
            int evaluated = 0, passed = 0, round = 0;
            try (BufferedWriter meta = Files.newBufferedWriter(train.resolve("metadata.jsonl"))) {
                while (true) {
                    List<Candidate> batch = new ArrayList<>();
                    double passRate = evaluated == 0 ? 0.8 : Math.max(0.05, passed / (double) evaluated);
                    for (int g : quota.keySet()) {
                        int need = quota.get(g) - accepted.get(g);
                        List<Candidate> list = byGenre.get(g);
                        int from = cursor.get(g);
                        if (need <= 0 || from >= list.size()) continue;
                        int take = (int) Math.min(list.size() - from, Math.ceil(need / passRate * 1.1) + 2);
                        batch.addAll(list.subList(from, from + take));
                        cursor.put(g, from + take);
                    }
                    if (batch.isEmpty()) break;
                    round++;
                    List<Evaluation> results = evaluate(batch, staging, round);
                    evaluated += results.size();
                    results.sort(Comparator.comparingLong((Evaluation e) -> e.c().priority()).thenComparingInt(e -> e.c().shard())
                            .thenComparingLong(e -> e.c().row()));
                    for (Evaluation e : results) {
                        Candidate c = e.c();
                        String where = shardNames.get(c.shard());
                        if (!e.passed()) {
                            reject(rejections, report, c.shard(), c.row(), where, c.genre(), e.code(), e.detail());
                            report.rejectedImage(e);
                            continue;
                        }
                        passed++;
                        if (accepted.get(c.genre()) >= quota.get(c.genre())) {
                            report.surplus++;
                            Files.deleteIfExists(e.staged());
                            continue;
                        }
                        if (settings.dedupeDistance >= 0) {
                            long[] dup = null;
                            for (long[] h : acceptedHashes)
                                if (PerceptualHash.distance(h[0], e.phash()) <= settings.dedupeDistance) { dup = h; break; }
                            if (dup != null) {
                                reject(rejections, report, c.shard(), c.row(), where, c.genre(), "near_duplicate",
                                        "pHash within " + PerceptualHash.distance(dup[0], e.phash()) + " bits of pick " + dup[1]);
                                Files.deleteIfExists(e.staged());
                                continue;
                            }
                        }
                        int pick = acceptedHashes.size() + 1;
                        acceptedHashes.add(new long[] {e.phash(), pick});
                        accepted.merge(c.genre(), 1, Integer::sum);
                        String ext = e.staged().getFileName().toString().replaceAll("^.*\\.", "");
                        String fileName = String.format(Locale.ROOT, "%s_%05d.%s", outLabel.get(c.genre()), pick, ext);
                        Files.move(e.staged(), train.resolve(fileName), StandardCopyOption.REPLACE_EXISTING);
                        ObjectNode m = Json.object();
                        m.put("file_name", fileName);
                        m.put("genre", outLabel.get(c.genre()));
                        m.put("genre_id", c.genre());
                        if (c.style() >= 0) { m.put("style", labels.styleName(c.style())); m.put("style_id", c.style()); }
                        if (c.artist() >= 0) { m.put("artist", labels.artistName(c.artist())); m.put("artist_id", c.artist()); }
                        m.put("source", where + (c.path() != null ? "/" + c.path() : "#" + c.row()));
                        m.put("width", e.width());
                        m.put("height", e.height());
                        m.put("phash", PerceptualHash.hex(e.phash()));
                        if (!e.conversion().isEmpty()) m.put("converted", e.conversion());
                        meta.write(Json.line(m));
                        meta.newLine();
                        report.accepted(e, fileName);
                        BufferedImage thumb = ImageIO.read(new ByteArrayInputStream(e.thumb()));
                        if (thumb != null) sheets.get(c.genre()).add(thumb, fileName.replaceAll("\\.[^.]+$", ""));
                    }
                }
            }
            for (int g : quota.keySet()) {
                report.picked.put(g, accepted.get(g));
                report.unused.put(g, byGenre.get(g).size() - cursor.get(g));
                if (accepted.get(g) < quota.get(g))
                    log.println("warning: genre " + labels.genreName(g) + " got " + accepted.get(g) + " of " + quota.get(g)
                            + " images: the source has no more passing candidates (see report/report.md)");
            }
            for (var s : sheets.entrySet())
                if (s.getValue().count() > 0) s.getValue().write(reportDir.resolve("contact_sheet_" + outLabel.get(s.getKey()) + ".png"));
        }
        Folders.deleteTree(staging);
        if (!settings.format.equals("imagefolder")) {
            Path parquet = out.resolve("data").resolve("train-00000-of-00001.parquet");
            Files.createDirectories(parquet.getParent());
            long rows = DatasetExport.toParquet(train, parquet, DatasetExport.renamed(labels, outLabel));
            log.println("wrote " + parquet + " (" + rows + " rows)");
        }
        report.write(reportDir, settings);
        return report;
    }

    private static void reject(BufferedWriter w, CurationReport report, int shard, long row, String where, int genre, String code,
                               String detail) throws IOException {
        report.rejected(genre, code);
        ObjectNode o = Json.object();
        o.put("source", where);
        o.put("row", row);
        o.put("reason", code);
        o.put("detail", detail);
        w.write(Json.line(o));
        w.newLine();
    }

    private List<Evaluation> evaluate(List<Candidate> batch, Path staging, int round) throws IOException {
        batch.sort(Comparator.comparingInt(Candidate::shard).thenComparingLong(Candidate::row));
        List<Evaluation> results = java.util.Collections.synchronizedList(new ArrayList<>());
        ExecutorService pool = Executors.newFixedThreadPool(settings.threads);
        Semaphore inFlight = new Semaphore(settings.threads * 2);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        try (ProgressBar bar = dev.impasto.pipeline.Progress.bar("check images (round " + round + ")", batch.size(), "img", log)) {
            source.fetch(batch, (c, bytes) -> {
                try {
                    inFlight.acquire();
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted");
                }
                pool.execute(() -> {
                    try {
                        results.add(check(c, bytes, staging));
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    } finally {
                        inFlight.release();
                        bar.step(1);
                    }
                });
            });
            pool.shutdown();
            try {
                if (!pool.awaitTermination(1, TimeUnit.DAYS)) throw new IOException("image checks did not finish");
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted");
            }
        } finally {
            pool.shutdownNow();
        }
        if (failure.get() != null) throw new PipelineException("image check failed: " + failure.get(), failure.get());
        return new ArrayList<>(results);
    }

    private Evaluation check(Candidate c, byte[] bytes, Path staging) {
        try {
            if (bytes.length == 0) return fail(c, "undecodable", c.path() != null ? "file missing: " + c.path() : "no image bytes in the row");
            ImageInspector.Header h = ImageInspector.header(bytes);
            int w = h.width(), ht = h.height();
            if (Math.min(w, ht) < settings.minSide)
                return fail(c, "too_small", w + "x" + ht + ": shorter side under " + settings.minSide, w, ht);
            double aspect = Math.max(w, ht) / (double) Math.min(w, ht);
            if (aspect > settings.maxAspect)
                return fail(c, "aspect", String.format(Locale.ROOT, "%dx%d: aspect %.2f over %.2f", w, ht, aspect, settings.maxAspect), w, ht);
            DecodedImage img = ImageInspector.decode(bytes, settings.maxPixels);
            double bpp = ImageOps.jpegQ95BytesPerPixel(img.rgb());
            if (bpp < settings.minBytesPerPixel)
                return new Evaluation(c, "low_quality", String.format(Locale.ROOT, "JPEG q95 gives %.3f bytes/pixel, under %.3f", bpp,
                        settings.minBytesPerPixel), w, ht, bpp, 0, 0, null, null, img.conversion());
            BufferedImage small = ImageOps.fit(img.rgb(), 256);
            long phash = PerceptualHash.of(small);
            double colour = ImageOps.colourfulness(small);
            byte[] thumb = ImageOps.jpeg(ImageOps.fit(small, 96), 0.85f);
            String name = c.shard() + "_" + c.row();
            Path staged;
            if (img.keptAsIs()) {
                staged = staging.resolve(name + (img.format().startsWith("jp") ? ".jpg" : ".png"));
                Files.write(staged, bytes);
            } else if (img.format().startsWith("jp")) {
                staged = staging.resolve(name + ".jpg");
                Files.write(staged, ImageOps.jpeg(img.rgb(), 0.95f));
            } else {
                staged = staging.resolve(name + ".png");
                Files.write(staged, ImageOps.png(img.rgb()));
            }
            return new Evaluation(c, null, null, w, ht, bpp, phash, colour, staged, thumb, img.conversion());
        } catch (ImageInspector.Rejected r) {
            return fail(c, r.code, r.getMessage());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Evaluation fail(Candidate c, String code, String detail) {
        return fail(c, code, detail, 0, 0);
    }

    private static Evaluation fail(Candidate c, String code, String detail, int w, int h) {
        return new Evaluation(c, code, detail, w, h, 0, 0, 0, null, null, "");
    }
}
