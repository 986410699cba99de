package dev.impasto.eval.cli;

import dev.impasto.api.ImageGenerator;
import dev.impasto.eval.ClipFeatures;
import dev.impasto.eval.EvalLora;
import dev.impasto.eval.EvalResult;
import dev.impasto.eval.EvalSettings;
import dev.impasto.eval.Evaluator;
import dev.impasto.eval.FeatureExtractor;
import dev.impasto.eval.HtmlReport;
import dev.impasto.eval.MarkdownReport;
import dev.impasto.eval.PaletteTextureFeatures;
import dev.impasto.eval.TrainingImages;
import dev.impasto.train.ToyWorld;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** `impasto eval`: base vs LoRA(s) on the same prompts and seeds, measured against the training pictures. */
@Command(name = "eval", sortOptions = false, mixinStandardHelpOptions = true,
        description = "Generates every prompt x seed with the base model (LoRA strength 0) and with each LoRA (at each --scales "
                + "strength), measures the pictures (colourfulness, near-black fraction, saturation, edge density, high-frequency "
                + "energy; KID on features; with --clip the CLIP score), compares them with the training pictures as distributions (Wasserstein-1) and writes "
                + "report.html (self-contained), report.json, a labelled grid per prompt, histograms and the pictures. Several "
                + "LoRAs (--runs a,b,c) are compared side by side. Needs at least one of --lora, --run or --runs; with the toy "
                + "model it needs nothing else.",
        footer = {"", "Examples:",
                "  impasto eval --run runs/toy-lora",
                "  impasto eval --runs runs/r8,runs/r16,runs/r32 --seeds 1-8 --out eval/ranks",
                "  impasto eval --run runs/impressionism --model flux1-dev.safetensors --encoders FLUX.1-dev --train-images curated --trigger mnt_impr \\",
                "      --prompt \"a [trigger] painting of a harbour at dusk\" --transfer-prompt \"a [trigger] painting of a robot\" \\",
                "      --clip clip-vit-large-patch14 --features clip"})
public final class EvalCommand implements Callable<Integer> {
    @Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--lora", paramLabel = "FILE", description = "A LoRA file (.safetensors); repeatable. A run.json beside it is read.")
    List<Path> loraFiles = new ArrayList<>();

    @Option(names = "--run", paramLabel = "DIR", description = "A training run folder (lora.safetensors, run.json, metrics.jsonl); repeatable.")
    List<Path> runDirs = new ArrayList<>();

    @Option(names = "--runs", paramLabel = "DIR", split = ",", description = "Several run folders, compared side by side.")
    List<Path> runList = new ArrayList<>();

    @Option(names = "--prompt", paramLabel = "TEXT", description = "A prompt (repeatable; default: the model's example prompts). [trigger] is replaced by --trigger.")
    List<String> prompts = new ArrayList<>();

    @Option(names = "--prompts-file", paramLabel = "FILE", description = "Prompts, one a line (# starts a comment).")
    Path promptsFile;

    @Option(names = "--transfer-prompt", paramLabel = "TEXT", description = "A style-transfer prompt: a subject outside the training genres (repeatable; default: none for the toy model, four unrelated subjects otherwise).")
    List<String> transferPrompts = new ArrayList<>();

    @Option(names = "--transfer-prompts-file", paramLabel = "FILE", description = "Style-transfer prompts, one a line.")
    Path transferPromptsFile;

    @Option(names = "--trigger", paramLabel = "WORD", description = "Trigger word substituted for [trigger] in the prompts.")
    String trigger = "";

    @Option(names = "--seeds", paramLabel = "LIST", defaultValue = "1-6", description = "Seeds: 1,2,3 or 1-8 (default: ${DEFAULT-VALUE}).")
    String seeds;

    @Option(names = "--steps", paramLabel = "N", description = "Sampling steps (default: the model's, 20 for the toy model).")
    Integer steps;

