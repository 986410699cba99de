package dev.impasto.lora;

import dev.impasto.model.FluxConfig;
import dev.impasto.model.FluxModel;
import dev.impasto.model.LoraConfig;
import dev.impasto.model.LoraContext;
import dev.impasto.model.LoraGroup;
import dev.impasto.model.RandomWeights;
import dev.impasto.model.Rope;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** A small float64 FLUX model on the CPU, random LoRAs with float32-representable weights, and dense LoRA deltas. */
final class LoraFixtures {
    /** hidden 16 (2 heads of 8), MLP 64, two blocks of each kind. */
    static final FluxConfig SMALL = new FluxConfig("lora-test", 8, 12, 6, 16, 2, 2, 2, 4.0, new int[] {2, 2, 4}, 10_000, true, true);
    static final Backend BE = new CpuBackend();

    private LoraFixtures() {}

    static FluxModel model() {
        return FluxModel.build(SMALL, BE, DType.F64, new RandomWeights(BE, DType.F64, 11, 1.0));
    }

    static FluxModel.Inputs inputs() {
        Random r = new Random(3);
        int lt = 3, gh = 2, gw = 3, li = gh * gw;
        return new FluxModel.Inputs(
                BE.fromDoubles(random(r, li * 8), DType.F64, 1, li, 8),
                BE.fromDoubles(random(r, lt * 12), DType.F64, 1, lt, 12),
                BE.fromDoubles(random(r, 6), DType.F64, 1, 6),
                BE.fromDoubles(new double[] {0.3}, DType.F32, 1),
                BE.fromDoubles(new double[] {3.5}, DType.F32, 1),
                Rope.tensor(BE, SMALL, lt, gh, gw));
    }

    static double[] random(Random r, int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = r.nextGaussian();
        return d;
    }

    /** A LoRA as {@code cfg} selects, with non-zero float32-representable A and B (so an F32 file holds them exactly). */
    static List<LoraGroup> randomLora(FluxModel model, LoraConfig cfg, long seed) {
        List<LoraGroup> groups = model.attachLora(cfg, seed);
        for (LoraGroup g : groups) {
            fillF32(g.a, seed * 31 + g.key.hashCode(), 0.4);
            fillF32(g.b, seed * 17 + g.key.hashCode() + 1, 0.3);
            g.syncCompute(BE);
        }
        return model.detachLora();
    }

    static void fillF32(Tensor master, long seed, double std) {
        try (Tensor t = BE.empty(DType.F32, master.shape())) {
            BE.randn(t, seed);
            BE.axpby(t, std, t, 0);
            BE.copy(master, t);
        }
    }

    static LoraConfig config(int rank, double alpha, String targets, boolean fused, Map<String, Integer> blockRanks) {
        return new LoraConfig(rank, alpha, targets, null, null, blockRanks, 0, fused);
    }

    /** The model's prediction with {@code groups} attached (detached again afterwards, not closed). */
    static double[] output(FluxModel model, FluxModel.Inputs in, List<LoraGroup> groups) {
        if (!groups.isEmpty()) model.attachLoraGroups(groups);
        try (Tensor out = model.forward(in, LoraContext.INFERENCE)) {
            return BE.toDoubles(out);
        } finally {
            model.detachLora();
        }
    }

    static double maxAbsDiff(double[] x, double[] y) {
        if (x.length != y.length) throw new AssertionError("lengths " + x.length + " vs " + y.length);
        double m = 0;
        for (int i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
        return m;
    }

    /** scale * sum over pieces of B_i A_i placed at the piece's rows: the dense [out, in] update the group makes. */
    static double[] delta(LoraGroup g, long out) {
        int in = (int) g.in(), r = g.rank;
        double[] d = new double[(int) out * in];
        for (int i = 0; i < g.pieces.size(); i++) {
            LoraGroup.Piece p = g.pieces.get(i);
            double[] a = BE.toDoubles(g.pieceA(i)), b = BE.toDoubles(g.pieceB(i));
            for (int row = 0; row < p.rows(); row++)
                for (int c = 0; c < in; c++) {
                    double s = 0;
                    for (int k = 0; k < r; k++) s += b[row * r + k] * a[k * in + c];
                    d[(int) (p.rowStart() + row) * in + c] += g.scale() * s;
                }
        }
        return d;
    }

    static LoraGroup find(List<LoraGroup> groups, String key) {
        for (LoraGroup g : groups) if (g.key.equals(key)) return g;
        throw new AssertionError("no group " + key);
    }
}
