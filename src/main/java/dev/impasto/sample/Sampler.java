package dev.impasto.sample;

import dev.impasto.model.FluxModel;
import dev.impasto.model.LoraContext;
import dev.impasto.model.Rope;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.util.ProgressBar;
import java.util.function.IntConsumer;

/**
 * FLUX sampling: Euler steps of the rectified-flow ODE from noise (t = 1) to data (t = 0) on the reference schedule
 * (black-forest-labs/flux sampling.py get_schedule/denoise): linspace(1, 0, N + 1), shifted for FLUX.1-dev by
 * t' = e^mu / (e^mu + 1/t - 1) with mu linear in the image token count through (256, 0.5) and (4096, 1.15);
 * img += (t_next - t) * v.
 */
public final class Sampler {
    private Sampler() {}

    /** What to sample. latentH/latentW are in latent pixels (image pixels / 8 for FLUX's VAE; the toy world's are 1:1). */
    public record Settings(int steps, double guidance, long seed, boolean shift, double loraScale) {
        public Settings {
            if (steps < 1 || steps > 1000) throw new IllegalArgumentException("steps must be in 1..1000, got " + steps);
        }
    }

    public static double mu(long imageSeqLen, double baseShift, double maxShift) {
        double m = (maxShift - baseShift) / (4096 - 256);
        return baseShift + m * (imageSeqLen - 256);
    }

    /** The N + 1 timesteps from 1 to 0. */
    public static double[] schedule(int steps, long imageSeqLen, boolean shift) {
        double[] t = new double[steps + 1];
        double mu = mu(imageSeqLen, 0.5, 1.15);
        for (int i = 0; i <= steps; i++) {
            double v = 1.0 - (double) i / steps;
            if (shift) v = v <= 0 ? 0 : Math.exp(mu) / (Math.exp(mu) + (1 / v - 1));
            t[i] = v;
        }
        return t;
    }

    /**
     * Samples B latents (packed tokens [B, (H/2)(W/2), in channels]); txt [B, Lt, ctx] and y [B, vec] are the prompt
     * embeddings. Item b starts from the noise of seed + b, so a batch equals the same seeds sampled one by one.
     */
    public static Tensor sample(FluxModel model, Tensor txt, Tensor y, int latentH, int latentW, Settings s, IntConsumer onStep) {
        Backend be = model.backend;
        DType dt = model.dtype;
        int batch = (int) y.rows();
        int gh = latentH / 2, gw = latentW / 2;
        long len = (long) gh * gw;
        int ch = model.config.inChannels();
        long txtLen = txt.rows() / batch;
        Tensor img = be.empty(dt, batch, len, ch);
        try (Tensor pe = Rope.tensor(be, model.config, (int) txtLen, gh, gw);
             Tensor tvec = be.empty(DType.F32, batch); Tensor gvec = be.empty(DType.F32, batch)) {
            for (int b = 0; b < batch; b++) be.randn(img.rows(b * len, (b + 1) * len), s.seed() + b);
            be.fill(gvec, s.guidance());
            double[] ts = schedule(s.steps(), len, s.shift());
            LoraContext ctx = new LoraContext(s.loraScale(), false, 0);
            for (int i = 0; i < s.steps(); i++) {
                be.fill(tvec, ts[i]);
                try (Tensor v = model.forward(new FluxModel.Inputs(img, txt, y, tvec, model.config.guidanceEmbed() ? gvec : null, pe), ctx)) {
                    be.axpby(img, ts[i + 1] - ts[i], v, 1);
                }
                if (onStep != null) onStep.accept(i + 1);
            }
            return img;
        } catch (RuntimeException e) {
            img.close();
            throw e;
        }
    }

    /** {@link #sample} with a progress bar on stderr. */
    public static Tensor sampleWithProgress(FluxModel model, Tensor txt, Tensor y, int latentH, int latentW, Settings s, String label) {
        try (ProgressBar bar = new ProgressBar(label, s.steps(), "step")) {
            return sample(model, txt, y, latentH, latentW, s, bar::set);
        }
    }
}
