package dev.impasto.eval;

import java.util.Arrays;

/** One-dimensional empirical distributions: the Wasserstein-1 distance between two samples, and summaries. */
public final class Distributions {
    private Distributions() {}

    /** Mean, standard deviation (population), median, 10th and 90th percentiles and the sample count. */
    public record Summary(double mean, double std, double median, double p10, double p90, int count) {}

    /**
     * Wasserstein-1 (earth mover's) distance between the empirical distributions of a and b, of any sizes: the
     * integral of |F_a(x) - F_b(x)| over x, exact (no binning).
     */
    public static double wasserstein1(double[] a, double[] b) {
        if (a.length == 0 || b.length == 0) throw new IllegalArgumentException("Wasserstein-1 needs two non-empty samples (got " + a.length + " and " + b.length + ")");
        double[] x = a.clone(), y = b.clone();
        Arrays.sort(x);
        Arrays.sort(y);
        int i = 0, j = 0;
        double prev = Math.min(x[0], y[0]), sum = 0;
        while (i < x.length || j < y.length) {
            double next = j >= y.length || (i < x.length && x[i] <= y[j]) ? x[i] : y[j];
            sum += Math.abs(i / (double) x.length - j / (double) y.length) * (next - prev);
            prev = next;
            while (i < x.length && x[i] == next) i++;
            while (j < y.length && y[j] == next) j++;
        }
        return sum;
    }

    public static Summary summary(double[] v) {
        if (v.length == 0) return new Summary(Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, 0);
        double[] s = v.clone();
        Arrays.sort(s);
        double mean = 0;
        for (double x : s) mean += x;
        mean /= s.length;
        double var = 0;
        for (double x : s) var += (x - mean) * (x - mean);
        return new Summary(mean, Math.sqrt(var / s.length), quantile(s, 0.5), quantile(s, 0.1), quantile(s, 0.9), s.length);
    }

    /** Linear-interpolated quantile of sorted values (numpy's default). */
    static double quantile(double[] sorted, double q) {
        double pos = q * (sorted.length - 1);
        int lo = (int) Math.floor(pos), hi = Math.min(sorted.length - 1, lo + 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }
}
