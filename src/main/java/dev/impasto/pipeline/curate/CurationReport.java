package dev.impasto.pipeline.curate;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.image.Charts;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/** Counts and distributions of one curation run; written as report.json, report.md and PNG charts. */
public final class CurationReport {
    final ClassLabels labels;
    final Map<Integer, Integer> quota;
    final Map<Integer, String> outLabel;
    final List<String> shardNames;
    final long seed;
    public long scanned;
    public long surplus;
    public final Map<Integer, Integer> candidates = new LinkedHashMap<>();
    public final Map<Integer, Integer> picked = new LinkedHashMap<>();
    public final Map<Integer, Integer> unused = new LinkedHashMap<>();
    /** reason -> count, over all rows. */
    public final Map<String, Long> rejections = new TreeMap<>();
    /** genre label -> reason -> count, for rows of wanted genres. */
    public final Map<String, Map<String, Long>> rejectionsByGenre = new TreeMap<>();
    public final int[] picksPerShard;
    final List<Double> pickedMinSide = new ArrayList<>(), pickedAspect = new ArrayList<>(), pickedColour = new ArrayList<>(),
            pickedBpp = new ArrayList<>(), rejectedMinSide = new ArrayList<>(), rejectedAspect = new ArrayList<>();
    public final List<String> files = new ArrayList<>();

    CurationReport(ClassLabels labels, Map<Integer, Integer> quota, Map<Integer, String> outLabel, List<String> shardNames, long seed) {
        this.labels = labels;
        this.quota = quota;
        this.outLabel = outLabel;
        this.shardNames = shardNames;
        this.seed = seed;
        this.picksPerShard = new int[shardNames.size()];
    }

    void rejected(int genre, String code) {
        rejections.merge(code, 1L, Long::sum);
        if (quota.containsKey(genre)) rejectionsByGenre.computeIfAbsent(outLabel.get(genre), k -> new TreeMap<>()).merge(code, 1L, Long::sum);
    }

    void rejectedImage(Curator.Evaluation e) {
        if (e.width() > 0) {
            rejectedMinSide.add((double) Math.min(e.width(), e.height()));
            rejectedAspect.add(Math.max(e.width(), e.height()) / (double) Math.min(e.width(), e.height()));
        }
    }

    void accepted(Curator.Evaluation e, String fileName) {
        picksPerShard[e.c().shard()]++;
        files.add(fileName);
        pickedMinSide.add((double) Math.min(e.width(), e.height()));
        pickedAspect.add(Math.max(e.width(), e.height()) / (double) Math.min(e.width(), e.height()));
        pickedColour.add(e.colourfulness());
        pickedBpp.add(e.bytesPerPixel());
    }

    public int totalPicked() {
        return picked.values().stream().mapToInt(Integer::intValue).sum();
    }

    /** Picks per genre keyed by the output label. */
    public Map<String, Integer> pickedByLabel() {
        Map<String, Integer> m = new LinkedHashMap<>();
        picked.forEach((g, n) -> m.put(outLabel.get(g), n));
        return m;
    }

