package dev.impasto.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.model.CheckpointWeights;
import dev.impasto.model.FluxModel;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The learning proof in the toy world, on the CPU: a base trained from scratch reproduces style A; a LoRA trained on
 * style B drives the loss down and moves the samples to B's colours, while the same model at LoRA strength 0 is
 * still exactly the base.
 */
class LearningProofTest {

    @Test
    void baseLearnsStyleAAndTheLoraLearnsStyleB(@TempDir Path out) throws Exception {
        Path basePath = ToyFixtures.base();
        TrainConfig cfg = ToyFixtures.loraConfig(out, "proof", 300);
        Backend be = new CpuBackend();
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        try (FluxCheckpoint ck = FluxCheckpoint.open(basePath);
             FluxModel model = FluxModel.build(ToyWorld.config(), be, DType.F32, new CheckpointWeights(ck, be, DType.F32, BaseFormat.BF16, false, null))) {
            ToyWorld world = new ToyWorld(ToyWorld.Style.B, cfg.data.toyPerClass, 11);
            Trainer t = new Trainer(cfg, be, model, world, quiet);
            // before training, B is zero: the adapted model IS the base
            float[] before = t.sampleLatent(world.prompt(2), 5, 1.0);
            Trainer.Result r = t.run(false);
            ToyReport rep = ToyReport.make(t, world, r.runDir());
            System.out.print(rep.text());
            System.out.printf("loss %.4f -> %.4f%n", r.firstLoss(), r.lastLossEma());
            // the loss falls by a stated factor
            assertTrue(r.lastLossEma() < r.firstLoss() / 3, "loss fell only from " + r.firstLoss() + " to " + r.lastLossEma());
            // the base reproduces its own style A and is far from B
            assertTrue(rep.baseToA() < 0.10, "base samples are " + rep.baseToA() + " from style A's colours");
            assertTrue(rep.baseToB() > 0.6, "base samples are already close to B: " + rep.baseToB());
            // the LoRA moves the samples to B: within 0.25 of B's colours and at least 4x closer to B than the base is
            assertTrue(rep.loraToB() < 0.25, "LoRA samples are " + rep.loraToB() + " from style B's colours");
            assertTrue(rep.loraToB() < rep.baseToB() / 4, "LoRA did not move far enough: " + rep.loraToB() + " vs " + rep.baseToB());
            assertTrue(rep.loraToA() > 0.6, "LoRA samples stayed near A: " + rep.loraToA());
            // LoRA strength 0 is exactly the base: same numbers as the untrained adapter gave
            assertArrayEquals(before, t.sampleLatent(world.prompt(2), 5, 0.0));
            assertTrue(Files.size(r.runDir().resolve("comparison.png")) > 1000);
            assertTrue(Files.size(r.runDir().resolve("loss.png")) > 1000);
            assertTrue(Files.size(r.lora()) > 1000);
        }
    }
}
