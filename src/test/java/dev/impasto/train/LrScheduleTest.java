package dev.impasto.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Learning-rate schedules, against the documented formula (docs/training.md, TrainConfig): steps are 1-based optimizer
 * steps; warmup rises linearly from 0 (step s of W runs at lr * s / W, so step W is the peak); after it, constant stays
 * at lr, and linear / cosine fall from lr to minLrRatio * lr, reached exactly at the last step. The expected values
 * are written out by hand. A toy run then shows the trainer logs and APPLIES that learning rate at every step.
 */
class LrScheduleTest {
    static final double LR = 1e-3, TOL = 1e-18;

    @Test
    void constantHoldsLrAndIgnoresMinLrRatio() {
        LrSchedule s = new LrSchedule("constant", LR, 0, 10, 0.3);
        for (long step = 1; step <= 10; step++) assertEquals(LR, s.at(step), 0, "step " + step);
    }

    @Test
    void warmupRisesLinearlyFromZeroToLrAtItsLastStep() {
        LrSchedule s = new LrSchedule("constant", LR, 4, 10, 0.3);
        assertEquals(0, s.at(0), 0); // the line starts at 0 before the first step
        assertEquals(0.25e-3, s.at(1), TOL);
        assertEquals(0.5e-3, s.at(2), TOL); // mid-warmup
        assertEquals(0.75e-3, s.at(3), TOL);
        assertEquals(1e-3, s.at(4), TOL); // end of warmup: the peak
        assertEquals(1e-3, s.at(5), TOL);
        assertEquals(1e-3, s.at(10), TOL); // last step: constant means constant
    }

    @Test
    void linearFallsFromLrToMinLrRatioTimesLrAtTheLastStep() {
        // warmup 4, 12 steps: the decay spans steps 4..12, p = (step - 4) / 8
        LrSchedule s = new LrSchedule("linear", LR, 4, 12, 0.1);
        assertEquals(0.25e-3, s.at(1), TOL);
        assertEquals(0.5e-3, s.at(2), TOL);
        assertEquals(1e-3, s.at(4), TOL);
        assertEquals(1e-4 + 9e-4 * 7 / 8, s.at(5), TOL); // 0.9875e-3
        assertEquals(0.55e-3, s.at(8), 1e-18); // middle of the decay: halfway between 1e-3 and 1e-4
        assertEquals(1e-4 + 9e-4 / 8, s.at(11), TOL); // 0.2125e-3
        assertEquals(1e-4, s.at(12), 1e-18); // last step: minLrRatio * lr
        // past the end (a resumed run with fewer steps) it stays at the floor
        assertEquals(1e-4, s.at(20), 1e-18);
        // no warmup: step 1 is already one step into the decay
        LrSchedule n = new LrSchedule("linear", LR, 0, 10, 0);
        assertEquals(0.9e-3, n.at(1), TOL);
        assertEquals(0.5e-3, n.at(5), TOL);
        assertEquals(0, n.at(10), TOL);
    }

    @Test
    void cosineFallsFromLrToMinLrRatioTimesLrAtTheLastStep() {
        LrSchedule s = new LrSchedule("cosine", LR, 4, 12, 0.1);
        assertEquals(0.25e-3, s.at(1), TOL);
        assertEquals(0.5e-3, s.at(2), TOL);
        assertEquals(1e-3, s.at(4), TOL);
        // p = 1/4: 1e-4 + 9e-4 * (1 + cos(pi/4)) / 2 = 1e-4 + 9e-4 * 0.8535533905932737
        assertEquals(1e-4 + 9e-4 * 0.8535533905932737, s.at(6), 1e-15);
        assertEquals(0.55e-3, s.at(8), 1e-15); // p = 1/2: cos = 0, halfway
        // p = 3/4: (1 + cos(3 pi/4)) / 2 = 0.14644660940672624
        assertEquals(1e-4 + 9e-4 * 0.14644660940672624, s.at(10), 1e-15);
        assertEquals(1e-4, s.at(12), 1e-18); // last step: minLrRatio * lr
        // never below the floor nor above the peak, and non-increasing after the warmup
        double prev = Double.MAX_VALUE;
        for (long step = 4; step <= 12; step++) {
            double v = s.at(step);
            assertTrue(v >= 1e-4 - 1e-18 && v <= LR && v <= prev, "step " + step + ": " + v);
            prev = v;
        }
        LrSchedule n = new LrSchedule("cosine", LR, 0, 10, 0);
        assertEquals(LR * (1 + Math.cos(Math.PI / 10)) / 2, n.at(1), 1e-18);
        assertEquals(0.5e-3, n.at(5), 1e-15);
        assertEquals(0, n.at(10), 1e-18);
    }

    @Test
    void warmupLongerThanTheRunNeverReachesThePeak() {
        LrSchedule s = new LrSchedule("cosine", LR, 20, 10, 0);
        assertEquals(0.5e-3, s.at(10), TOL);
    }

    /**
     * A 10-step cosine run with 3 warmup steps and minLrRatio 0.25, checkpointed every step: metrics.jsonl logs the
     * schedule's value at every step, and the value AdamW really applied, recovered from consecutive checkpoints by
     * solving p_k = p_{k-1} (1 - lr wd) - lr m^_k / (sqrt(v^_k) + eps) for lr, is the same (to 1e-6 relative;
     * measured 1e-8, the fp32 rounding of the masters).
     */
    @Test
    void theTrainerLogsAndAppliesTheScheduledRateEveryStep(@TempDir Path out) throws Exception {
        int steps = 10;
        TrainConfig c = ToyRun.config(out, "cosine", steps);
        c.schedule.type = "cosine";
        c.schedule.warmupSteps = 3;
        c.schedule.minLrRatio = 0.25;
        c.checkpoint.every = 1;
        c.checkpoint.keep = steps;
        double[] expected = new double[steps + 1];
        for (int k = 1; k <= 3; k++) expected[k] = LR * k / 3;
        for (int k = 4; k <= steps; k++) expected[k] = 0.25e-3 + 0.75e-3 * 0.5 * (1 + Math.cos(Math.PI * (k - 3) / 7.0));
        assertEquals(0.25e-3, expected[steps], 1e-18);
        try (ToyRun r = new ToyRun()) {
            Trainer t = new Trainer(c, r.be, r.model, r.world(c), ToyRun.QUIET);
            Map<String, double[]> initial = ToyRun.masters(r.be, t.groups());
            t.run(false);
            Path run = out.resolve("cosine");
            List<JsonNode> rows = ToyRun.metrics(run);
            assertEquals(steps, rows.size());
            for (int k = 1; k <= steps; k++) {
                JsonNode row = rows.get(k - 1);
                assertEquals(k, row.get("step").asLong());
                assertFalse(row.get("skipped").asBoolean());
                assertEquals(expected[k], row.get("lr").asDouble(), 1e-18, "logged lr at step " + k);
            }
            Map<String, double[]> before = null;
            for (int k = 1; k <= steps; k++) {
                Map<String, double[]> now = ToyRun.checkpoint(run, k);
                double applied = ToyRun.appliedLr(before == null ? initial : before, now, initial.keySet(), k, c);
                assertEquals(expected[k], applied, 1e-6 * expected[k], "applied lr at step " + k);
                before = now;
            }
        }
    }
}
