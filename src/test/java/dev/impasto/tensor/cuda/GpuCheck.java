package dev.impasto.tensor.cuda;

import static org.junit.jupiter.api.Assertions.fail;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import java.util.Arrays;
import java.util.Random;

/**
 * Comparison helpers for the GPU tests: relative L2 error with a message that names the op, shape, dtype, the error,
 * the worst element (row, col, both values) and the first non-finite GPU value.
 */
final class GpuCheck {
    private GpuCheck() {}

    /** Relative L2 tolerance of an op's output in dtype t (fp32 arithmetic vs the CPU's fp64). */
    static double tol(DType t) {
        return switch (t) {
            case F32 -> 1e-5;
            case BF16 -> 1e-2;
            case F16 -> 2e-3;
            default -> 0;
        };
    }

    /** ||g - c|| / ||c||; NaN when g has a non-finite value where c is finite. */
    static double relL2(double[] g, double[] c) {
        double num = 0, den = 0;
        for (int i = 0; i < g.length; i++) {
            if (Double.isNaN(g[i]) && Double.isNaN(c[i])) continue;
            if (!Double.isFinite(g[i]) && Double.isFinite(c[i])) return Double.NaN;
            double d = g[i] - c[i];
            num += d * d;
            den += c[i] * c[i];
        }
        if (den == 0) return num == 0 ? 0 : Double.POSITIVE_INFINITY;
        return Math.sqrt(num / den);
    }

    /** Fails unless relL2(g, c) <= tol; cols lays the flat index out as (row, col) in the message. */
    static void assertClose(String what, double[] g, double[] c, long cols, double tol) {
        if (g.length != c.length) fail(what + ": GPU gave " + g.length + " values, CPU " + c.length);
        double rel = relL2(g, c);
        if (rel <= tol) return;
        // an exactly-zero reference (e.g. dq with a single key: the softmax is constant) has no relative scale:
        // accept rounding-level values instead
        double refNorm = 0, maxAbs = 0;
        boolean finite = true;
        for (int i = 0; i < c.length; i++) {
            refNorm = Math.max(refNorm, Math.abs(c[i]));
            maxAbs = Math.max(maxAbs, Math.abs(g[i]));
            finite &= Double.isFinite(g[i]);
        }
        if (refNorm == 0 && finite && maxAbs <= 1e-6) return;
        int worst = -1, firstBad = -1;
        double worstErr = -1;
        for (int i = 0; i < g.length; i++) {
            if (Double.isNaN(g[i]) && Double.isNaN(c[i])) continue;
            if (!Double.isFinite(g[i]) && Double.isFinite(c[i]) && firstBad < 0) firstBad = i;
            double e = Math.abs(g[i] - c[i]);
            if (Double.isNaN(e)) e = Double.POSITIVE_INFINITY;
            if (e > worstErr) {
                worstErr = e;
                worst = i;
            }
        }
        long cl = Math.max(1, cols);
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("%s: relative L2 error %.3g > %.1g", what, rel, tol));
        if (worst >= 0)
            sb.append(String.format("; worst at index %d (row %d, col %d): gpu %.9g, cpu %.9g", worst, worst / cl, worst % cl, g[worst], c[worst]));
        if (firstBad >= 0)
            sb.append(String.format("; first non-finite GPU value at index %d (row %d, col %d): %s (cpu %.9g) -- unwritten output?",
                    firstBad, firstBad / cl, firstBad % cl, g[firstBad], c[firstBad]));
        int mismatches = 0;
        for (int i = 0; i < g.length; i++) if (Math.abs(g[i] - c[i]) > 1e-3 * (Math.abs(c[i]) + 1e-3) || Double.isNaN(g[i]) != Double.isNaN(c[i])) mismatches++;
        sb.append("; ").append(mismatches).append(" of ").append(g.length).append(" elements differ by more than 1e-3 relative");
        fail(sb.toString());
    }

    static void assertClose(String what, Backend gpu, Tensor g, Backend cpu, Tensor c, double tol) {
        assertClose(what + " " + c.dtype() + Arrays.toString(c.shape()) + (c.isContiguous() ? "" : " stride " + c.rowStride()),
                gpu.toDoubles(g), cpu.toDoubles(c), c.cols(), tol);
    }

    /** Max |g - c| with a message. */
    static void assertAbs(String what, double[] g, double[] c, double tol) {
        if (g.length != c.length) fail(what + ": GPU gave " + g.length + " values, CPU " + c.length);
        for (int i = 0; i < g.length; i++) {
            if (!(Math.abs(g[i] - c[i]) <= tol))
                fail(String.format("%s: element %d differs by %.3g > %.1g: gpu %.9g, cpu %.9g", what, i, Math.abs(g[i] - c[i]), tol, g[i], c[i]));
        }
    }

    /** n values ~ N(0, scale^2), never exactly zero. */
    static double[] gauss(Random r, int n, double scale) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            double x = r.nextGaussian() * scale;
            v[i] = x == 0 ? scale * 1e-3 : x;
        }
        return v;
    }

    /** n values uniform in [lo, hi). */
    static double[] uniform(Random r, int n, double lo, double hi) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = lo + (hi - lo) * r.nextDouble();
        return v;
    }

    /** Distance in units in the last place of float (0 for equal bits, 0 for +0/-0). */
    static long ulps(float a, float b) {
        if (a == b) return 0;
        if (Float.isNaN(a) || Float.isNaN(b)) return Long.MAX_VALUE;
        int ia = Float.floatToRawIntBits(a), ib = Float.floatToRawIntBits(b);
        long la = ia < 0 ? 0x80000000L - (ia & 0x7fffffffL) : ia, lb = ib < 0 ? 0x80000000L - (ib & 0x7fffffffL) : ib;
        return Math.abs(la - lb);
    }
}
