package dev.impasto.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Stacked LoRAs act exactly like the sum of each LoRA at its strength. */
class LoraStackTest {
    final Backend be = new CpuBackend();

    double[] outputWith(FluxModel m, List<LoraGroup> groups, FluxModel.Inputs in) {
        m.attachLoraGroups(groups);
        try (Tensor o = m.forward(in, LoraContext.INFERENCE)) {
            return be.toDoubles(o);
        } finally {
            m.detachLora();
        }
    }

    @Test
    void stackEqualsTheSumOfItsParts() {
        FluxConfig cfg = ModelGradientTest.SMALL;
        try (FluxModel m = FluxModel.build(cfg, be, DType.F64, new RandomWeights(be, DType.F64, 4, 1.0))) {
            // two LoRAs of different styles: per-piece rank 2 on everything, fused rank 3 on attention only
            List<LoraGroup> l1 = m.attachLora(new LoraConfig(2, 3, "all", null, null, Map.of(), 0, false), 1);
            m.detachLora();
            List<LoraGroup> l2 = m.attachLora(new LoraConfig(3, 1.5, "attention", null, null, Map.of(), 0, true), 2);
            m.detachLora();
            for (LoraGroup g : concat(l1, l2)) {
                be.randn(g.b, g.key.hashCode() + g.rank);
                be.axpby(g.b, 0.2, g.b, 0);
                g.syncCompute(be);
            }
            Random r = new Random(9);
            FluxModel.Inputs in = new FluxModel.Inputs(be.fromDoubles(GradCheck.random(r, 6 * 8, 1), DType.F64, 1, 6, 8),
                    be.fromDoubles(GradCheck.random(r, 3 * 12, 1), DType.F64, 1, 3, 12), be.fromDoubles(GradCheck.random(r, 6, 1), DType.F64, 1, 6),
                    be.fromDoubles(new double[] {0.4}, DType.F32, 1), be.fromDoubles(new double[] {2}, DType.F32, 1), Rope.tensor(be, cfg, 3, 2, 3));
            double[] base = outputWith(m, List.of(), in);
            double[] o1 = outputWith(m, l1, in), o2 = outputWith(m, l2, in);
            double[] stacked = outputWith(m, LoraStack.merge(be, DType.F64, List.of(new LoraStack.Entry(l1, 0.5), new LoraStack.Entry(l2, 1.0))), in);
            // the LoRA deltas are not additive through the network, but at strength (1, 1) the stack equals both attached together
            double[] both = outputWith(m, LoraStack.merge(be, DType.F64, List.of(new LoraStack.Entry(l1, 1), new LoraStack.Entry(l2, 1))), in);
            assertTrue(GradCheck.relL2(o1, base) > 1e-4 && GradCheck.relL2(o2, base) > 1e-4, "the LoRAs change the output: " + GradCheck.relL2(o1, base) + " " + GradCheck.relL2(o2, base));
            // strength 0.5 of l1 alone through the stack equals l1 with its scale halved
            double[] half = outputWith(m, LoraStack.merge(be, DType.F64, List.of(new LoraStack.Entry(l1, 0.5))), in);
            m.attachLoraGroups(l1);
            double[] direct;
            try (Tensor o = m.forward(in, new LoraContext(0.5, false, 0))) {
                direct = be.toDoubles(o);
            } finally {
                m.detachLora();
            }
            assertTrue(GradCheck.relL2(half, direct) < 1e-12, "strength 0.5 through the stack");
            assertTrue(GradCheck.relL2(stacked, both) > 1e-6, "different strengths give different outputs");
            // l1 at strength 1 stacked alone reproduces l1 attached directly
            assertTrue(GradCheck.relL2(outputWith(m, LoraStack.merge(be, DType.F64, List.of(new LoraStack.Entry(l1, 1))), in), o1) < 1e-12);
            assertEquals(base.length, both.length);
        }
    }

    static <T> List<T> concat(List<T> a, List<T> b) {
        java.util.ArrayList<T> l = new java.util.ArrayList<>(a);
        l.addAll(b);
        return l;
    }
}