    @Option(names = "--guidance", paramLabel = "X", description = "Guidance (default: the model's).")
    Double guidance;

    @Option(names = "--size", paramLabel = "WxH", description = "Picture size, e.g. 1024x1024 or 1024 (default: the model's, 128 for the toy model).")
    String size;

    @Option(names = "--scales", paramLabel = "S", split = ",", description = "LoRA strengths to sample at, e.g. 0.5,0.75,1 (default: 1). The base (0) is always sampled.")
    List<Double> scales = new ArrayList<>();

    @Option(names = "--train-images", paramLabel = "DIR|toy:A|toy:B",
            description = "The training pictures to compare with: the dataset folder the cache was built from (train/ + metadata.jsonl) or toy:STYLE (default for the toy model: the run's toy style).")
    String trainImages;

    @Option(names = "--max-train-images", paramLabel = "N", defaultValue = "200", description = "Use at most N training pictures, a seeded sample (default: ${DEFAULT-VALUE}).")
    int maxTrainImages;

    @Option(names = "--features", paramLabel = "palette|clip|none", defaultValue = "palette",
            description = "Features for KID: palette (weight-free palette/texture histograms), clip (the --clip model's image embeddings) or none (default: ${DEFAULT-VALUE}).")
    String features;

    @Option(names = "--clip", paramLabel = "DIR|FILE|tiny-random",
            description = "A CLIP model for the CLIP score (prompt adherence, per picture) and for --features clip: openai/clip-vit-large-patch14's "
                    + "folder or its model.safetensors (the whole CLIPModel: text and vision towers with their projections). tiny-random: "
                    + "a miniature CLIP with random weights (tests: every code path, meaningless numbers). Runs on --device.")
    String clip;

    @Option(names = "--clip-tokenizer", paramLabel = "PATH",
            description = "The CLIP model's tokenizer (tokenizer.json, or vocab.json and merges.txt, or their folder) when it is not beside --clip.")
    Path clipTokenizer;

    @Option(names = "--analysis-size", paramLabel = "N", defaultValue = "0", description = "Shorter side the pictures are measured at, a power of two; 0 = from the size, at most 512 (default: ${DEFAULT-VALUE}).")
    int analysisSize;

    @Option(names = "--no-images", description = "Do not save every picture (grids and plots are still written).")
    boolean noImages;

    @Option(names = "--title", paramLabel = "TEXT", description = "Report title.")
    String title;

    @Option(names = "--out", paramLabel = "DIR", description = "Report folder (default: <run>/eval for one run, else eval).")
    Path out;

    @Mixin ModelOptions modelOptions = new ModelOptions();

    static final List<String> DEFAULT_TRANSFER_PROMPTS = List.of(
            "a red sports car parked on a wet street at night", "an astronaut floating above the Earth",
            "a robot reading a newspaper in a cafe", "a close-up of a smartphone on a wooden desk");

    @Override
    public Integer call() throws Exception {
        try {
            return run(spec.commandLine().getOut());
        } catch (IllegalArgumentException | UncheckedIOException e) {
            spec.commandLine().getErr().println("impasto eval: " + e.getMessage());
            return 2;
        }
    }

    static final String TINY_RANDOM = "tiny-random";

