package dev.impasto.pipeline.caption;

import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Captioning settings; a JSON config file uses the CLI option names as keys. */
public final class CaptionSettings {
    /** gemini, openai or template. */
    public String backend = "template";
    public String model;
    public String baseUrl;
    /** Environment variables tried for the API key(s), in order; a comma-separated value holds several keys. */
    public List<String> apiKeyEnv;
    /** File with one API key per line. */
    public Path apiKeyFile;
    /** Requests per minute per key; 0 = no limit. */
    public double rpm = 10;
    public int concurrency = 4;
    public int maxAttempts = 8;
    /** Extra tries when the answer is not the JSON asked for. */
    public int maxMalformed = 2;
    /** Per-request timeout in seconds. */
    public int timeout = 60;
    public long retryBaseMs = 1000;
    public long retryCapMs = 120_000;
    public int maxOutputTokens = 300;
    /** Longest side of the image sent; inline requests must stay under 20 MB. */
    public int maxSide = 1024;
    public boolean jsonMode = true;
    public String trigger;
    public String triggerMode = "auto";
    public String triggerSeparator = ", ";
    public String systemPrompt;
    public Map<String, String> genrePrompts = new LinkedHashMap<>();

    public static CaptionSettings load(Path file) {
        CaptionSettings s = Json.readSettings(file, CaptionSettings.class, "caption config");
        s.validate(file.toString());
        return s;
    }

    public void validate(String where) {
        if (!List.of("gemini", "openai", "template").contains(backend))
            throw new PipelineException(where + ": field 'backend' is '" + backend + "'; use gemini, openai or template");
        if (!backend.equals("template") && (model == null || model.isBlank()))
            throw new PipelineException(where + ": field 'model' is required for the " + backend + " backend (e.g. "
                    + (backend.equals("gemini") ? "gemini-2.5-flash" : "qwen2.5vl:7b") + ")");
        if (backend.equals("openai") && (baseUrl == null || baseUrl.isBlank()))
            throw new PipelineException(where + ": field 'base-url' is required for the openai backend (e.g. http://localhost:11434/v1)");
        if (rpm < 0) throw new PipelineException(where + ": field 'rpm' is " + rpm + "; must be >= 0 (0 = unlimited)");
        if (concurrency < 1) throw new PipelineException(where + ": field 'concurrency' is " + concurrency + "; must be >= 1");
        if (maxAttempts < 1) throw new PipelineException(where + ": field 'max-attempts' is " + maxAttempts + "; must be >= 1");
        if (maxMalformed < 0) throw new PipelineException(where + ": field 'max-malformed' must be >= 0");
        if (timeout < 1) throw new PipelineException(where + ": field 'timeout' is " + timeout + " (seconds); must be >= 1");
        if (maxOutputTokens < 16) throw new PipelineException(where + ": field 'max-output-tokens' is " + maxOutputTokens + "; must be >= 16");
        if (maxSide < 64) throw new PipelineException(where + ": field 'max-side' is " + maxSide + "; must be >= 64");
        if (retryBaseMs < 0 || retryCapMs < retryBaseMs)
            throw new PipelineException(where + ": fields 'retry-base-ms'/'retry-cap-ms' must satisfy 0 <= base <= cap");
        TriggerWords.Mode.parse(triggerMode, where + " field 'trigger-mode'");
    }
}
