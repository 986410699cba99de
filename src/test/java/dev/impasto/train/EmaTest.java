package dev.impasto.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.lora.LoadedLora;
import dev.impasto.lora.LoraFileReader;
import dev.impasto.model.LoraGroup;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * training.ema: the trainer keeps ema = d ema + (1 - d) w after every optimizer step, starting from the initial adapter
 * (docs/training.md: "When on, the published LoRA is the EMA"). The expected EMA is computed here in float64 from the
 * masters recorded after each step, and compared with the EMA the trainer checkpoints and with the LoRA file it
 * publishes; with ema = 0 the published file is the raw masters, bit for bit.
 */
class EmaTest {

    /** The published lora.safetensors read back, as "key.a" / "key.b" doubles like {@link ToyRun#masters}. */
    static Map<String, double[]> published(ToyRun r, Path file) throws Exception {
        LoadedLora l = LoraFileReader.read(file, ToyWorld.config(), r.be, DType.F32);
        assertTrue(l.complete(), l.report().toString());
        Map<String, double[]> m = ToyRun.masters(r.be, l.groups());
        for (LoraGroup g : l.groups()) g.close();
        return m;
    }

    static double relL2(double[] got, double[] want) {
        double num = 0, den = 0;
        for (int i = 0; i < got.length; i++) {
            num += (got[i] - want[i]) * (got[i] - want[i]);
            den += want[i] * want[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-300));
    }

    @Test
    void emaFollowsTheRecurrenceAndIsThePublishedLora(@TempDir Path out) throws Exception {
        int steps = 8;
        double d = 0.8;
        TrainConfig c = ToyRun.config(out, "ema", steps);
        c.training.ema = d;
        try (ToyRun r = new ToyRun()) {
            Trainer t = new Trainer(c, r.be, r.model, r.world(c), ToyRun.QUIET);
            Map<String, double[]> initial = ToyRun.masters(r.be, t.groups());
            Map<Long, Map<String, double[]>> after = new HashMap<>();
            t.onStep(s -> after.put(s, ToyRun.masters(r.be, t.groups())));
            t.run(false);
            Path run = out.resolve("ema");

            // the recurrence in float64 over the recorded weights
            Map<String, double[]> expected = new LinkedHashMap<>();
            for (var e : initial.entrySet()) expected.put(e.getKey(), e.getValue().clone());
            for (long k = 1; k <= steps; k++)
                for (var e : expected.entrySet()) {
                    double[] ema = e.getValue(), w = after.get(k).get(e.getKey());
                    for (int i = 0; i < ema.length; i++) ema[i] = d * ema[i] + (1 - d) * w[i];
                }
            Map<String, double[]> ckpt = ToyRun.checkpoint(run, steps), lora = published(r, run.resolve("lora.safetensors"));
            assertEquals(expected.keySet(), lora.keySet());
            double worst = 0, lag = 0;
            for (String k : expected.keySet()) {
                double[] want = expected.get(k), saved = ckpt.get(k + ".ema");
                double err = relL2(saved, want);
                worst = Math.max(worst, err);
                assertTrue(err < 1e-6, k + ": the checkpointed EMA is " + err + " (relative L2) from the recurrence");
                // the published LoRA IS the trainer's EMA, bit for bit (an F32 file)
                assertArrayEquals(saved, lora.get(k), k + " in lora.safetensors");
                if (k.endsWith(".b")) lag = Math.max(lag, relL2(saved, after.get((long) steps).get(k)));
            }
            System.out.printf("EMA d=%.2f after %d steps: worst relative L2 to the float64 recurrence %.2e; B lags the raw weights by %.2f%n",
                    d, steps, worst, lag);
            // a real difference: the EMA of B is far from the last raw B (and the check above is not trivially met)
            assertTrue(lag > 0.1, "EMA and raw B differ by only " + lag);
            // the raw masters go on in the trainer and its checkpoint; the EMA is only what is published
            assertEquals(after.get((long) steps).keySet(), ToyRun.masters(r.be, t.groups()).keySet());
            for (var e : after.get((long) steps).entrySet()) {
                assertArrayEquals(e.getValue(), ToyRun.masters(r.be, t.groups()).get(e.getKey()), e.getKey());
                assertArrayEquals(e.getValue(), ckpt.get(e.getKey()), e.getKey());
            }
        }
    }