    /**
     * What is wrong with the feature and CLIP options, or null: the checks that need no model loaded, so that eval, and
     * sweep before its training, fail at once. {@code prefix} names the options as the command spells them ("--" for
     * eval, "--eval." for sweep).
     */
    static String clipOptionsProblem(String prefix, String features, String clip, String clipTokenizer) {
        String kind = features == null ? "palette" : features.toLowerCase(Locale.ROOT);
        if (!List.of("palette", "clip", "none").contains(kind)) return prefix + "features: palette, clip or none, got " + features;
        if (kind.equals("clip") && clip == null)
            return prefix + "features clip needs a CLIP model: give " + prefix + "clip (openai/clip-vit-large-patch14's folder or model.safetensors)";
        if (clip == null)
            return clipTokenizer == null ? null : prefix + "clip-tokenizer needs " + prefix + "clip (the CLIP model's weights)";
        if (!(clip.equalsIgnoreCase(TINY_RANDOM) || Files.exists(Path.of(clip))))
            return prefix + "clip " + clip + ": no such file or folder (give openai/clip-vit-large-patch14's folder or its model.safetensors, or tiny-random)";
        if (clipTokenizer != null && !Files.exists(Path.of(clipTokenizer))) return prefix + "clip-tokenizer " + clipTokenizer + ": no such file or folder";
        return null;
    }

    /** The --clip model, or null (options checked by clipOptionsProblem); opened before the generator so that a wrong file fails before minutes of model loading. */
    FeatureExtractor openClip() {
        if (clip == null) return null;
        if (clip.equalsIgnoreCase(TINY_RANDOM) && !Files.exists(Path.of(clip))) return ClipFeatures.tinyRandom(modelOptions.device, 1);
        Path p = Path.of(clip);
        try {
            return ClipFeatures.open(modelOptions.device, p, clipTokenizer);
        } catch (IOException e) {
            // a wrong file is a usage error like any other option's: one line naming it, not a stack trace
            throw new IllegalArgumentException("--clip: " + e.getMessage(), e);
        }
    }

    private int run(PrintWriter stdout) throws IOException {
        List<EvalLora> loras = new ArrayList<>();
        for (Path p : runDirs) loras.add(EvalLora.fromRun(p));
        for (Path p : runList) loras.add(EvalLora.fromRun(p));
        for (Path p : loraFiles) loras.add(EvalLora.fromFile(p));
        if (loras.isEmpty())
            throw new IllegalArgumentException("nothing to evaluate: give --lora FILE, --run DIR or --runs A,B,C (eval trains nothing; `impasto train` makes a run folder)");
        loras = uniqueNames(loras);
        for (EvalLora l : loras) {
            String preset = l.config("model.preset");
            if (modelOptions.toy() && preset != null && !preset.equals("flux-toy"))
                throw new IllegalArgumentException(l.name() + " was trained on " + preset + ", not the toy model: give --model with its base weights");
        }
        Map<String, Path> files = new LinkedHashMap<>();
        for (EvalLora l : loras) files.put(l.name(), l.file());
        Path outDir = out != null ? out : loras.size() == 1 && loras.getFirst().runDir() != null ? loras.getFirst().runDir().resolve("eval") : Path.of("eval");

        String problem = clipOptionsProblem("--", features, clip, clipTokenizer == null ? null : clipTokenizer.toString());
        if (problem != null) throw new IllegalArgumentException(problem);
        String featureKind = features.toLowerCase(Locale.ROOT);

        try (FeatureExtractor clipFeatures = openClip(); ImageGenerator gen = modelOptions.open(files, toyBaseOf(loras), System.err)) {
            ImageGenerator.Info info = gen.info();
            EvalSettings s = new EvalSettings();
            s.title = title != null ? title : loras.size() == 1 ? "impasto eval: " + loras.getFirst().name() : "impasto eval: " + String.join(" vs ", loras.stream().map(EvalLora::name).toList());
            s.prompts = new ArrayList<>(prompts);
            if (promptsFile != null) s.prompts.addAll(readLines(promptsFile));
            if (s.prompts.isEmpty()) s.prompts = new ArrayList<>(info.examplePrompts());
            s.transferPrompts = new ArrayList<>(transferPrompts);
            if (transferPromptsFile != null) s.transferPrompts.addAll(readLines(transferPromptsFile));
            if (s.transferPrompts.isEmpty() && !modelOptions.toy() && transferPromptsFile == null) s.transferPrompts = new ArrayList<>(DEFAULT_TRANSFER_PROMPTS);
            s.trigger = trigger;
            s.seeds = parseSeeds(seeds);
            s.steps = steps != null ? steps : info.defaultSteps();
            s.guidance = guidance != null ? guidance : info.defaultGuidance();
            int[] wh = size != null ? parseSize(size) : new int[] {info.defaultSize(), info.defaultSize()};
            s.width = wh[0];
            s.height = wh[1];
            if (!scales.isEmpty()) s.scales = new ArrayList<>(scales);
            s.analysisSize = analysisSize;
            s.saveImages = !noImages;
            s.command = new ArrayList<>(List.of("impasto", "eval"));
            s.command.addAll(spec.commandLine().getParseResult().originalArgs());
            List<String> problems = s.problems();
            if (!problems.isEmpty()) throw new IllegalArgumentException("invalid settings:\n  " + String.join("\n  ", problems));

            TrainingImages train = trainingImages(loras, s);
            FeatureExtractor kid = switch (featureKind) {
                case "palette" -> new PaletteTextureFeatures();
                case "clip" -> clipFeatures;
                default -> null;
            };
            prepareOut(outDir);
            stdout.printf(Locale.ROOT, "[impasto] eval: %d LoRA(s) x %d strength(s) + base, %d prompts (+%d transfer) x %d seeds at %dx%d, %d steps; %s%n",
                    loras.size(), s.scales.size(), s.prompts.size(), s.transferPrompts.size(), s.seeds.size(), s.width, s.height, s.steps, train.description());
            if (clipFeatures != null) stdout.println("[impasto] eval: CLIP score with " + clipFeatures.name() + (kid == clipFeatures ? ", also the KID features" : ""));
            EvalResult r = new Evaluator(gen, s, loras, train, kid, clipFeatures, outDir, System.err).run();
            r.writeJson(outDir.resolve("report.json"));
            Path html = HtmlReport.write(r, outDir);
            MarkdownReport.write(r, outDir);
            print(r, stdout);
            stdout.println("  report: " + html);
            stdout.println("  json:   " + outDir.resolve("report.json") + " (and report.md)");
            stdout.flush();
            return 0;
        }
    }

