package dev.impasto.eval;

import dev.impasto.api.ImageGenerator;
import dev.impasto.image.LatentImages;
import dev.impasto.image.Png;
import dev.impasto.pipeline.image.Charts;
import dev.impasto.pipeline.image.ImageOps;
import dev.impasto.util.ProgressBar;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Measures LoRAs against their base and their training pictures: generates every prompt x seed with the base (LoRA
 * strength 0) and with each LoRA at each strength, on the same seeds, measures every picture (pixel statistics;
 * KID and CLIP score when extractors are given), compares the distributions and writes the pictures, a labelled grid
 * per prompt and the plots under the output folder. {@link HtmlReport} and {@link EvalResult#writeJson} turn the
 * result into report.html and report.json.
 */
public final class Evaluator {
    static final int GRID_CELL = 256, MAX_HISTOGRAM_SERIES = 6;
    private static final double TINY = 1e-12;

    private final ImageGenerator generator;
    private final EvalSettings settings;
    private final List<EvalLora> loras;
    private final TrainingImages training;
    private final FeatureExtractor kidFeatures, clip;
    private final Path out;
    private final PrintStream log;

    /** kidFeatures and clip may be null (no KID, no CLIP score); clip must embed text ({@link FeatureExtractor#hasText}). */
    public Evaluator(ImageGenerator generator, EvalSettings settings, List<EvalLora> loras, TrainingImages training,
                     FeatureExtractor kidFeatures, FeatureExtractor clip, Path out, PrintStream log) {
        List<String> p = settings.problems();
        if (loras.isEmpty()) p.add("give at least one LoRA to evaluate");
        if (clip != null && !clip.hasText()) p.add("clip: " + clip.name() + " cannot embed prompts");
        Set<String> names = new LinkedHashSet<>();
        for (EvalLora l : loras) {
            if (!names.add(l.name())) p.add("two LoRAs are named \"" + l.name() + "\": give them different names");
            if (!generator.loras().contains(l.name())) p.add("the generator does not offer LoRA \"" + l.name() + "\" (it has " + generator.loras() + ")");
        }
        if (!p.isEmpty()) throw new IllegalArgumentException("cannot evaluate:\n  " + String.join("\n  ", p));
        this.generator = generator;
        this.settings = settings;
        this.loras = loras;
        this.training = training;
        this.kidFeatures = kidFeatures;
        this.clip = clip;
        this.out = out;
        this.log = log;
    }

    /** One set of pictures to generate: the base (lora null) or a LoRA at a strength. */
    record Spec(String name, String lora, double scale) {
        String folder() {
            return name.replaceAll("[^A-Za-z0-9._-]+", "_");
        }
    }

    /** What was generated for one set: per-metric values, features, CLIP scores and the grid thumbnails. */
    private static final class Gathered {
        final Map<String, List<Double>> metrics = new LinkedHashMap<>();
        final List<float[]> features = new ArrayList<>();
        final List<Double> clipScores = new ArrayList<>();
        final Map<String, List<Double>> clipByPrompt = new LinkedHashMap<>();
        final Map<String, BufferedImage> thumbs = new HashMap<>();

        double[] values(String key) {
            return metrics.getOrDefault(key, List.of()).stream().mapToDouble(Double::doubleValue).toArray();
        }
    }

    List<Spec> specs() {
        List<Spec> s = new ArrayList<>();
        s.add(new Spec("base", null, 0));
        for (EvalLora l : loras)
            for (double sc : settings.scales) s.add(new Spec(sc == 1.0 ? l.name() : l.name() + " x" + fmtScale(sc), l.name(), sc));
        return s;
    }

    static String fmtScale(double s) {
        return s == Math.rint(s) ? String.format(Locale.ROOT, "%.1f", s) : String.valueOf(s);
    }

    public EvalResult run() throws IOException {
        long t0 = System.nanoTime();
        Files.createDirectories(out);
        int analysis = settings.analysisSize > 0 ? settings.analysisSize : ImageMetrics.analysisSize(Math.min(settings.width, settings.height), ImageMetrics.MAX_ANALYSIS_SIZE);
        List<Spec> specs = specs();
        ImageGenerator.Info info = generator.info();

        // the reference: the training pictures
        Gathered train = new Gathered();
        for (TrainingImages.Item it : training.items())
            ImageMetrics.measure(it.image(), analysis).forEach((k, v) -> train.metrics.computeIfAbsent(k, x -> new ArrayList<>()).add(v));
        if (kidFeatures != null) train.features.addAll(List.of(kidFeatures.images(training.items().stream().map(TrainingImages.Item::image).toList())));

        List<EvalResult.ImageResult> images = new ArrayList<>();
        Map<String, Gathered> inDomain = new LinkedHashMap<>(), transfer = new LinkedHashMap<>();
        Map<String, float[]> textEmb = new HashMap<>();
        int total = specs.size() * (settings.prompts.size() + settings.transferPrompts.size()) * settings.seeds.size();
        try (ProgressBar bar = new ProgressBar("eval", total, "img")) {
            for (Spec sp : specs) {
                bar.status(sp.name);
                for (boolean tr : new boolean[] {false, true}) {
                    List<String> prompts = tr ? settings.transferPrompts : settings.prompts;
                    if (prompts.isEmpty()) continue;
                    Gathered g = (tr ? transfer : inDomain).computeIfAbsent(sp.name, k -> new Gathered());
                    for (int pi = 0; pi < prompts.size(); pi++) {
                        String prompt = settings.expand(prompts.get(pi));
                        for (long seed : settings.seeds) {
                            ImageGenerator.Result r = generator.generate(new ImageGenerator.Request(prompt, seed, settings.steps, settings.guidance,
                                    settings.width, settings.height, sp.lora, sp.lora == null ? 0 : sp.scale), null);
                            Map<String, Double> m = ImageMetrics.measure(r.image(), analysis);
                            m.forEach((k, v) -> g.metrics.computeIfAbsent(k, x -> new ArrayList<>()).add(v));
                            // with --features clip the KID features are the CLIP image embeddings: computed once
                            float[] clipImage = clip == null ? null : clip.image(r.image());
                            if (kidFeatures != null) g.features.add(kidFeatures == clip ? clipImage : kidFeatures.image(r.image()));
                            Double cs = null;
                            if (clip != null) {
                                cs = ClipScore.score(clipImage, textEmb.computeIfAbsent(prompt, clip::text));
                                g.clipScores.add(cs);
                                g.clipByPrompt.computeIfAbsent(prompt, x -> new ArrayList<>()).add(cs);
                            }
                            String file = null;
                            if (settings.saveImages) {
                                file = "images/" + sp.folder() + "/" + (tr ? "t" : "p") + String.format(Locale.ROOT, "%02d", pi) + "-s" + seed + ".png";
                                Png.write(r.image(), out.resolve(file), r.settings());
                            }
                            g.thumbs.put(pi + "/" + seed, ImageOps.fit(r.image(), GRID_CELL));
                            images.add(new EvalResult.ImageResult(sp.name, prompt, tr, seed, file, m, cs, r.millis()));
                            bar.step(1);
                        }
                    }
                }
            }
        }

        List<EvalResult.SetResult> sets = new ArrayList<>();
        sets.add(summarise("training", "train", null, 0, train, train, null));
        for (Spec sp : specs) sets.add(summarise(sp.name, sp.lora == null ? "base" : "lora", sp.lora, sp.scale, inDomain.get(sp.name), train, inDomain.get("base")));
        List<EvalResult.SetResult> transferSets = new ArrayList<>();
        if (!settings.transferPrompts.isEmpty())
            for (Spec sp : specs) transferSets.add(summarise(sp.name, sp.lora == null ? "base" : "lora", sp.lora, sp.scale, transfer.get(sp.name), train, transfer.get("base")));

        List<EvalResult.Figure> grids = writeGrids(specs, inDomain, transfer);
        List<EvalResult.Figure> plots = writePlots(specs, sets, train, inDomain);

        List<String> compared = comparedFields();
        List<EvalResult.LoraInfo> li = new ArrayList<>();
        for (EvalLora l : loras) {
            Map<String, String> cfg = new LinkedHashMap<>();
            for (String f : compared) cfg.put(f, l.config(f));
            li.add(new EvalResult.LoraInfo(l.name(), l.file().toString(), l.runDir() == null ? null : l.runDir().toString(), cfg, l.finalLoss()));
        }
        List<EvalResult.MetricInfo> metrics = ImageMetrics.ALL.stream().map(m -> new EvalResult.MetricInfo(m.key, m.label, m.description)).toList();
        List<String> notes = new ArrayList<>();
        if (kidFeatures == null) notes.add("KID: no image feature extractor was given.");
        else if (kidFeatures instanceof PaletteTextureFeatures)
            notes.add("KID is computed on weight-free palette/texture histograms: it compares colour and texture distributions only and is not comparable with KID on Inception or CLIP features.");
        if (clip == null) notes.add("CLIP score: no CLIP model was given (--clip).");
        if (settings.transferPrompts.isEmpty()) notes.add("Style transfer: no transfer prompts were given.");
        return new EvalResult(EvalResult.FORMAT, 1, settings.title, Instant.now().toString(), (System.nanoTime() - t0) / 1e9, info.model(), info.backend(),
                settings, analysis, training.description(), training.genres(), li, compared, metrics, sets, transferSets, images,
                kidFeatures == null ? null : kidFeatures.name(), clip == null ? null : clip.name(), grids, plots, notes);
    }

    private EvalResult.SetResult summarise(String name, String kind, String lora, double scale, Gathered g, Gathered train, Gathered base) {
        Map<String, Distributions.Summary> summary = new LinkedHashMap<>();
        Map<String, Double> w1t = new LinkedHashMap<>(), w1sd = new LinkedHashMap<>(), w1b = new LinkedHashMap<>(), gap = new LinkedHashMap<>();
        double gapSum = 0, sdSum = 0;
        int gapN = 0, sdN = 0;
        for (ImageMetrics.Metric m : ImageMetrics.ALL) {
            double[] v = g.values(m.key), t = train.values(m.key);
            summary.put(m.key, Distributions.summary(v));
            double w = Distributions.wasserstein1(v, t);
            w1t.put(m.key, w);
            double sd = Distributions.summary(t).std();
            Double wsd = sd > TINY ? w / sd : null;
            w1sd.put(m.key, wsd);
            if (wsd != null) {
                sdSum += wsd;
                sdN++;
            }
            if (base != null && !"train".equals(kind)) {
                w1b.put(m.key, Distributions.wasserstein1(v, base.values(m.key)));
                double wb = Distributions.wasserstein1(base.values(m.key), t);
                Double gc = wb > TINY ? 1 - w / wb : null;
                gap.put(m.key, gc);
                if (gc != null) {
                    gapSum += gc;
                    gapN++;
                }
            }
        }
        Kid.Result kid = null;
        if (kidFeatures != null && g.features.size() >= 2 && train.features.size() >= 2)
            kid = Kid.estimate(g.features.toArray(float[][]::new), train.features.toArray(float[][]::new), settings.kidSubsets, settings.kidSubsetSize, 1234);
        Double cs = null;
        Distributions.Summary csSummary = null;
        Map<String, Double> csByPrompt = null;
        if (!g.clipScores.isEmpty()) {
            csSummary = Distributions.summary(g.clipScores.stream().mapToDouble(Double::doubleValue).toArray());
            cs = csSummary.mean();
            csByPrompt = new LinkedHashMap<>();
            for (var e : g.clipByPrompt.entrySet()) csByPrompt.put(e.getKey(), e.getValue().stream().mapToDouble(Double::doubleValue).average().orElseThrow());
        }
        return new EvalResult.SetResult(name, kind, lora, scale, g.values(ImageMetrics.Metric.COLOURFULNESS.key).length, summary, w1t, w1sd, w1b, gap,
                gapN == 0 ? null : gapSum / gapN, sdN == 0 ? null : sdSum / sdN, kid, cs, csSummary, csByPrompt);
    }

    /** The run.json fields the comparison shows: the usual suspects, plus every field whose value differs between the runs. */
    List<String> comparedFields() {
        List<String> f = new ArrayList<>(List.of("lora.rank", "lora.alpha", "optimizer.lr", "training.steps", "training.batchSize"));
        List<EvalLora> withCfg = loras.stream().filter(l -> l.runConfig() != null).toList();
        if (withCfg.size() >= 2) {
            Set<String> leaves = new LinkedHashSet<>();
            collectLeaves(withCfg.getFirst().runConfig(), "", leaves);
            for (String leaf : leaves) {
                if (f.contains(leaf) || leaf.equals("name")) continue;
                String first = withCfg.getFirst().config(leaf);
                for (EvalLora l : withCfg)
                    if (!java.util.Objects.equals(first, l.config(leaf))) {
                        f.add(leaf);
                        break;
                    }
            }
        }
        return f;
    }

    private static void collectLeaves(com.fasterxml.jackson.databind.JsonNode n, String prefix, Set<String> out) {
        n.properties().forEach(e -> {
            String path = prefix + e.getKey();
            if (e.getValue().isObject() && !path.equals("lora.blockRanks")) collectLeaves(e.getValue(), path + ".", out);
            else out.add(path);
        });
    }

    private List<EvalResult.Figure> writeGrids(List<Spec> specs, Map<String, Gathered> inDomain, Map<String, Gathered> transfer) throws IOException {
        List<EvalResult.Figure> figs = new ArrayList<>();
        List<String> cols = settings.seeds.stream().map(s -> "seed " + s).toList();
        for (boolean tr : new boolean[] {false, true}) {
            List<String> prompts = tr ? settings.transferPrompts : settings.prompts;
            for (int pi = 0; pi < prompts.size(); pi++) {
                List<List<BufferedImage>> rows = new ArrayList<>();
                List<String> labels = new ArrayList<>();
                for (Spec sp : specs) {
                    Gathered g = (tr ? transfer : inDomain).get(sp.name);
                    List<BufferedImage> row = new ArrayList<>();
                    for (long seed : settings.seeds) row.add(g.thumbs.get(pi + "/" + seed));
                    rows.add(row);
                    labels.add(sp.name);
                }
                String prompt = settings.expand(prompts.get(pi));
                String file = "grids/" + (tr ? "transfer-" : "prompt-") + String.format(Locale.ROOT, "%02d", pi) + "-" + slug(prompt) + ".png";
                Png.write(LatentImages.grid(rows, labels, cols, (tr ? "style transfer: " : "") + "\"" + prompt + "\""), out.resolve(file),
                        Map.of("prompt", prompt, "seeds", settings.seeds.toString(), "Software", "impasto"));
                figs.add(new EvalResult.Figure(file, (tr ? "Style transfer: " : "") + "\"" + prompt + "\" — rows: base and each LoRA, columns: seeds"));
            }
        }
        // a strip of training pictures for reference
        List<BufferedImage> strip = new ArrayList<>();
        for (int i = 0; i < Math.min(8, training.items().size()); i++) strip.add(ImageOps.fit(training.items().get(i).image(), GRID_CELL));
        Png.write(LatentImages.grid(List.of(strip), null, null, "training pictures (" + training.items().size() + " used)"), out.resolve("grids/training.png"), Map.of("Software", "impasto"));
        figs.add(new EvalResult.Figure("grids/training.png", "Training pictures: " + training.description()));
        return figs;
    }

    private List<EvalResult.Figure> writePlots(List<Spec> specs, List<EvalResult.SetResult> sets, Gathered train, Map<String, Gathered> inDomain) throws IOException {
        Files.createDirectories(out.resolve("plots"));
        List<EvalResult.Figure> figs = new ArrayList<>();
        // histograms: training, base and each LoRA at strength 1 (or its first strength)
        List<Spec> shown = new ArrayList<>();
        shown.add(specs.getFirst());
        for (EvalLora l : loras) {
            Spec pick = null;
            for (Spec s : specs) if (l.name().equals(s.lora) && (pick == null || s.scale == 1.0)) pick = s;
            if (pick != null && shown.size() < MAX_HISTOGRAM_SERIES - 1) shown.add(pick);
        }
        for (ImageMetrics.Metric m : ImageMetrics.ALL) {
            Map<String, double[]> series = new LinkedHashMap<>();
            series.put("training", train.values(m.key));
            for (Spec s : shown) series.put(s.name, inDomain.get(s.name).values(m.key));
            String file = "plots/hist-" + m.key + ".png";
            Charts.histogram(out.resolve(file), m.label + ": training vs base vs LoRA", m.label, series, 20, true);
            figs.add(new EvalResult.Figure(file, m.label + " — " + m.description));
        }
        if (clip != null) {
            Map<String, double[]> series = new LinkedHashMap<>();
            for (Spec s : shown) series.put(s.name, inDomain.get(s.name).clipScores.stream().mapToDouble(Double::doubleValue).toArray());
            Charts.histogram(out.resolve("plots/hist-clip-score.png"), "CLIP score: base vs LoRA", "CLIP score", series, 20, true);
            figs.add(new EvalResult.Figure("plots/hist-clip-score.png", "CLIP score — 2.5 max(cos(image, prompt), 0) with " + clip.name()
                    + ": how well each picture follows its prompt (higher is closer)"));
        }
        Map<String, Double> score = new LinkedHashMap<>();
        for (EvalResult.SetResult s : sets) if ("lora".equals(s.kind()) && s.styleScore() != null) score.put(s.name(), s.styleScore());
        if (!score.isEmpty()) {
            Charts.bars(out.resolve("plots/style-score.png"), "Style gap closed (mean over metrics; 1 = matches training, 0 = base)", "gap closed", score);
            figs.add(new EvalResult.Figure("plots/style-score.png", "Style gap closed per LoRA: 1 - W1(LoRA, training) / W1(base, training), averaged over the metrics"));
        }
        if (settings.scales.size() > 1) {
            Map<String, double[][]> lines = new LinkedHashMap<>();
            EvalResult.SetResult base = sets.stream().filter(s -> "base".equals(s.kind())).findFirst().orElseThrow();
            for (EvalLora l : loras) {
                List<EvalResult.SetResult> mine = new ArrayList<>();
                mine.add(base);
                for (EvalResult.SetResult s : sets) if (l.name().equals(s.lora())) mine.add(s);
                mine.sort((a, b) -> Double.compare(a.scale(), b.scale()));
                double[][] xy = new double[2][mine.size()];
                for (int i = 0; i < mine.size(); i++) {
                    xy[0][i] = mine.get(i).scale();
                    xy[1][i] = mine.get(i).distanceSd() == null ? Double.NaN : mine.get(i).distanceSd();
                }
                lines.put(l.name(), xy);
            }
            Charts.line(out.resolve("plots/scale-sweep.png"), "Distance to the training distribution by LoRA strength", "LoRA strength",
                    "mean W1 to training (training SDs)", lines);
            figs.add(new EvalResult.Figure("plots/scale-sweep.png", "Mean Wasserstein-1 distance to the training pictures (in training standard deviations) by LoRA strength; strength 0 is the base"));
        }
        return figs;
    }

    static String slug(String s) {
        String t = s.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "-").replaceAll("(^-|-$)", "");
        if (t.length() > 40) t = t.substring(0, 40).replaceAll("-$", "");
        return t.isEmpty() ? "prompt" : t;
    }
}
