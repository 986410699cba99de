package dev.impasto.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A step whose loss or gradient is not finite is skipped (docs/training.md, "What one training step does"): the LoRA
 * masters, the AdamW moments and the EMA stay bit for bit as they were, AdamW's bias correction counts only the
 * updates that happened (it is given step - skippedSteps), metrics.jsonl marks the step, and
 * training.maxNonFiniteSteps bad steps in a row stop the run with a TrainingDivergedException naming the step.
 *
 * <p>The non-finite values come in through the data, the way they do in real runs (a bad latent in the cache): the
 * toy world is wrapped so that the items of chosen steps carry a NaN, or values so large that the loss overflows to
 * infinity. Which items a step trains on is a pure function of (seed, epoch) (BucketBatcher), so no seam in the
 * trainer is needed.
 */
class NonFiniteStepTest {

    /** The toy world with bad latents in some items: a NaN, or finite values so large (x 1e30) that the loss overflows. */
    static final class Poisoned implements TrainingSet {
        final ToyWorld world;
        final Map<Integer, Float> bad = new HashMap<>(); // item -> NaN (poison one element) or a factor for all elements

        Poisoned(ToyWorld world) {
            this.world = world;
        }

        /**
         * Poisons every item of the given (1-based) steps of epoch 0 of a run with this batch size and seed: {@code how}
         * NaN puts a NaN into each latent, a number multiplies the latents by it.
         */
        Poisoned atSteps(int batchSize, long seed, float how, int... steps) {
            List<int[]> plan = new BucketBatcher(this, batchSize, seed).epoch(0);
            for (int s : steps) for (int i : plan.get(s - 1)) bad.put(i, how);
            return this;
        }

        @Override
        public int size() {
            return world.size();
        }

        @Override
        public Item item(int index) {
            Item it = world.item(index);
            Float how = bad.get(index);
            if (how == null) return it;
            float[] lat = it.latent().clone();
            if (how.isNaN()) lat[lat.length / 2] = Float.NaN;
            else for (int i = 0; i < lat.length; i++) lat[i] *= how;
            return new Item(lat, it.channels(), it.height(), it.width(), it.text(), it.textLen(), it.pooled(), it.caption());
        }

        @Override
        public String bucket(int index) {
            return world.bucket(index);
        }

        @Override
        public Item emptyPrompt() {
            return world.emptyPrompt();
        }

        @Override
        public int latentChannels() {
            return world.latentChannels();
        }

        @Override
        public int textDim() {
            return world.textDim();
        }

        @Override
        public int pooledDim() {
            return world.pooledDim();
        }
    }

    static void assertSameTensors(Map<String, double[]> a, Map<String, double[]> b, String what) {
        assertEquals(a.keySet(), b.keySet(), what);
        for (String k : a.keySet()) assertArrayEquals(a.get(k), b.get(k), what + ": " + k); // exact, element by element
    }

