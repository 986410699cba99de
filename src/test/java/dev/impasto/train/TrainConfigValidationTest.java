package dev.impasto.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.cli.TrainCommand;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The schedule and EMA options are checked before anything runs, each problem on its own line naming its field
 * (TrainConfig.problems), whether the value came from run.json, a command-line flag or code. Boundaries: warmupSteps
 * >= 0, minLrRatio in [0, 1], ema 0 (off) or a decay in (0, 1). NaN is outside every range.
 */
class TrainConfigValidationTest {

    static List<String> problems(Consumer<TrainConfig> change) {
        TrainConfig c = TrainConfig.defaults();
        change.accept(c);
        return c.problems();
    }

    static void rejected(String message, Consumer<TrainConfig> change) {
        assertEquals(List.of(message), problems(change));
    }

    static void accepted(Consumer<TrainConfig> change) {
        assertEquals(List.of(), problems(change));
    }

    @Test
    void theDefaultsAreValid() {
        assertEquals(List.of(), TrainConfig.defaults().problems());
    }

    @Test
    void scheduleType() {
        for (String ok : List.of("constant", "linear", "cosine")) accepted(c -> c.schedule.type = ok);
        rejected("schedule.type: constant, linear or cosine, got exponential", c -> c.schedule.type = "exponential");
        rejected("schedule.type: constant, linear or cosine, got Cosine", c -> c.schedule.type = "Cosine"); // names are exact
        rejected("schedule.type: constant, linear or cosine, got ", c -> c.schedule.type = "");
    }

    @Test
    void warmupSteps() {
        accepted(c -> c.schedule.warmupSteps = 0);
        accepted(c -> c.schedule.warmupSteps = 500); // longer than the run is allowed: the rate just never peaks
        rejected("schedule.warmupSteps: must be >= 0", c -> c.schedule.warmupSteps = -1);
    }

    @Test
    void minLrRatio() {
        for (double ok : new double[] {0, 0.1, 1}) accepted(c -> c.schedule.minLrRatio = ok);
        for (double bad : new double[] {-0.01, 1.01, Double.NaN, Double.POSITIVE_INFINITY})
            rejected("schedule.minLrRatio: must be in [0, 1]", c -> c.schedule.minLrRatio = bad);
    }

    @Test
    void ema() {
        for (double ok : new double[] {0, 0.5, 0.999, Math.nextDown(1.0)}) accepted(c -> c.training.ema = ok);
        for (double bad : new double[] {-0.1, 1, 1.5, Double.NaN})
            rejected("training.ema: 0 (off) or a decay in (0, 1)", c -> c.training.ema = bad);
    }

    @Test
    void optimizerAndDropoutRangesRejectNaN() {
        accepted(c -> c.optimizer.maxGradNorm = 0);
        for (double bad : new double[] {-1, 1, Double.NaN}) rejected("optimizer.beta1: must be in [0, 1)", c -> c.optimizer.beta1 = bad);
        for (double bad : new double[] {-1, 1, Double.NaN}) rejected("optimizer.beta2: must be in [0, 1)", c -> c.optimizer.beta2 = bad);
        for (double bad : new double[] {-1, Double.NaN, Double.POSITIVE_INFINITY}) rejected("optimizer.weightDecay: must be >= 0", c -> c.optimizer.weightDecay = bad);
        for (double bad : new double[] {-1, Double.NaN, Double.POSITIVE_INFINITY})
            rejected("optimizer.maxGradNorm: must be >= 0 (0 = no clipping)", c -> c.optimizer.maxGradNorm = bad);
        for (double bad : new double[] {-0.1, 1.1, Double.NaN}) rejected("training.captionDropout: must be in [0, 1]", c -> c.training.captionDropout = bad);
        for (double bad : new double[] {-0.1, 1, Double.NaN}) rejected("lora: lora dropout must be in [0, 1), got " + bad, c -> c.lora.dropout = bad);
    }

    @Test
    void maxNonFiniteSteps() {
        accepted(c -> c.training.maxNonFiniteSteps = 1);
        rejected("training.maxNonFiniteSteps: must be >= 1", c -> c.training.maxNonFiniteSteps = 0);
    }

    @Test
    void validateListsEveryProblemAtOnce() {
        TrainConfig c = TrainConfig.defaults();
        c.schedule.type = "step";
        c.schedule.warmupSteps = -5;
        c.schedule.minLrRatio = 2;
        c.training.ema = 1;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c::validate);
        assertEquals("invalid training config:\n"
                + "  schedule.type: constant, linear or cosine, got step\n"
                + "  schedule.warmupSteps: must be >= 0\n"
                + "  schedule.minLrRatio: must be in [0, 1]\n"
                + "  training.ema: 0 (off) or a decay in (0, 1)", e.getMessage());
    }

    /** From run.json, NaN written as a string (Jackson takes "NaN" for a double) is caught like any other bad value. */
    @Test
    void fromRunJson(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("run.json");
        Files.writeString(f, "{\"schedule\": {\"type\": \"cosine\", \"minLrRatio\": \"NaN\", \"warmupSteps\": -2}, \"training\": {\"ema\": \"NaN\"}}");
        TrainConfig c = TrainConfig.load(f);
        assertTrue(Double.isNaN(c.schedule.minLrRatio) && Double.isNaN(c.training.ema), "the file was read as given");
        assertEquals(List.of("schedule.warmupSteps: must be >= 0", "schedule.minLrRatio: must be in [0, 1]", "training.ema: 0 (off) or a decay in (0, 1)"),
                c.problems());
    }

    /** `impasto train` with bad flags prints the problems and exits with 2 before loading anything. */
    @Test
    void fromTheCommandLine(@TempDir Path dir) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int rc = TrainCommand.commandLine(new PrintStream(buf, true)).execute("--output", dir.toString(), "--schedule.type", "exp",
                "--schedule.minLrRatio", "NaN", "--training.ema", "1");
        assertEquals(2, rc);
        assertEquals("invalid training config:\n  schedule.type: constant, linear or cosine, got exp\n  schedule.minLrRatio: must be in [0, 1]\n"
                + "  training.ema: 0 (off) or a decay in (0, 1)", buf.toString().strip());
        assertTrue(!Files.exists(dir.resolve("toy-lora")), "nothing was written");
    }
}