    static List<EvalLora> uniqueNames(List<EvalLora> in) {
        List<EvalLora> outList = new ArrayList<>();
        Map<String, Integer> seen = new LinkedHashMap<>();
        for (EvalLora l : in) {
            int n = seen.merge(l.name(), 1, Integer::sum);
            outList.add(n == 1 ? l : l.withName(l.name() + "-" + n));
        }
        return outList;
    }

    /** The toy base the runs were trained on: run.json's model.weights, else the run's sibling toy-base folder. */
    static Path toyBaseOf(List<EvalLora> loras) {
        for (EvalLora l : loras) {
            String w = l.config("model.weights");
            if (w != null && !w.isBlank()) {
                Path p = Path.of(w);
                return Files.isDirectory(p) ? p : p.toAbsolutePath().getParent();
            }
            if (l.runDir() != null) return l.runDir().toAbsolutePath().normalize().getParent().resolve("toy-base");
        }
        return null;
    }

    private TrainingImages trainingImages(List<EvalLora> loras, EvalSettings s) throws IOException {
        String src = trainImages;
        if (src == null) {
            if (!modelOptions.toy())
                throw new IllegalArgumentException("--train-images DIR is needed with real weights: the dataset folder the cache was built from (train/ + metadata.jsonl)");
            String style = loras.stream().map(l -> l.config("data.toyStyle")).filter(x -> x != null).findFirst().orElse("B");
            src = "toy:" + style;
        }
        if (src.startsWith("toy:")) {
            ToyWorld.Style st;
            try {
                st = ToyWorld.Style.valueOf(src.substring(4).toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--train-images " + src + ": the toy world has styles A and B");
            }
            int perClass = loras.stream().map(l -> l.config("data.toyPerClass")).filter(x -> x != null).map(Integer::parseInt).findFirst().orElse(32);
            return TrainingImages.toy(st, Math.min(maxTrainImages, perClass * ToyWorld.CLASSES.length), s.width, s.height);
        }
        return TrainingImages.folder(Path.of(src), maxTrainImages, 1234, System.err);
    }

    /** A report folder of ours (it has report.json) is refreshed: its old pictures, grids and plots go first. */
    private static void prepareOut(Path dir) throws IOException {
        if (Files.isRegularFile(dir.resolve("report.json")))
            for (String sub : List.of("images", "grids", "plots")) {
                Path d = dir.resolve(sub);
                if (!Files.isDirectory(d)) continue;
                try (Stream<Path> w = Files.walk(d)) {
                    for (Path p : w.sorted(Comparator.reverseOrder()).toList())
                        if (Files.isDirectory(p) || p.getFileName().toString().endsWith(".png")) Files.deleteIfExists(p);
                }
            }
        Files.createDirectories(dir);
    }

    static List<String> readLines(Path f) throws IOException {
        if (!Files.isRegularFile(f)) throw new IllegalArgumentException(f + ": no such prompts file");
        return Files.readAllLines(f).stream().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("#")).toList();
    }

