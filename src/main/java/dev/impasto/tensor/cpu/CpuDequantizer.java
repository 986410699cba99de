package dev.impasto.tensor.cpu;

import dev.impasto.quant.WeightQuantizer;
import dev.impasto.tensor.LinearWeight;

/** Turns any {@link LinearWeight} into a dense double[out][in] for the CPU reference ops. */
final class CpuDequantizer {

    double[][] dense(CpuBackend be, LinearWeight w) {
        if (w instanceof LinearWeight.Dense d) return CpuBackend.matrix(CpuBackend.cpu(d.w()), false);
        float[] flat = WeightQuantizer.dequantize(be, w);
        int n = Math.toIntExact(w.outFeatures()), k = Math.toIntExact(w.inFeatures());
        double[][] m = new double[n][k];
        for (int r = 0; r < n; r++) for (int c = 0; c < k; c++) m[r][c] = flat[r * k + c];
        return m;
    }
}
