package dev.impasto.pipeline.cli;

import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.curate.ClassLabels;
import dev.impasto.pipeline.curate.CurateSettings;
import dev.impasto.pipeline.curate.CurationReport;
import dev.impasto.pipeline.curate.CurationSource;
import dev.impasto.pipeline.curate.Curator;
import dev.impasto.pipeline.curate.ImageFolderSource;
import dev.impasto.pipeline.curate.ParquetShardSource;
import dev.impasto.pipeline.hub.HubDownloader;
import dev.impasto.pipeline.hub.HubHttp;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "curate", sortOptions = false,
        description = "Picks a balanced, de-duplicated, seeded random sample of WikiArt-style images and writes it as an imagefolder (train/ + train/metadata.jsonl) and/or a parquet file that keeps the ClassLabel names, with a report (counts, every rejection with its reason, histograms, contact sheets).",
        footer = {"", "Example: impasto curate --parquet wikiart/data --out curated --seed 7",
                "         impasto curate --hub huggan/wikiart --hub-shards 0-71 --cache ~/.cache/impasto/wikiart --out curated"})
public final class CurateCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @Option(names = "--parquet", paramLabel = "PATH", description = "Parquet shard file or folder of shards (huggan/wikiart schema); repeatable.")
    List<Path> parquet = new ArrayList<>();

    @Option(names = "--image-folder", paramLabel = "DIR", description = "Folder with images and metadata.jsonl or metadata.csv (file_name, genre[, style, artist]).")
    Path imageFolder;

    @Option(names = "--hub", paramLabel = "REPO", description = "Fetch parquet shards of this Hub dataset repo (e.g. huggan/wikiart) into --cache first.")
    String hubRepo;

    @Option(names = "--hub-revision", paramLabel = "REV", description = "Branch, tag or commit of the dataset (default: ${DEFAULT-VALUE}).", defaultValue = "main")
    String hubRevision;

    @Option(names = "--hub-dir", paramLabel = "DIR", description = "Folder of the shards in the repo (default: ${DEFAULT-VALUE}).", defaultValue = "data")
    String hubDir;

    @Option(names = "--hub-shards", paramLabel = "SEL", description = "Shards to fetch, as indexes into the sorted list: 'all' or e.g. 0-9,15 (default: ${DEFAULT-VALUE}).", defaultValue = "all")
    String hubShards;

    @Option(names = "--cache", paramLabel = "DIR", description = "Where fetched shards are kept and resumed (default: ~/.cache/impasto/hub/<repo>).")
    Path cache;

    @Mixin HubOptions hub = new HubOptions();

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "Output folder (must not hold a curated set yet).")
    Path out;

    @Option(names = "--config", paramLabel = "FILE", description = "JSON file with any of the settings below, keyed by option name (e.g. {\"min-side\": 768, \"quotas\": {\"landscape\": 100}}); options given here override it.")
    Path config;

    @Option(names = "--style", paramLabel = "STYLE", split = ",", description = "Styles to keep, by ClassLabel name or id; 'any' keeps all (default: Impressionism).")
    List<String> styles;

    @Option(names = "--quota", paramLabel = "GENRE=N", split = ",", description = "Genre quotas (default: landscape=300,portrait=300,cityscape=200,still_life=200); genres not listed are rejected.")
    List<String> quotas;

    @Option(names = "--rename", paramLabel = "GENRE=LABEL", split = ",", description = "Label written for a genre, e.g. cityscape=urban.")
    List<String> rename;

    @Option(names = "--min-side", paramLabel = "PX", description = "Shorter side at least this many pixels (default: 512).")
    Integer minSide;

    @Option(names = "--max-aspect", paramLabel = "R", description = "Long/short side at most this (default: 2.0).")
    Double maxAspect;

    @Option(names = "--min-bytes-per-pixel", paramLabel = "B", description = "Quality floor: bytes per pixel of a JPEG q95 re-encode (default: 0.1).")
    Double minBytesPerPixel;

    @Option(names = "--max-pixels", paramLabel = "N", description = "Refuse images over this many pixels before decoding (default: 40000000).")
    Long maxPixels;

    @Option(names = "--dedupe-distance", paramLabel = "BITS", description = "pHash Hamming distance counted as the same picture; -1 turns dedupe off (default: 6).")
    Integer dedupeDistance;

    @Option(names = "--seed", paramLabel = "N", description = "Sampling seed (default: 1234).")
    Long seed;

    @Option(names = "--format", paramLabel = "F", description = "imagefolder, or both = imagefolder + data/train-00000-of-00001.parquet (default: both).")
    String format;

    @Option(names = "--threads", paramLabel = "N", description = "Image check threads (default: all cores).")
    Integer threads;

    /** Environment, replaceable in tests. */
    Map<String, String> env = System.getenv();

    @Override
    public Integer call() throws Exception {
        PrintStream err = System.err;
        try {
            CurateSettings s = settings();
            CurationSource source = source(err);
            err.println("curate: " + source.describe() + " -> " + out);
            CurationReport report = new Curator(source, s, out, System.err).run();
            spec.commandLine().getOut().println("picked " + report.totalPicked() + " images " + report.pickedByLabel()
                    + "; report: " + out.resolve("report/report.md"));
            spec.commandLine().getOut().flush();
            return 0;
        } catch (PipelineException e) {
            spec.commandLine().getErr().println("curate: " + e.getMessage());
            spec.commandLine().getErr().flush();
            return 2;
        }
    }

    CurateSettings settings() {
        CurateSettings s = config != null ? CurateSettings.load(config) : new CurateSettings();
        if (styles != null) s.styles = styles.size() == 1 && styles.getFirst().equalsIgnoreCase("any") ? new ArrayList<>() : new ArrayList<>(styles);
        if (quotas != null) s.quotas = CurateSettings.parseQuotas(String.join(",", quotas));
        if (rename != null) {
            Map<String, String> m = new LinkedHashMap<>();
            for (String r : rename) {
                String[] kv = r.split("=", 2);
                if (kv.length != 2 || kv[1].isBlank()) throw new PipelineException("option --rename: '" + r + "' is not genre=label");
                m.put(kv[0].strip(), kv[1].strip());
            }
            s.rename = m;
        }
        if (minSide != null) s.minSide = minSide;
        if (maxAspect != null) s.maxAspect = maxAspect;
        if (minBytesPerPixel != null) s.minBytesPerPixel = minBytesPerPixel;
        if (maxPixels != null) s.maxPixels = maxPixels;
        if (dedupeDistance != null) s.dedupeDistance = dedupeDistance;
        if (seed != null) s.seed = seed;
        if (format != null) s.format = format;
        if (threads != null) s.threads = threads;
        s.validate(config != null ? config + " + options" : "options");
        return s;
    }

    CurationSource source(PrintStream err) {
        int given = (parquet.isEmpty() ? 0 : 1) + (imageFolder == null ? 0 : 1) + (hubRepo == null ? 0 : 1);
        if (given != 1) throw new PipelineException("give exactly one input: --parquet, --image-folder or --hub");
        if (imageFolder != null) return new ImageFolderSource(imageFolder, ClassLabels.wikiArt());
        if (!parquet.isEmpty()) return new ParquetShardSource(parquet, ClassLabels.wikiArt());
        HubHttp http = hub.http(hub.token(env, false), 6, Duration.ofMinutes(10));
        Path dir = cache != null ? cache : Path.of(System.getProperty("user.home"), ".cache", "impasto", "hub", hubRepo.replace('/', '_'));
        HubDownloader dl = new HubDownloader(http, hubRepo, hubRevision, dir, err);
        List<HubDownloader.RemoteFile> files = dl.list(hubDir).stream().filter(f -> f.path().endsWith(".parquet")).toList();
        if (files.isEmpty()) throw new PipelineException(hubRepo + ": no .parquet files under " + hubDir);
        List<HubDownloader.RemoteFile> chosen = HubDownloader.select(files, hubShards);
        err.println("fetching " + chosen.size() + " of " + files.size() + " shards into " + dir);
        return new ParquetShardSource(dl.fetchAll(chosen), ClassLabels.wikiArt());
    }
}
