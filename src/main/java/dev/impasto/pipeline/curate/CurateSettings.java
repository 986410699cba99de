package dev.impasto.pipeline.curate;

import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What to pick. A JSON config file uses the CLI option names as keys ({@code "min-side": 512,
 * "quotas": {"landscape": 300}}); command-line options override it. Genres and styles are ClassLabel
 * names or ids.
 */
public final class CurateSettings {
    /** Styles to keep; empty keeps every style. */
    public List<String> styles = new ArrayList<>(List.of("Impressionism"));
    /** Genre -> number of images; genres not listed are rejected. */
    public Map<String, Integer> quotas = new LinkedHashMap<>(Map.of());
    /** Genre -> label written to the dataset (e.g. cityscape -> urban); unlisted genres keep their name. */
    public Map<String, String> rename = new LinkedHashMap<>();
    public int minSide = 512;
    public double maxAspect = 2.0;
    public double minBytesPerPixel = 0.1;
    public long maxPixels = 40_000_000L;
    /** Hamming distance of 64-bit pHashes at or under which two images are the same picture; negative turns dedupe off. */
    public int dedupeDistance = 6;
    public long seed = 1234;
    /** imagefolder, or both (imagefolder + parquet). train/ is always written: captioning reads and updates it. */
    public String format = "both";
    public int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
    /** Thumbnails per genre on the contact sheets. */
    public int contactSheetMax = 300;

    public CurateSettings() {
        quotas.put("landscape", 300);
        quotas.put("portrait", 300);
        quotas.put("cityscape", 200);
        quotas.put("still_life", 200);
    }

    public static CurateSettings load(Path file) {
        CurateSettings s = Json.readSettings(file, CurateSettings.class, "curate config");
        s.validate(file.toString());
        return s;
    }

    /** @param where the file or "options", named in the messages */
    public void validate(String where) {
        if (quotas == null || quotas.isEmpty()) throw new PipelineException(where + ": field 'quotas' is empty; give at least one genre with a count");
        quotas.forEach((g, n) -> {
            if (n == null || n < 0) throw new PipelineException(where + ": field 'quotas' genre '" + g + "' has count " + n + "; must be >= 0");
        });
        if (minSide < 1) throw new PipelineException(where + ": field 'min-side' is " + minSide + "; must be >= 1");
        if (!(maxAspect >= 1)) throw new PipelineException(where + ": field 'max-aspect' is " + maxAspect + "; must be >= 1 (2 means 2:1)");
        if (!(minBytesPerPixel >= 0)) throw new PipelineException(where + ": field 'min-bytes-per-pixel' is " + minBytesPerPixel + "; must be >= 0");
        if (maxPixels < 1) throw new PipelineException(where + ": field 'max-pixels' is " + maxPixels + "; must be >= 1");
        if (dedupeDistance > 32) throw new PipelineException(where + ": field 'dedupe-distance' is " + dedupeDistance + "; over 32 would call unrelated images duplicates");
        if (!List.of("imagefolder", "both").contains(format))
            throw new PipelineException(where + ": field 'format' is '" + format + "'; use imagefolder or both (imagefolder + parquet)");
        if (threads < 1) throw new PipelineException(where + ": field 'threads' is " + threads + "; must be >= 1");
        if (styles == null) styles = new ArrayList<>();
        if (rename == null) rename = new LinkedHashMap<>();
    }

    /** Parses "landscape=300,portrait=300" into a quota map. */
    public static Map<String, Integer> parseQuotas(String spec) {
        Map<String, Integer> out = new LinkedHashMap<>();
        for (String part : spec.split(",")) {
            if (part.isBlank()) continue;
            String[] kv = part.split("=", 2);
            if (kv.length != 2) throw new PipelineException("option --quota: '" + part + "' is not genre=count");
            try {
                out.put(kv[0].strip(), Integer.parseInt(kv[1].strip()));
            } catch (NumberFormatException e) {
                throw new PipelineException("option --quota: count '" + kv[1] + "' for '" + kv[0] + "' is not a whole number");
            }
        }
        return out;
    }
}
