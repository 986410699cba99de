package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;

/**
 * FLUX's 3-axis rotary position embedding (EmbedND). Text tokens sit at position (0, 0, 0); the image token of
 * packed-latent row r and column c sits at (0, r, c). For each axis of dimension d, pair j rotates by
 * pos * theta^(-2j/d); the axes' pairs are concatenated (8 + 28 + 28 = 64 pairs for FLUX's head dim 128). Computed in
 * float64 and stored as float32 (cos, sin) pairs, as the reference does.
 */
public final class Rope {
    private Rope() {}

    /** [txtLen + h * w, headDim / 2, 2] as row-major doubles. */
    public static double[] table(FluxConfig cfg, int txtLen, int gridH, int gridW) {
        int[] axes = cfg.axesDim();
        int pairs = cfg.headDim() / 2;
        int len = txtLen + gridH * gridW;
        double[] pe = new double[len * pairs * 2];
        for (int t = 0; t < len; t++) {
            double[] pos = t < txtLen ? new double[] {0, 0, 0} : new double[] {0, (t - txtLen) / gridW, (t - txtLen) % gridW};
            int j = 0;
            for (int a = 0; a < axes.length; a++) {
                for (int i = 0; i < axes[a] / 2; i++, j++) {
                    double omega = 1.0 / Math.pow(cfg.theta(), (2.0 * i) / axes[a]);
                    double ang = (a < pos.length ? pos[a] : 0) * omega;
                    pe[(t * pairs + j) * 2] = (float) Math.cos(ang);
                    pe[(t * pairs + j) * 2 + 1] = (float) Math.sin(ang);
                }
            }
        }
        return pe;
    }

    public static Tensor tensor(Backend be, FluxConfig cfg, int txtLen, int gridH, int gridW) {
        return be.fromDoubles(table(cfg, txtLen, gridH, gridW), DType.F32, txtLen + (long) gridH * gridW, cfg.headDim() / 2, 2);
    }
}
