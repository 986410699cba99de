package dev.impasto.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.train.MetricsLog;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A LoRA under evaluation: its file and, when it came from a training run folder, the run's config (run.json) and
 * final moving-average loss (metrics.jsonl), which the hyperparameter comparison shows next to the measurements.
 */
public record EvalLora(String name, Path file, Path runDir, JsonNode runConfig, Double finalLoss) {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A run folder written by {@code impasto train}. */
    public static EvalLora fromRun(Path runDir) throws IOException {
        if (!Files.isDirectory(runDir)) throw new IllegalArgumentException(runDir + ": no such run folder");
        Path lora = runDir.resolve("lora.safetensors");
        if (!Files.isRegularFile(lora))
            throw new IllegalArgumentException(runDir + " has no lora.safetensors: the run has not finished (continue it with `impasto train --config "
                    + runDir.resolve("run.json") + " --resume`)");
        return new EvalLora(runDir.toAbsolutePath().normalize().getFileName().toString(), lora, runDir, readConfig(runDir), finalLoss(runDir));
    }

    /** A LoRA file; a run.json beside it is read as its config. */
    public static EvalLora fromFile(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(file + ": no such LoRA file");
        String n = file.getFileName().toString().replaceFirst("\\.safetensors$", "");
        Path dir = file.toAbsolutePath().getParent();
        boolean run = dir != null && Files.isRegularFile(dir.resolve("run.json"));
        if (run && (n.equals("lora") || n.equals("lora_kohya"))) n = dir.getFileName().toString();
        return new EvalLora(n, file, run ? dir : null, run ? readConfig(dir) : null, run ? finalLoss(dir) : null);
    }

    public EvalLora withName(String n) {
        return new EvalLora(n, file, runDir, runConfig, finalLoss);
    }

    /** A field of run.json by dotted path ("lora.rank"), or null. */
    public String config(String dottedPath) {
        if (runConfig == null) return null;
        JsonNode n = runConfig.at("/" + dottedPath.replace('.', '/'));
        if (n.isMissingNode() || n.isNull()) return null;
        // 1.0E-4 -> 0.0001, 16.0 -> 16: as people write them in a config
        if (n.isNumber()) return new java.math.BigDecimal(n.asText()).stripTrailingZeros().toPlainString();
        return n.isValueNode() ? n.asText() : n.toString();
    }

    private static JsonNode readConfig(Path dir) throws IOException {
        Path f = dir.resolve("run.json");
        if (!Files.isRegularFile(f)) return null;
        try {
            return JSON.readTree(f.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException(f + ": not valid JSON: " + e.getMessage());
        }
    }

    private static Double finalLoss(Path dir) throws IOException {
        Path m = dir.resolve("metrics.jsonl");
        if (!Files.isRegularFile(m)) return null;
        List<JsonNode> rows = MetricsLog.read(m);
        for (int i = rows.size() - 1; i >= 0; i--) {
            double v = rows.get(i).path("loss_ema").asDouble(Double.NaN);
            if (Double.isFinite(v)) return v;
        }
        return null;
    }
}