    @Test
    void emaZeroPublishesTheRawWeights(@TempDir Path out) throws Exception {
        int steps = 6;
        TrainConfig c = ToyRun.config(out, "raw", steps);
        c.training.ema = 0;
        try (ToyRun r = new ToyRun()) {
            Trainer t = new Trainer(c, r.be, r.model, r.world(c), ToyRun.QUIET);
            Map<String, double[]> initial = ToyRun.masters(r.be, t.groups());
            t.run(false);
            Map<String, double[]> last = ToyRun.masters(r.be, t.groups());
            Map<String, double[]> lora = published(r, out.resolve("raw").resolve("lora.safetensors"));
            assertEquals(last.keySet(), lora.keySet());
            for (String k : last.keySet()) {
                assertArrayEquals(last.get(k), lora.get(k), k);
                if (k.endsWith(".b")) assertTrue(relL2(last.get(k), initial.get(k)) > 0, k + " trained");
            }
            assertTrue(ToyRun.checkpoint(out.resolve("raw"), steps).keySet().stream().noneMatch(k -> k.endsWith(".ema")), "no EMA is kept");
        }
    }

    /**
     * With EMA on, the trainer samples (sample grids, sampleLatent, the toy report) what it publishes: a sample equals
     * one from the same model carrying the lora.safetensors weights, not one from the raw masters; and swapping the EMA
     * in and out for the grids along the way leaves the training itself bit for bit as without them.
     */
    @Test
    void samplesShowThePublishedEmaWeights(@TempDir Path out) throws Exception {
        TrainConfig c = ToyRun.config(out, "emasample", 6);
        c.training.ema = 0.8;
        c.sample.every = 2; // grids at steps 2, 4 and 6, each sampled with the EMA swapped in and out
        Map<String, double[]> unsampled;
        TrainConfig quiet = ToyRun.config(out, "unsampled", 6);
        quiet.training.ema = 0.8;
        try (ToyRun r = new ToyRun()) {
            Trainer t = new Trainer(quiet, r.be, r.model, r.world(quiet), ToyRun.QUIET);
            t.run(false);
            unsampled = ToyRun.masters(r.be, t.groups());
        }
        try (ToyRun r = new ToyRun()) {
            ToyWorld world = r.world(c);
            Trainer t = new Trainer(c, r.be, r.model, world, ToyRun.QUIET);
            t.run(false);
            for (int k = 2; k <= 6; k += 2)
                assertTrue(java.nio.file.Files.exists(out.resolve("emasample").resolve("samples").resolve(String.format("step-%06d.png", k))));
            // sampling mid-run leaves the training untouched: the raw masters are those of the run without grids
            Map<String, double[]> masters = ToyRun.masters(r.be, t.groups());
            for (String k : unsampled.keySet()) assertArrayEquals(unsampled.get(k), masters.get(k), k);
            float[] got = t.sampleLatent(world.prompt(1), 5, 1.0);
            // references from a trainer without EMA on the same model and adapters: first the raw masters...
            TrainConfig plain = ToyRun.config(out, "plain", 6);
            Trainer ref = new Trainer(plain, r.be, r.model, world, ToyRun.QUIET);
            assertEquals(t.groups(), ref.groups(), "the second trainer adopts the model's adapters");
            float[] raw = ref.sampleLatent(world.prompt(1), 5, 1.0);
            // ...then the weights of the published file
            Map<String, double[]> lora = published(r, out.resolve("emasample").resolve("lora.safetensors"));
            for (LoraGroup g : t.groups()) {
                try (Tensor a = r.be.fromDoubles(lora.get(g.key + ".a"), DType.F32, g.a.shape());
                     Tensor b = r.be.fromDoubles(lora.get(g.key + ".b"), DType.F32, g.b.shape())) {
                    r.be.copy(g.a, a);
                    r.be.copy(g.b, b);
                }
                g.syncCompute(r.be);
            }
            float[] want = ref.sampleLatent(world.prompt(1), 5, 1.0);
            assertTrue(!java.util.Arrays.equals(raw, want), "EMA and raw weights sample alike: the test cannot tell them apart");
            assertArrayEquals(want, got, "the trainer's sample is not the published (EMA) LoRA's");
        }
    }
}
