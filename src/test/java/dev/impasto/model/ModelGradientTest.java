package dev.impasto.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The whole model's backward (every block, LoRA on every linear, input gradients) against central finite differences
 * in float64, for batch 1 and 2, with and without gradient checkpointing.
 */
class ModelGradientTest {
    static final FluxConfig SMALL = new FluxConfig("grad-test", 8, 12, 6, 16, 2, 2, 2, 4.0, new int[] {2, 2, 4}, 10_000, true, true);
    final Backend be = new CpuBackend();
    final DType F = DType.F64;

    record Fixture(FluxModel model, FluxModel.Inputs inputs, double[] w, int batch) {}

    Fixture fixture(int batch, boolean fused) {
        FluxModel model = FluxModel.build(SMALL, be, F, new RandomWeights(be, F, 11, 1.0));
        List<LoraGroup> groups = model.attachLora(new LoraConfig(2, 3, "all", null, null, java.util.Map.of(), 0, fused), 5);
        for (LoraGroup g : groups) { // non-zero B so that every path carries gradient
            be.randn(g.b, g.key.hashCode());
            be.axpby(g.b, 0.3, g.b, 0);
            g.syncCompute(be);
        }
        Random r = new Random(3);
        int lt = 3, gh = 2, gw = 3, li = gh * gw;
        FluxModel.Inputs in = new FluxModel.Inputs(
                be.fromDoubles(GradCheck.random(r, batch * li * 8, 1), F, batch, li, 8),
                be.fromDoubles(GradCheck.random(r, batch * lt * 12, 1), F, batch, lt, 12),
                be.fromDoubles(GradCheck.random(r, batch * 6, 1), F, batch, 6),
                be.fromDoubles(batch == 1 ? new double[] {0.3} : new double[] {0.3, 0.85}, DType.F32, batch),
                be.fromDoubles(batch == 1 ? new double[] {3.5} : new double[] {3.5, 1.0}, DType.F32, batch),
                Rope.tensor(be, SMALL, lt, gh, gw));
        double[] w = GradCheck.random(r, batch * li * 8, 1);
        return new Fixture(model, in, w, batch);
    }

    double loss(Fixture f) {
        try (Tensor out = f.model.forward(f.inputs, LoraContext.INFERENCE)) {
            return GradCheck.dot(f.w, be.toDoubles(out));
        }
    }

    @ParameterizedTest
    @CsvSource({"1,false,false", "2,false,true", "2,true,false"})
    void loraAndInputGradientsMatchFiniteDifferences(int batch, boolean checkpointing, boolean fused) {
        Fixture f = fixture(batch, fused);
        f.model.setCheckpointing(checkpointing);
        FluxModel.InputGrads ig;
        try (FluxModel.Pass p = f.model.forwardTrain(f.inputs, LoraContext.INFERENCE)) {
            assertEquals(loss(f), GradCheck.dot(f.w, be.toDoubles(p.output())), 1e-12, "training forward == inference forward");
            Tensor dOut = be.fromDoubles(f.w, F, p.output().shape());
            ig = f.model.backward(p, dOut, true);
        }
        Random pick = new Random(batch * 31L + (checkpointing ? 1 : 0));
        double h = 1e-6;
        List<double[]> pairs = new ArrayList<>(); // {analytic, numeric}
        for (LoraGroup g : f.model.loras()) {
            for (Tensor[] pg : new Tensor[][] {{g.a, g.gradA}, {g.b, g.gradB}}) {
                double[] grad = be.toDoubles(pg[1]);
                for (int s = 0; s < 3; s++) {
                    int idx = pick.nextInt((int) pg[0].numel());
                    double[] vals = be.toDoubles(pg[0]);
                    double old = vals[idx];
                    vals[idx] = old + h;
                    set(pg[0], vals, g);
                    double lp = loss(f);
                    vals[idx] = old - h;
                    set(pg[0], vals, g);
                    double lm = loss(f);
                    vals[idx] = old;
                    set(pg[0], vals, g);
                    pairs.add(new double[] {grad[idx], (lp - lm) / (2 * h)});
                }
            }
        }
        double[] an = pairs.stream().mapToDouble(p -> p[0]).toArray(), nu = pairs.stream().mapToDouble(p -> p[1]).toArray();
        double err = GradCheck.relL2(an, nu);
        assertTrue(err < 1e-6, "LoRA gradients vs finite differences: rel L2 " + err);
        // input gradients: a few coordinates of img, txt and y
        for (Tensor[] pair : new Tensor[][] {{f.inputs.img(), ig.img()}, {f.inputs.txt(), ig.txt()}, {f.inputs.y(), ig.y()}}) {
            double[] grad = be.toDoubles(pair[1]);
            double[] vals = be.toDoubles(pair[0]);
            double[] a2 = new double[5], n2 = new double[5];
            for (int s = 0; s < 5; s++) {
                int idx = pick.nextInt(vals.length);
                double old = vals[idx];
                vals[idx] = old + h;
                overwrite(pair[0], vals);
                double lp = loss(f);
                vals[idx] = old - h;
                overwrite(pair[0], vals);
                double lm = loss(f);
                vals[idx] = old;
                overwrite(pair[0], vals);
                a2[s] = grad[idx];
                n2[s] = (lp - lm) / (2 * h);
            }
            double e2 = GradCheck.relL2(a2, n2);
            assertTrue(e2 < 1e-6, "input gradient vs finite differences: rel L2 " + e2);
        }
        f.model.close();
    }

    private void set(Tensor master, double[] vals, LoraGroup g) {
        overwrite(master, vals);
        g.syncCompute(be);
    }

    private void overwrite(Tensor t, double[] vals) {
        try (Tensor src = be.fromDoubles(vals, t.dtype(), t.shape())) {
            be.copy(t, src);
        }
    }

    @ParameterizedTest
    @CsvSource({"1", "2"})
    void checkpointingGivesIdenticalGradients(int batch) {
        double[][] grads = new double[2][];
        for (int c = 0; c < 2; c++) {
            Fixture f = fixture(batch, false);
            f.model.setCheckpointing(c == 1);
            try (FluxModel.Pass p = f.model.forwardTrain(f.inputs, LoraContext.training(9))) {
                f.model.backward(p, be.fromDoubles(f.w, F, p.output().shape()), false);
            }
            List<Double> all = new ArrayList<>();
            for (LoraGroup g : f.model.loras()) for (double v : be.toDoubles(g.gradA)) all.add(v);
            grads[c] = all.stream().mapToDouble(Double::doubleValue).toArray();
            f.model.close();
        }
        assertArrayEquals(grads[0], grads[1], 0);
    }
}