    void write(Path dir, CurateSettings settings) throws IOException {
        ObjectNode root = Json.object();
        root.put("seed", seed);
        root.put("rows_scanned", scanned);
        root.put("shards", shardNames.size());
        ObjectNode genres = root.putObject("genres");
        for (int g : quota.keySet()) {
            ObjectNode o = genres.putObject(outLabel.get(g));
            o.put("source_genre", labels.genreName(g));
            o.put("quota", quota.get(g));
            o.put("picked", picked.getOrDefault(g, 0));
            o.put("shortfall", Math.max(0, quota.get(g) - picked.getOrDefault(g, 0)));
            o.put("candidates", candidates.getOrDefault(g, 0));
            o.put("not_examined", unused.getOrDefault(g, 0));
        }
        ObjectNode rej = root.putObject("rejections");
        rejections.forEach(rej::put);
        ObjectNode rbg = root.putObject("rejections_by_genre");
        rejectionsByGenre.forEach((g, m) -> { ObjectNode o = rbg.putObject(g); m.forEach(o::put); });
        root.put("passed_but_quota_full", surplus);
        ObjectNode shards = root.putObject("picks_per_shard");
        for (int i = 0; i < shardNames.size(); i++) shards.put(shardNames.get(i), picksPerShard[i]);
        ObjectNode stats = root.putObject("picked_stats");
        stats.set("min_side", summary(pickedMinSide));
        stats.set("aspect", summary(pickedAspect));
        stats.set("colourfulness", summary(pickedColour));
        stats.set("jpeg_q95_bytes_per_pixel", summary(pickedBpp));
        Json.writePretty(dir.resolve("report.json"), root);

        Charts.histogram(dir.resolve("hist_min_side.png"), "Shorter side (px)", "pixels",
                Map.of("picked", arr(pickedMinSide), "rejected after fetch", arr(rejectedMinSide)), 30);
        Charts.histogram(dir.resolve("hist_aspect.png"), "Aspect ratio (long / short side)", "ratio",
                Map.of("picked", arr(pickedAspect), "rejected after fetch", arr(rejectedAspect)), 30);
        Charts.histogram(dir.resolve("hist_colourfulness.png"), "Colourfulness of the picks (Hasler-Suesstrunk)", "M",
                Map.of("picked", arr(pickedColour)), 30);
        Map<String, Integer> perGenre = pickedByLabel();
        Charts.bars(dir.resolve("genres.png"), "Picks per genre", "images", perGenre);
        Map<String, Long> rejChart = new LinkedHashMap<>(rejections);
        if (!rejChart.isEmpty()) Charts.bars(dir.resolve("rejections.png"), "Rejections by reason", "rows", rejChart);

        StringBuilder md = new StringBuilder("# Curation report\n\n");
        md.append("Seed ").append(seed).append(", ").append(scanned).append(" rows scanned in ").append(shardNames.size())
                .append(" shard(s); ").append(totalPicked()).append(" images picked.\n\n");
        md.append(String.format(Locale.ROOT, "Filters: styles %s, min side %d px, aspect <= %.2f, JPEG-q95 >= %.3f bytes/pixel, "
                        + "max %d MP, near-duplicate pHash distance <= %d.%n%n", settings.styles, settings.minSide, settings.maxAspect,
                settings.minBytesPerPixel, settings.maxPixels / 1_000_000, settings.dedupeDistance));
        md.append("| genre | source genre | quota | picked | candidates | not examined |\n|---|---|---:|---:|---:|---:|\n");
        for (int g : quota.keySet())
            md.append("| ").append(outLabel.get(g)).append(" | ").append(labels.genreName(g)).append(" | ").append(quota.get(g))
                    .append(" | ").append(picked.getOrDefault(g, 0)).append(" | ").append(candidates.getOrDefault(g, 0))
                    .append(" | ").append(unused.getOrDefault(g, 0)).append(" |\n");
        md.append("\n## Rejections\n\nEvery rejected row is listed with its reason in `rejections.jsonl`.\n\n| reason | rows |\n|---|---:|\n");
        rejections.forEach((k, v) -> md.append("| ").append(k).append(" | ").append(v).append(" |\n"));
        md.append("| (passed, quota already full) | ").append(surplus).append(" |\n");
        md.append("\n## Picks per shard\n\n");
        for (int i = 0; i < shardNames.size(); i++) md.append("- ").append(shardNames.get(i)).append(": ").append(picksPerShard[i]).append('\n');
        md.append("\n## Charts\n\n![genres](genres.png)\n![min side](hist_min_side.png)\n![aspect](hist_aspect.png)\n"
                + "![colourfulness](hist_colourfulness.png)\n");
        if (!rejChart.isEmpty()) md.append("![rejections](rejections.png)\n");
        md.append("\n## Contact sheets\n\n");
        for (int g : quota.keySet())
            if (picked.getOrDefault(g, 0) > 0) md.append("![").append(outLabel.get(g)).append("](contact_sheet_").append(outLabel.get(g)).append(".png)\n");
        Files.writeString(dir.resolve("report.md"), md.toString());
    }

    private static double[] arr(List<Double> l) {
        return l.stream().mapToDouble(Double::doubleValue).toArray();
    }

    private static ObjectNode summary(List<Double> l) {
        ObjectNode o = Json.object();
        o.put("n", l.size());
        if (l.isEmpty()) return o;
        double[] a = arr(l);
        java.util.Arrays.sort(a);
        o.put("min", a[0]);
        o.put("median", a[a.length / 2]);
        o.put("max", a[a.length - 1]);
        o.put("mean", java.util.Arrays.stream(a).average().orElse(0));
        return o;
    }
}
