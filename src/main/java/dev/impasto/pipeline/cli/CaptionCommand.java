package dev.impasto.pipeline.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.Secret;
import dev.impasto.pipeline.caption.CaptionBackend;
import dev.impasto.pipeline.caption.CaptionDataset;
import dev.impasto.pipeline.caption.CaptionJournal;
import dev.impasto.pipeline.caption.CaptionSettings;
import dev.impasto.pipeline.caption.CaptionStats;
import dev.impasto.pipeline.caption.Captioner;
import dev.impasto.pipeline.caption.GeminiBackend;
import dev.impasto.pipeline.caption.KeyPool;
import dev.impasto.pipeline.caption.OpenAiBackend;
import dev.impasto.pipeline.caption.TemplateBackend;
import dev.impasto.pipeline.caption.TriggerWords;
import dev.impasto.pipeline.curate.ClassLabels;
import dev.impasto.pipeline.curate.DatasetExport;
import dev.impasto.pipeline.image.Charts;
import dev.impasto.pipeline.parquet.ParquetIO;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "caption", sortOptions = false,
        description = "Captions a curated dataset with a vision-language model (Gemini or any OpenAI-compatible server: llama.cpp, vLLM, Ollama) or the offline template captioner. Captions describe content, not style; the trigger word goes at [trigger] or in front. Every answer is journaled as it arrives: rerun to resume.",
        footer = {"", "Examples:",
                "  GEMINI_API_KEY=... impasto caption --dataset curated --backend gemini --model gemini-2.5-flash --rpm 10 --trigger mnt_impr",
                "  impasto caption --dataset curated --backend openai --base-url http://localhost:11434/v1 --model qwen2.5vl:7b --trigger mnt_impr",
                "Exit status: 0 all captioned, 3 some images failed (reasons in report/caption_failures.jsonl), 2 bad input."})