    /**
     * 8 steps, maxNonFiniteSteps 3, EMA on, a NaN at steps 1 and 2 and an overflowing (infinite) loss at step 5, never 3
     * in a row: the run finishes, with these steps skipped and the others training as if the skipped ones had not been
     * there.
     */
    @Test
    void skippedStepsChangeNothingAndAdamCountsOnlyRealUpdates(@TempDir Path out) throws Exception {
        int steps = 8;
        TrainConfig c = ToyRun.config(out, "nan", steps);
        c.training.ema = 0.9;
        c.training.maxNonFiniteSteps = 3;
        c.checkpoint.every = 1;
        c.checkpoint.keep = steps;
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (ToyRun r = new ToyRun()) {
            Poisoned data = new Poisoned(r.world(c)).atSteps(c.training.batchSize, c.training.seed, Float.NaN, 1, 2)
                    .atSteps(c.training.batchSize, c.training.seed, 1e30f, 5);
            Trainer t = new Trainer(c, r.be, r.model, data, new PrintStream(log, true));
            Map<String, double[]> initial = ToyRun.masters(r.be, t.groups());
            Map<Long, Map<String, double[]>> live = new java.util.HashMap<>();
            t.onStep(s -> live.put(s, ToyRun.masters(r.be, t.groups())));
            Trainer.Result res = t.run(false);
            Path run = out.resolve("nan");

            assertEquals(steps, res.steps());
            assertEquals(3, res.skippedSteps());
            // the live masters right after each skipped step are those from before it, bit for bit
            assertSameTensors(initial, live.get(1L), "masters after skipped step 1");
            assertSameTensors(initial, live.get(2L), "masters after skipped step 2");
            assertSameTensors(live.get(4L), live.get(5L), "masters after skipped step 5");
            assertFalse(java.util.Arrays.equals(live.get(3L).values().iterator().next(), initial.values().iterator().next()),
                    "step 3 trained");
            // so are the checkpointed moments and EMA: step 5's checkpoint is step 4's
            Map<String, double[]> c4 = ToyRun.checkpoint(run, 4), c5 = ToyRun.checkpoint(run, 5);
            assertTrue(c4.keySet().stream().anyMatch(k -> k.endsWith(".ema")) && c4.keySet().stream().anyMatch(k -> k.endsWith(".m")));
            assertSameTensors(c4, c5, "checkpoint 5 vs 4");
            // before the first real update the moments are zero and the EMA is the initial adapter
            Map<String, double[]> c2 = ToyRun.checkpoint(run, 2);
            for (String k : initial.keySet()) {
                assertArrayEquals(initial.get(k), c2.get(k), k);
                assertArrayEquals(initial.get(k), c2.get(k + ".ema"), k + ".ema");
                assertTrue(java.util.Arrays.stream(c2.get(k + ".m")).allMatch(x -> x == 0) && java.util.Arrays.stream(c2.get(k + ".v")).allMatch(x -> x == 0), k);
            }
            // AdamW's bias correction counts real updates only: step 3 is update 1, step 4 update 2, step 6 update 3...
            // (the learning rate recovered from the checkpoints with that count is lr; with the step number it is not)
            long[][] stepAndUpdate = {{3, 1}, {4, 2}, {6, 3}, {7, 4}, {8, 5}};
            for (long[] su : stepAndUpdate) {
                Map<String, double[]> before = su[0] == 3 ? ToyRun.checkpoint(run, 2) : ToyRun.checkpoint(run, su[0] - 1), now = ToyRun.checkpoint(run, su[0]);
                double lr = ToyRun.appliedLr(before, now, initial.keySet(), su[1], c);
                assertEquals(c.optimizer.lr, lr, 1e-6 * c.optimizer.lr, "step " + su[0] + " as AdamW update " + su[1]);
                double wrong = ToyRun.appliedLr(before, now, initial.keySet(), su[0], c);
                assertTrue(Math.abs(wrong / c.optimizer.lr - 1) > 1e-3, "step " + su[0] + ": the check cannot tell the counts apart (" + wrong + ")");
            }
            // state.json: skipped steps and the run of bad steps
            int[][] skippedAndRun = {{1, 1, 1}, {2, 2, 2}, {3, 2, 0}, {4, 2, 0}, {5, 3, 1}, {6, 3, 0}, {8, 3, 0}};
            for (int[] e : skippedAndRun) {
                JsonNode st = ToyRun.checkpointState(run, e[0]);
                assertEquals(e[1], st.get("skippedSteps").asInt(), "skippedSteps at step " + e[0]);
                assertEquals(e[2], st.get("nonFiniteInARow").asInt(), "nonFiniteInARow at step " + e[0]);
            }
            // metrics.jsonl: one row per step, the skipped ones marked, with their non-finite loss (NaN at 1 and 2,
            // +Infinity at 5, whose gradient stayed finite); the moving average and the first loss ignore them
            List<JsonNode> rows = ToyRun.metrics(run);
            assertEquals(steps, rows.size());
            Set<Integer> skipped = Set.of(1, 2, 5);
            for (int k = 1; k <= steps; k++) {
                JsonNode row = rows.get(k - 1);
                assertEquals(k, row.get("step").asInt());
                assertEquals(skipped.contains(k), row.get("skipped").asBoolean(), "skipped flag at step " + k);
                assertEquals(skipped.contains(k), !Double.isFinite(row.get("loss").asDouble()), "loss at step " + k + ": " + row.get("loss"));
                assertEquals(k <= 2, Double.isNaN(row.get("grad_norm").asDouble()), "grad norm at step " + k);
                assertEquals(c.optimizer.lr, row.get("lr").asDouble(), 0);
            }
            assertEquals(Double.POSITIVE_INFINITY, rows.get(4).get("loss").asDouble());
            assertTrue(Double.isNaN(rows.get(1).get("loss_ema").asDouble()));
            assertEquals(rows.get(2).get("loss").asDouble(), rows.get(2).get("loss_ema").asDouble(), 0);
            assertEquals(rows.get(3).get("loss_ema").asDouble(), rows.get(4).get("loss_ema").asDouble(), 0);
            assertEquals(rows.get(2).get("loss").asDouble(), res.firstLoss(), 0);
            assertTrue(Double.isFinite(res.lastLossEma()));
            // the log says what happened
            String text = log.toString();
            assertTrue(text.contains("step 1: non-finite loss (loss NaN, grad norm NaN): step skipped (1 in a row)"), text);
            assertTrue(text.contains("step 2: non-finite loss (loss NaN, grad norm NaN): step skipped (2 in a row)"), text);
            assertTrue(text.contains("step 5: non-finite loss (loss Infinity, grad norm " + rows.get(4).get("grad_norm").asDouble() + "): step skipped (1 in a row)"), text);
            assertTrue(Files.size(res.lora()) > 1000);
        }
    }

