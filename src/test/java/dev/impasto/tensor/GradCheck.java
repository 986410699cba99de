package dev.impasto.tensor;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.function.Function;

/** Central finite differences in float64 against an analytical gradient. */
public final class GradCheck {
    private GradCheck() {}

    public static double[] random(Random rnd, int n, double scale) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            double x;
            do x = rnd.nextGaussian() * scale; while (Math.abs(x) < 1e-3 * scale); // non-zero
            v[i] = x;
        }
        return v;
    }

    /**
     * Checks d(sum(w * f(x)))/dx == analytic, element by element, with relative tolerance tol (on the vector's L2
     * norm) and per-element absolute tolerance atol.
     */
    public static void check(String what, double[] x, Function<double[], double[]> f, double[] w, double[] analytic, double tol) {
        double h = 1e-6;
        double[] numeric = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double old = x[i];
            x[i] = old + h;
            double lp = dot(w, f.apply(x));
            x[i] = old - h;
            double lm = dot(w, f.apply(x));
            x[i] = old;
            numeric[i] = (lp - lm) / (2 * h);
        }
        double err = relL2(analytic, numeric);
        assertTrue(err <= tol, what + ": analytic vs numeric gradient rel L2 error " + err + " > " + tol
                + " (first elements analytic " + head(analytic) + " numeric " + head(numeric) + ")");
        double norm = 0;
        for (double v : numeric) norm += v * v;
        assertTrue(norm > 1e-12, what + ": gradient is zero: the check would be vacuous");
    }

    public static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    public static double relL2(double[] a, double[] ref) {
        if (a.length != ref.length) throw new AssertionError("length " + a.length + " vs " + ref.length);
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            if (Double.isNaN(a[i])) return Double.POSITIVE_INFINITY;
            num += (a[i] - ref[i]) * (a[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-300));
    }

    private static String head(double[] v) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < Math.min(4, v.length); i++) sb.append(i > 0 ? ", " : "").append(String.format("%.6g", v[i]));
        return sb.append(v.length > 4 ? ", ...]" : "]").toString();
    }
}