public final class CaptionCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @Option(names = {"-d", "--dataset"}, required = true, paramLabel = "DIR",
            description = "Curated folder (with train/metadata.jsonl), a folder with metadata.jsonl, or a folder of images.")
    Path dataset;

    @Option(names = "--config", paramLabel = "FILE", description = "JSON file with any of the settings below, keyed by option name (e.g. {\"backend\": \"gemini\", \"model\": \"gemini-2.5-flash\", \"rpm\": 10}), plus max-malformed, retry-cap-ms, max-output-tokens, json-mode, trigger-separator, system-prompt and genre-prompts; options given here override it.")
    Path config;

    @Option(names = "--backend", paramLabel = "B", description = "gemini, openai (any OpenAI-compatible chat/completions server) or template (offline) (default: template).")
    String backend;

    @Option(names = "--model", paramLabel = "NAME", description = "Model name, e.g. gemini-2.5-flash or qwen2.5vl:7b.")
    String model;

    @Option(names = "--base-url", paramLabel = "URL", description = "gemini: API root (default https://generativelanguage.googleapis.com); openai: up to the version, e.g. http://localhost:11434/v1.")
    String baseUrl;

    @Option(names = "--api-key-env", paramLabel = "VAR", split = ",", description = "Environment variable(s) holding the key; a comma-separated value holds several keys (default: GEMINI_API_KEY,GOOGLE_API_KEY for gemini; OPENAI_API_KEY for openai).")
    List<String> apiKeyEnv;

    @Option(names = "--api-key-file", paramLabel = "FILE", description = "File with API keys, one per line (several keys share the load).")
    Path apiKeyFile;

    @Option(names = "--rpm", paramLabel = "N", description = "Requests per minute per key; 0 = unlimited (default: 10).")
    Double rpm;

    @Option(names = "--concurrency", paramLabel = "N", description = "Requests in flight at once (default: 4).")
    Integer concurrency;

    @Option(names = "--max-attempts", paramLabel = "N", description = "Tries per image on 429/5xx/timeouts before it is reported failed (default: 8).")
    Integer maxAttempts;

    @Option(names = "--timeout", paramLabel = "SECONDS", description = "Per-request timeout (default: 60).")
    Integer timeoutSeconds;

    @Option(names = "--retry-base-ms", paramLabel = "MS", description = "First backoff delay for 5xx/timeouts when the server gives none; doubles each retry, with jitter (default: 1000).")
    Long retryBaseMs;

    @Option(names = "--max-side", paramLabel = "PX", description = "Longest side of the image sent (default: 1024).")
    Integer maxSide;

    @Option(names = "--trigger", paramLabel = "WORD", description = "Trigger word put into every caption.")
    String trigger;

    @Option(names = "--trigger-mode", paramLabel = "M", description = "auto (at [trigger] if present, else in front), prepend, replace or none (default: auto).")
    String triggerMode;

    @Option(names = "--journal", paramLabel = "FILE", description = "Append-only answer journal (default: <dataset>/captions.jsonl).")
    Path journal;

    @Option(names = "--no-retry-failed", description = "Do not retry images that failed in an earlier run.")
    boolean noRetryFailed;

    Map<String, String> env = System.getenv();

    @Override
    public Integer call() throws Exception {
        PrintStream log = System.err;
        try {
            CaptionSettings s = settings();
            CaptionDataset ds = new CaptionDataset(dataset);
            CaptionBackend be = backend(s);
            KeyPool keys = new KeyPool(keys(s), be.needsKey() || !s.backend.equals("template") ? s.rpm : 0);
            Path journalFile = journal != null ? journal : dataset.resolve("captions.jsonl");
            Captioner.Result result;
            Map<String, CaptionJournal.Entry> entries;
            try (CaptionJournal j = new CaptionJournal(journalFile)) {
                var items = ds.items();
                if (noRetryFailed) {
                    Map<String, CaptionJournal.Entry> prev = j.entries();
                    items = items.stream().filter(it -> prev.get(it.id()) == null || prev.get(it.id()).ok()).toList();
                }
                result = new Captioner(be, keys, s, log).run(items, j);
                entries = j.entries();
            }
            TriggerWords.Mode mode = TriggerWords.Mode.parse(s.triggerMode, "option --trigger-mode");
            Map<String, String> text = new LinkedHashMap<>();
            List<String> raw = new ArrayList<>();
            List<ObjectNode> failures = new ArrayList<>();
            for (var it : ds.items()) {
                CaptionJournal.Entry e = entries.get(it.id());
                if (e != null && e.ok()) {
                    text.put(it.id(), TriggerWords.apply(e.caption(), s.trigger, mode, s.triggerSeparator));
                    raw.add(TriggerWords.strip(e.caption()));
                } else {
                    ObjectNode f = Json.object();
                    f.put("file_name", it.id());
                    f.put("reason", e == null ? "not attempted" : e.reason());
                    failures.add(f);
                }
            }
            ds.writeCaptions(text);
            Path root = ds.folder().getFileName().toString().equals("train") ? ds.folder().getParent() : ds.folder();
            Path parquet = root.resolve("data/train-00000-of-00001.parquet");
            if (Files.isRegularFile(parquet) && ds.folder().getFileName().toString().equals("train")) {
                ClassLabels labels;
                try (var r = ParquetIO.open(parquet)) {
                    labels = ClassLabels.fromHuggingface(r.getFileMetaData().getKeyValueMetaData().get(ClassLabels.HF_KEY), ClassLabels.wikiArt());
                }
                DatasetExport.toParquet(ds.folder(), parquet, labels);
            }
            Path report = root.resolve("report");
            Files.createDirectories(report);
            CaptionStats stats = new CaptionStats(raw);
            ObjectNode rj = stats.toJson();
            rj.put("images", ds.items().size());
            rj.put("failed", failures.size());
            rj.put("trigger", s.trigger);
            rj.put("backend", be.describe());
            Json.writePretty(report.resolve("captions.json"), rj);
            StringBuilder md = new StringBuilder("# Captions\n\n").append(be.describe()).append(", trigger `").append(s.trigger).append("` (")
                    .append(mode.name().toLowerCase()).append(")\n\n").append(stats.markdown());
            if (!failures.isEmpty()) md.append("\n").append(failures.size()).append(" image(s) have no caption: see caption_failures.jsonl.\n");
            md.append("\n![caption lengths](caption_lengths.png)\n");
            Files.writeString(report.resolve("captions.md"), md.toString());
            Files.write(report.resolve("caption_failures.jsonl"), failures.stream().map(Json::line).toList());
            Charts.histogram(report.resolve("caption_lengths.png"), "Caption length", "words",
                    Map.of("captions", java.util.Arrays.stream(stats.wordCounts).asDoubleStream().toArray()), 20);
            var out = spec.commandLine().getOut();
            out.println("captioned " + result.captioned() + " now, " + result.alreadyDone() + " earlier; " + failures.size() + " without caption"
                    + (failures.isEmpty() ? "" : " (reasons: " + report.resolve("caption_failures.jsonl") + ")"));
            out.flush();
            return failures.isEmpty() ? 0 : 3;
        } catch (PipelineException e) {
            spec.commandLine().getErr().println("caption: " + e.getMessage());
            spec.commandLine().getErr().flush();
            return 2;
        }
    }

    CaptionSettings settings() {
        CaptionSettings s = config != null ? CaptionSettings.load(config) : new CaptionSettings();
        if (backend != null) s.backend = backend;
        if (model != null) s.model = model;
        if (baseUrl != null) s.baseUrl = baseUrl;
        if (apiKeyEnv != null) s.apiKeyEnv = apiKeyEnv;
        if (apiKeyFile != null) s.apiKeyFile = apiKeyFile;
        if (rpm != null) s.rpm = rpm;
        if (concurrency != null) s.concurrency = concurrency;
        if (maxAttempts != null) s.maxAttempts = maxAttempts;
        if (timeoutSeconds != null) s.timeout = timeoutSeconds;
        if (maxSide != null) s.maxSide = maxSide;
        if (retryBaseMs != null) s.retryBaseMs = retryBaseMs;
        if (trigger != null) s.trigger = trigger;
        if (triggerMode != null) s.triggerMode = triggerMode;
        s.validate(config != null ? config + " + options" : "options");
        return s;
    }

    static CaptionBackend backend(CaptionSettings s) {
        Duration timeout = Duration.ofSeconds(s.timeout);
        return switch (s.backend) {
            case "gemini" -> new GeminiBackend(s.baseUrl != null ? s.baseUrl : "https://generativelanguage.googleapis.com", s.model,
                    s.maxOutputTokens, timeout);
            case "openai" -> new OpenAiBackend(s.baseUrl, s.model, s.maxOutputTokens, s.jsonMode, timeout);
            default -> new TemplateBackend();
        };
    }

    List<Secret> keys(CaptionSettings s) {
        if (s.backend.equals("template")) return List.of();
        List<String> vars = s.apiKeyEnv != null ? s.apiKeyEnv
                : s.backend.equals("gemini") ? List.of("GEMINI_API_KEY", "GOOGLE_API_KEY") : List.of("OPENAI_API_KEY");
        if (s.backend.equals("openai") && s.apiKeyFile == null && vars.stream().noneMatch(v -> env.get(v) != null && !env.get(v).isBlank()))
            return List.of(); // local servers usually take no key
        return Secret.resolveMany(s.apiKeyFile, vars, env, s.backend + " API key");
    }
}