    /** maxNonFiniteSteps 3 and NaN at steps 2, 3, 4: the run stops at step 4 with a message naming it and what to do. */
    @Test
    void tooManyBadStepsInARowStopTheRun(@TempDir Path out) throws Exception {
        TrainConfig c = ToyRun.config(out, "diverge", 10);
        c.training.maxNonFiniteSteps = 3;
        c.checkpoint.every = 1;
        c.checkpoint.keep = 10;
        try (ToyRun r = new ToyRun()) {
            Poisoned data = new Poisoned(r.world(c)).atSteps(c.training.batchSize, c.training.seed, Float.NaN, 2, 3, 4);
            Trainer t = new Trainer(c, r.be, r.model, data, ToyRun.QUIET);
            Map<Long, Map<String, double[]>> live = new java.util.HashMap<>();
            t.onStep(s -> live.put(s, ToyRun.masters(r.be, t.groups())));
            TrainingDivergedException e = assertThrows(TrainingDivergedException.class, () -> t.run(false));
            assertEquals("training stopped at step 4: 3 steps in a row had a non-finite loss or gradient. Lower optimizer.lr (now 0.001), "
                    + "keep optimizer.maxGradNorm on, or check the cache for bad latents (impasto inspect).", e.getMessage());
            Path run = out.resolve("diverge");
            // the adapter stopped changing at step 1
            assertSameTensors(live.get(1L), live.get(3L), "masters after steps 2 and 3");
            assertSameTensors(live.get(1L), ToyRun.masters(r.be, t.groups()), "masters when the run stopped");
            // metrics.jsonl has every step that ran, the one that stopped the run included
            List<JsonNode> rows = ToyRun.metrics(run);
            assertEquals(List.of(false, true, true, true), rows.stream().map(x -> x.get("skipped").asBoolean()).toList());
            assertEquals(List.of(1L, 2L, 3L, 4L), rows.stream().map(x -> x.get("step").asLong()).toList());
            // nothing is published, and the last checkpoint is the last step that finished
            assertFalse(Files.exists(run.resolve("lora.safetensors")));
            assertEquals(2, ToyRun.checkpointState(run, 3).get("nonFiniteInARow").asInt());
            assertFalse(Files.exists(ToyRun.checkpointFolder(run, 4)));
        }
    }
}
