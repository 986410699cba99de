package dev.impasto.eval;

import java.util.Random;

/**
 * Kernel Inception Distance (Binkowski et al. 2018): the unbiased estimate of the squared maximum mean discrepancy
 * between two sets of feature vectors under the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over
 * random subsets as torch-fidelity and clean-fid do (100 subsets of 1000 by default). Unlike FID it is unbiased, so
 * small sets (hundreds of pictures) give usable numbers; it can come out slightly negative when the sets match.
 */
public final class Kid {
    public static final int DEFAULT_SUBSETS = 100, DEFAULT_SUBSET_SIZE = 1000;

    private Kid() {}

    /** The mean and standard deviation over subsets, with how many subsets of what size were drawn. */
    public record Result(double mean, double std, int subsets, int subsetSize) {}

    public static double kernel(float[] x, float[] y) {
        double dot = 0;
        for (int i = 0; i < x.length; i++) dot += (double) x[i] * y[i];
        double k = dot / x.length + 1;
        return k * k * k;
    }

    /** Unbiased MMD^2 of two sets (sizes m, n >= 2 may differ): within-set means leave out the diagonal. */
    public static double mmd2Unbiased(float[][] x, float[][] y) {
        int m = x.length, n = y.length;
        if (m < 2 || n < 2) throw new IllegalArgumentException("KID needs at least 2 feature vectors a set (got " + m + " and " + n + ")");
        int d = x[0].length;
        for (float[] v : x) if (v.length != d) throw new IllegalArgumentException("feature vectors of different lengths: " + d + " and " + v.length);
        for (float[] v : y) if (v.length != d) throw new IllegalArgumentException("feature vectors of different lengths: " + d + " and " + v.length);
        double kxx = 0, kyy = 0, kxy = 0;
        for (int i = 0; i < m; i++) for (int j = i + 1; j < m; j++) kxx += kernel(x[i], x[j]);
        for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) kyy += kernel(y[i], y[j]);
        for (float[] a : x) for (float[] b : y) kxy += kernel(a, b);
        return 2 * kxx / ((double) m * (m - 1)) + 2 * kyy / ((double) n * (n - 1)) - 2 * kxy / ((double) m * n);
    }

    /**
     * KID between generated and reference features: {@code subsets} draws of {@code subsetSize} vectors from each set
     * without replacement (the size is capped at the smaller set; when that takes both sets whole, one draw suffices).
     */
    public static Result estimate(float[][] generated, float[][] reference, int subsets, int subsetSize, long seed) {
        int size = Math.min(subsetSize, Math.min(generated.length, reference.length));
        if (size < 2) throw new IllegalArgumentException("KID needs at least 2 pictures in each set (got " + generated.length + " generated, " + reference.length + " reference)");
        if (size == generated.length && size == reference.length) return new Result(mmd2Unbiased(generated, reference), 0, 1, size);
        Random r = new Random(seed);
        double sum = 0, sum2 = 0;
        for (int s = 0; s < subsets; s++) {
            double v = mmd2Unbiased(draw(generated, size, r), draw(reference, size, r));
            sum += v;
            sum2 += v * v;
        }
        double mean = sum / subsets;
        return new Result(mean, Math.sqrt(Math.max(0, sum2 / subsets - mean * mean)), subsets, size);
    }

    private static float[][] draw(float[][] from, int k, Random r) {
        int[] idx = new int[from.length];
        for (int i = 0; i < idx.length; i++) idx[i] = i;
        float[][] out = new float[k][];
        for (int i = 0; i < k; i++) {
            int j = i + r.nextInt(idx.length - i);
            int t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
            out[i] = from[idx[i]];
        }
        return out;
    }
}