    /** "1,2,3", "1-8" or a mix ("1-4,10"). */
    public static List<Long> parseSeeds(String spec) {
        List<Long> outList = new ArrayList<>();
        for (String part : spec.split(",")) {
            String p = part.strip();
            if (p.isEmpty()) continue;
            try {
                int dash = p.indexOf('-', 1);
                if (dash > 0) {
                    long a = Long.parseLong(p.substring(0, dash).strip()), b = Long.parseLong(p.substring(dash + 1).strip());
                    if (b < a || b - a > 10_000) throw new IllegalArgumentException("--seeds: bad range " + p);
                    for (long x = a; x <= b; x++) outList.add(x);
                } else outList.add(Long.parseLong(p));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--seeds: \"" + p + "\" is not a seed or a range like 1-8");
            }
        }
        return outList;
    }

    /** "1024x768" or "1024". */
    public static int[] parseSize(String spec) {
        String[] p = spec.toLowerCase(Locale.ROOT).split("x");
        try {
            if (p.length == 1) return new int[] {Integer.parseInt(p[0].strip()), Integer.parseInt(p[0].strip())};
            if (p.length == 2) return new int[] {Integer.parseInt(p[0].strip()), Integer.parseInt(p[1].strip())};
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("--size: expected WIDTHxHEIGHT or SIZE, got \"" + spec + "\"");
    }

    static void print(EvalResult r, PrintWriter o) {
        o.println("[impasto] eval done in " + String.format(Locale.ROOT, "%.1f s", r.seconds()) + ":");
        o.printf(Locale.ROOT, "  %-28s %9s %12s%s%s%n", "set", "gap closed", "distance(SD)", r.kidFeatures() == null ? "" : "         KID",
                r.clipModel() == null ? "" : "  CLIP score");
        for (EvalResult.SetResult s : r.sets()) {
            boolean train = "train".equals(s.kind());
            o.printf(Locale.ROOT, "  %-28s %9s %12s%s%s%n", s.name(), s.styleScore() == null ? "-" : String.format(Locale.ROOT, "%.3f", s.styleScore()),
                    s.distanceSd() == null ? "-" : String.format(Locale.ROOT, "%.3f", s.distanceSd()),
                    r.kidFeatures() == null ? "" : s.kid() == null || train ? String.format(Locale.ROOT, "   %9s", "-") : String.format(Locale.ROOT, "   %9.4f", s.kid().mean()),
                    r.clipModel() == null ? "" : s.clipScore() == null ? String.format(Locale.ROOT, "  %10s", "-") : String.format(Locale.ROOT, "  %10.4f", s.clipScore()));
        }
    }
}
