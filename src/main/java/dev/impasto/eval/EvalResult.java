package dev.impasto.eval;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.impasto.io.AtomicFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Everything an evaluation measured (report.json): settings, the LoRAs with their configs, per set of pictures
 * (training, base, each LoRA at each strength) the metric distributions and their Wasserstein-1 distances, per picture
 * the metrics, and the files written (grids, plots). Numbers that could not be computed are null, never NaN.
 */
@JsonInclude(JsonInclude.Include.ALWAYS)
public record EvalResult(String format, int version, String title, String created, double seconds, String model, String backend,
                         EvalSettings settings, int analysisSize, String trainingImages, Map<String, Integer> trainingGenres,
                         List<LoraInfo> loras, List<String> comparedFields, List<MetricInfo> metrics, List<SetResult> sets,
                         List<SetResult> transferSets, List<ImageResult> images, String kidFeatures, String clipModel,
                         List<Figure> grids, List<Figure> plots, List<String> notes) {

    public static final String FORMAT = "impasto-eval";

    public record LoraInfo(String name, String file, String run, Map<String, String> config, Double finalLoss) {}

    public record MetricInfo(String key, String label, String description) {}

    /**
     * One set of pictures. kind: train, base or lora. w1ToTraining: Wasserstein-1 to the training pictures' distribution
     * per metric; w1ToTrainingSd: the same divided by the training distribution's standard deviation; gapClosed:
     * 1 - w1ToTraining / base's w1ToTraining (1 = matches training, 0 = no closer than the base, negative = further);
     * styleScore: the mean of gapClosed; distanceSd: the mean of w1ToTrainingSd. With a CLIP model: clipScore, the mean
     * CLIP score of the set's pictures; clipScoreSummary, their distribution; clipScoreByPrompt, the mean over seeds per
     * prompt (as sent to the model). All three are null for the training pictures and without a CLIP model.
     */
    public record SetResult(String name, String kind, String lora, double scale, int count, Map<String, Distributions.Summary> summary,
                            Map<String, Double> w1ToTraining, Map<String, Double> w1ToTrainingSd, Map<String, Double> w1ToBase,
                            Map<String, Double> gapClosed, Double styleScore, Double distanceSd, Kid.Result kid, Double clipScore,
                            Distributions.Summary clipScoreSummary, Map<String, Double> clipScoreByPrompt) {}

    public record ImageResult(String set, String prompt, boolean transfer, long seed, String file, Map<String, Double> metrics, Double clipScore, long millis) {}

    /** A picture in the report: its file (relative to the report folder) and caption. */
    public record Figure(String file, String caption) {}

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public void writeJson(Path file) throws IOException {
        AtomicFiles.writeStream(file, os -> JSON.writeValue(os, this));
    }

    public static EvalResult readJson(Path file) throws IOException {
        return JSON.readValue(file.toFile(), EvalResult.class);
    }

    /** The set of this name (in-domain or transfer), or null. */
    public SetResult set(String name, boolean transfer) {
        for (SetResult s : transfer ? transferSets : sets) if (s.name().equals(name)) return s;
        return null;
    }
}
