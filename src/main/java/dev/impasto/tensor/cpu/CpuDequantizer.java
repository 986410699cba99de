package dev.impasto.tensor.cpu;

import dev.impasto.tensor.LinearWeight;
import java.util.ArrayList;
import java.util.List;

/** Turns any {@link LinearWeight} into a dense double[out][in] for the CPU reference ops. */
final class CpuDequantizer {

    double[][] dense(CpuBackend be, LinearWeight w) {
        return switch (w) {
            case LinearWeight.Dense d -> CpuBackend.matrix(CpuBackend.cpu(d.w()), false);
            case LinearWeight.Stacked s -> {
                List<double[]> rows = new ArrayList<>();
                for (LinearWeight p : s.parts()) rows.addAll(List.of(dense(be, p)));
                yield rows.toArray(double[][]::new);
            }
            default -> throw new UnsupportedOperationException("CPU dequantization of " + w.format() + " is not available yet");
        };
    }
}
