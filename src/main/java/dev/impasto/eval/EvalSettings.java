package dev.impasto.eval;

import java.util.ArrayList;
import java.util.List;

/** What an evaluation generates and how it measures; written into report.json as the run's settings. */
public final class EvalSettings {
    public String title = "impasto eval";
    /** In-domain prompts: subjects like the training set's. {@code [trigger]} is replaced by {@link #trigger}. */
    public List<String> prompts = new ArrayList<>();
    /** Style-transfer prompts: subjects outside the training genres (the style should carry over to them). */
    public List<String> transferPrompts = new ArrayList<>();
    public String trigger = "";
    public List<Long> seeds = new ArrayList<>(List.of(1L, 2L, 3L, 4L, 5L, 6L));
    public int steps = 20;
    public double guidance = 1.0;
    public int width = 128;
    public int height = 128;
    /** LoRA strengths to sample at (the base, strength 0, is always sampled). */
    public List<Double> scales = new ArrayList<>(List.of(1.0));
    /** Shorter side pictures are measured at; 0 = a power of two up to 512 from the generation size. */
    public int analysisSize = 0;
    public boolean saveImages = true;
    public int kidSubsets = Kid.DEFAULT_SUBSETS;
    public int kidSubsetSize = Kid.DEFAULT_SUBSET_SIZE;
    /** The command line that produced the report (informational). */
    public List<String> command = new ArrayList<>();

    /** The prompt as sent to the model: the placeholder replaced by the trigger word (or dropped). */
    public String expand(String prompt) {
        String t = trigger == null ? "" : trigger.trim();
        return prompt.replace("[trigger]", t).replaceAll("\\s{2,}", " ").replaceAll("^[\\s,]+", "").trim();
    }

    /** Every problem with these settings, each naming its option; empty when usable. */
    public List<String> problems() {
        List<String> p = new ArrayList<>();
        if (prompts.isEmpty()) p.add("prompts: give at least one prompt");
        if (seeds.isEmpty()) p.add("seeds: give at least one seed");
        if (prompts.size() * seeds.size() < 2) p.add("prompts x seeds: at least 2 pictures a set are needed to compare distributions");
        if (scales.isEmpty()) p.add("scales: give at least one LoRA strength");
        for (double s : scales) if (!(s > 0 && s <= 4)) p.add("scales: each strength must be in (0, 4], got " + s);
        if (steps < 1 || steps > 200) p.add("steps: must be in 1..200, got " + steps);
        if (width < 16 || height < 16 || width % 16 != 0 || height % 16 != 0) p.add("size: width and height must be multiples of 16, got " + width + "x" + height);
        if (analysisSize < 0 || (analysisSize > 0 && Integer.bitCount(analysisSize) != 1)) p.add("analysisSize: 0 (auto) or a power of two, got " + analysisSize);
        if (kidSubsets < 1) p.add("kidSubsets: must be >= 1");
        if (kidSubsetSize < 2) p.add("kidSubsetSize: must be >= 2");
        return p;
    }
}
