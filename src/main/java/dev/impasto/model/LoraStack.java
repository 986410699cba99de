package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Several LoRAs applied together, each at its own strength, as ONE adapter per layer: for a layer,
 * sum_j s_j B_j A_j = [s_1 B_1 | s_2 B_2 | ...] [A_1 ; A_2 ; ...], i.e. the A rows stacked and the strength-scaled B
 * columns side by side (each placed at its piece's output rows), rank = the sum of ranks, scale 1. Exact, and one pair
 * of matrix products per layer however many LoRAs are stacked.
 */
public final class LoraStack {
    private LoraStack() {}

    /** One LoRA and its strength. */
    public record Entry(List<LoraGroup> groups, double strength) {}

    /** One rank-1 component: a row of A, and the column of B (already scaled) that starts at output row rowStart. */
    private record Component(double[] a, long rowStart, double[] b) {}

    public static List<LoraGroup> merge(Backend be, DType computeType, List<Entry> entries) {
        Map<String, List<Component>> byKey = new LinkedHashMap<>();
        Map<String, long[]> dims = new LinkedHashMap<>(); // key -> {in, out}
        for (Entry e : entries) {
            for (LoraGroup g : e.groups()) {
                int in = (int) g.in();
                double[] a = be.toDoubles(g.a), b = be.toDoubles(g.b);
                double s = g.scale() * e.strength();
                long bOff = 0;
                long[] d = dims.computeIfAbsent(g.key, k -> new long[] {in, 0});
                for (int i = 0; i < g.pieces.size(); i++) {
                    LoraGroup.Piece p = g.pieces.get(i);
                    d[1] = Math.max(d[1], p.rowEnd());
                    for (int r = 0; r < g.rank; r++) {
                        double[] ar = new double[in], bc = new double[(int) p.rows()];
                        System.arraycopy(a, (i * g.rank + r) * in, ar, 0, in);
                        for (int row = 0; row < p.rows(); row++) bc[row] = s * b[(int) ((bOff + row) * g.rank + r)];
                        byKey.computeIfAbsent(g.key, k -> new ArrayList<>()).add(new Component(ar, p.rowStart(), bc));
                    }
                    bOff += p.rows();
                }
            }
        }
        List<LoraGroup> merged = new ArrayList<>();
        for (var e : byKey.entrySet()) {
            int in = (int) dims.get(e.getKey())[0];
            long out = dims.get(e.getKey())[1];
            List<Component> cs = e.getValue();
            int rank = cs.size();
            double[] a = new double[rank * in], b = new double[(int) (out * rank)];
            for (int c = 0; c < rank; c++) {
                Component comp = cs.get(c);
                System.arraycopy(comp.a(), 0, a, c * in, in);
                for (int row = 0; row < comp.b().length; row++) b[(int) ((comp.rowStart() + row) * rank + c)] = comp.b()[row];
            }
            LoraGroup g = new LoraGroup(be, e.getKey(), List.of(new LoraGroup.Piece("", 0, out)), in, rank, rank, 0, computeType);
            try (Tensor ta = be.fromDoubles(a, g.a.dtype(), g.a.shape()); Tensor tb = be.fromDoubles(b, g.b.dtype(), g.b.shape())) {
                be.copy(g.a, ta);
                be.copy(g.b, tb);
            }
            g.syncCompute(be);
            merged.add(g);
        }
        return merged;
    }
}
