package dev.impasto.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.model.CheckpointWeights;
import dev.impasto.model.FluxModel;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.cpu.CpuBackend;
import dev.impasto.train.dist.Collective;
import dev.impasto.train.dist.DataParallel;
import dev.impasto.train.dist.HostCollective;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Data-parallel training logic on the CPU (ranks as threads): same global batch = same result; failures; resume. */
class DataParallelTest {
    static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    /** Trains cfg on `world` ranks; returns rank 0's LoRA tensors (a then b per group) as doubles. */
    static double[] train(TrainConfig cfg, int world, Integer failAt, boolean resume, PrintStream log) throws Exception {
        HostCollective.Group group = new HostCollective.Group(world, 20);
        List<double[]> res = DataParallel.run(world, group::abort, rank -> {
            Backend be = new CpuBackend();
            try (FluxCheckpoint ck = FluxCheckpoint.open(ToyFixtures.base());
                 FluxModel m = FluxModel.build(ToyWorld.config(), be, DType.F32, new CheckpointWeights(ck, be, DType.F32, BaseFormat.F32, false, null))) {
                Collective c = world == 1 ? Collective.SOLO : new HostCollective(group, rank, be);
                Trainer t = new Trainer(cfg, be, m, new ToyWorld(ToyWorld.Style.B, cfg.data.toyPerClass, 11), rank == 0 ? log : QUIET, c);
                if (failAt != null && rank == 1) t.onStep(s -> {
                    if (s == failAt) throw new IllegalStateException("simulated failure of rank 1 at step " + s);
                });
                t.run(resume);
                double[] all = new double[0];
                for (var g : t.groups()) {
                    all = concat(all, be.toDoubles(g.a));
                    all = concat(all, be.toDoubles(g.b));
                }
                return all;
            }
        });
        return res.getFirst();
    }

    static double[] concat(double[] a, double[] b) {
        double[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    static TrainConfig cfg(Path out, String name, int batch, int steps) throws Exception {
        TrainConfig c = ToyFixtures.loraConfig(out, name, steps);
        c.training.batchSize = batch;
        c.training.captionDropout = 0.3;
        c.checkpoint.every = 5;
        return c;
    }

    @Test
    void twoRanksEqualOneRankWithTheSameGlobalBatch(@TempDir Path out) throws Exception {
        double[] one = train(cfg(out, "one", 4, 12), 1, null, false, QUIET);
        double[] two = train(cfg(out, "two", 2, 12), 2, null, false, QUIET);
        double err = GradCheck.relL2(two, one);
        System.out.println("2 ranks vs 1 rank, same global batch: rel L2 " + err);
        assertTrue(err < 1e-4, "data-parallel result differs from one rank: " + err);
    }

    @Test
    void aFailingRankStopsEveryRankWithItsOwnMessage(@TempDir Path out) {
        long t0 = System.nanoTime();
        Exception e = assertThrows(Exception.class, () -> train(cfg(out, "fail", 2, 12), 2, 4, false, QUIET));
        assertTrue(e.getMessage().contains("rank 1 failed") && e.getMessage().contains("simulated failure"), e.getMessage());
        assertTrue((System.nanoTime() - t0) / 1e9 < 30, "stopped promptly");
    }

    @Test
    void resumesWithADifferentRankCount(@TempDir Path out) throws Exception {
        TrainConfig c = cfg(out, "resize", 2, 10);
        train(c, 2, null, false, QUIET);
        TrainConfig more = cfg(out, "resize", 2, 16);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        double[] r = train(more, 1, null, true, new PrintStream(log));
        assertTrue(log.toString().contains("resumed from step-00000010"), log.toString());
        assertTrue(log.toString().contains("items per batch"), log.toString());
        assertEquals(16, MetricsLog.read(out.resolve("resize").resolve("metrics.jsonl")).size());
        assertTrue(r.length > 0 && Double.isFinite(r[0]));
    }
}
