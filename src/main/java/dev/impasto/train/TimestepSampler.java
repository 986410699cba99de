package dev.impasto.train;

import dev.impasto.sample.Sampler;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Where on the noise path each training example sits (t = 0 data, 1 noise). The common choices for FLUX LoRAs:
 * uniform; sigmoid of a scaled normal (kohya's "sigmoid"); logit-normal (SD3's, with mean and std); and
 * flux_shift: a sigmoid-normal t moved by the same resolution-dependent shift the sampler uses, so training spends
 * its steps where sampling at that resolution does.
 */
public final class TimestepSampler {
    public enum Kind {
        UNIFORM, SIGMOID, LOGIT_NORMAL, FLUX_SHIFT;

        public static Kind parse(String s) {
            try {
                return valueOf(s.toUpperCase(Locale.ROOT).replace('-', '_'));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown timestep sampling \"" + s + "\" (uniform, sigmoid, logit_normal, flux_shift)");
            }
        }
    }

    private final Kind kind;
    private final double sigmoidScale, mean, std;

    public TimestepSampler(Kind kind, double sigmoidScale, double mean, double std) {
        this.kind = kind;
        this.sigmoidScale = sigmoidScale;
        this.mean = mean;
        this.std = std;
    }

    static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    /** A timestep in (0, 1) for an image of {@code imageSeqLen} tokens. */
    public double sample(SplittableRandom r, long imageSeqLen) {
        double t = switch (kind) {
            case UNIFORM -> r.nextDouble();
            case SIGMOID -> sigmoid(sigmoidScale * gaussian(r));
            case LOGIT_NORMAL -> sigmoid(mean + std * gaussian(r));
            case FLUX_SHIFT -> {
                double u = sigmoid(gaussian(r));
                double mu = Sampler.mu(imageSeqLen, 0.5, 1.15);
                yield Math.exp(mu) / (Math.exp(mu) + (1 / u - 1));
            }
        };
        return Math.min(1 - 1e-6, Math.max(1e-6, t));
    }

    /** Box-Muller from the generator (SplittableRandom has no nextGaussian that is stable across JDKs). */
    static double gaussian(SplittableRandom r) {
        double u1 = 1 - r.nextDouble(), u2 = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }
}
