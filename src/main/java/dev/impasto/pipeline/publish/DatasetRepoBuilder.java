package dev.impasto.pipeline.publish;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.curate.ClassLabels;
import dev.impasto.pipeline.curate.DatasetExport;
import dev.impasto.pipeline.parquet.ParquetIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Lays out a dataset repo from a curated folder: imagefolder or parquet, plus a dataset card. */
public final class DatasetRepoBuilder {
    public record Result(Path folder, List<String> files, int rows) {}

    private DatasetRepoBuilder() {}

    /** @param format imagefolder or parquet */
    public static Result build(Path curated, Path out, String repoId, String format) throws IOException {
        Path train = curated.resolve("train");
        Path meta = train.resolve("metadata.jsonl");
        if (!Files.isRegularFile(meta)) throw new PipelineException(curated + ": no train/metadata.jsonl; run impasto curate first");
        if (!format.equals("imagefolder") && !format.equals("parquet"))
            throw new PipelineException("option --format: '" + format + "' is not imagefolder or parquet");
        List<String> lines = Files.readAllLines(meta).stream().filter(l -> !l.isBlank()).toList();
        int rows = lines.size();
        int withText = 0;
        for (String l : lines) if (Json.parse(l).hasNonNull("text")) withText++;
        RepoFolder.fresh(out);
        List<String> files = new ArrayList<>();
        if (format.equals("imagefolder")) {
            try (Stream<Path> s = Files.list(train)) {
                for (Path p : s.sorted().toList()) {
                    String n = p.getFileName().toString();
                    if (n.endsWith(".tmp") || Files.isDirectory(p)) continue;
                    RepoFolder.place(p, out.resolve("train").resolve(n));
                    files.add("train/" + n);
                }
            }
        } else {
            Path existing = curated.resolve("data/train-00000-of-00001.parquet");
            Path target = out.resolve("data/train-00000-of-00001.parquet");
            Files.createDirectories(target.getParent());
            ClassLabels labels = ClassLabels.wikiArt();
            if (Files.isRegularFile(existing))
                try (var r = ParquetIO.open(existing)) {
                    labels = ClassLabels.fromHuggingface(r.getFileMetaData().getKeyValueMetaData().get(ClassLabels.HF_KEY), labels);
                }
            DatasetExport.toParquet(train, target, labels); // fresh, so captions added since curation are in it
            files.add("data/train-00000-of-00001.parquet");
        }
        JsonNode report = Files.isRegularFile(curated.resolve("report/report.json")) ? Json.read(curated.resolve("report/report.json")) : null;
        JsonNode captions = Files.isRegularFile(curated.resolve("report/captions.json")) ? Json.read(curated.resolve("report/captions.json")) : null;
        Files.writeString(out.resolve("README.md"), card(repoId, format, rows, withText, report, captions));
        files.add("README.md");
        return new Result(out, files, rows);
    }

    static String card(String repoId, String format, int rows, int withText, JsonNode report, JsonNode captions) {
        StringBuilder y = new StringBuilder("---\n");
        y.append("license: other\nlicense_name: wikiart-terms\nlicense_link: https://www.wikiart.org/en/terms-of-use\n");
        y.append("task_categories:\n- text-to-image\n");
        y.append("size_categories:\n- ").append(rows < 1000 ? "n<1K" : rows < 10000 ? "1K<n<10K" : "10K<n<100K").append('\n');
        y.append("tags:\n- art\n- wikiart\n- lora\n");
        y.append("configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: ")
                .append(format.equals("parquet") ? "data/*.parquet" : "train/*").append('\n');
        y.append("---\n\n");
        String name = repoId.substring(repoId.indexOf('/') + 1);
        y.append("# ").append(name).append("\n\n").append(rows).append(" images");
        if (withText > 0) y.append(", ").append(withText).append(" with captions in the `text` column");
        y.append(", curated from [huggan/wikiart](https://huggingface.co/datasets/huggan/wikiart) with impasto for training a style LoRA.\n\n");
        if (report != null) {
            y.append("## Composition\n\n| genre | images |\n|---|---:|\n");
            report.path("genres").properties().forEach(e -> y.append("| ").append(e.getKey()).append(" | ")
                    .append(e.getValue().path("picked").asInt()).append(" |\n"));
            y.append("\nSampled at random (seed ").append(report.path("seed").asLong()).append(") across all ")
                    .append(report.path("shards").asInt()).append(" source shards; filters: shorter side, aspect ratio, a JPEG-q95 bytes-per-pixel floor and perceptual-hash de-duplication.\n\n");
        }
        if (captions != null)
            y.append("## Captions\n\nWritten by ").append(captions.path("backend").asText()).append("; they describe content, not style. Trigger word: `")
                    .append(captions.path("trigger").asText()).append("`. Mean length ")
                    .append(String.format(java.util.Locale.ROOT, "%.1f", captions.path("words").path("mean").asDouble())).append(" words.\n\n");
        y.append("## Load\n\n```python\nfrom datasets import load_dataset\nds = load_dataset(\"").append(repoId).append("\", split=\"train\")\n");
        if (format.equals("parquet")) y.append("print(ds.features[\"genre\"].names)  # ClassLabel names travel in the parquet metadata\n");
        y.append("```\n\n## License\n\nThe artworks come from WikiArt; many are public domain, some are not. Use follows WikiArt's terms.\n");
        return y.toString();
    }
}
