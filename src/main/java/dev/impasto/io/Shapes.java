package dev.impasto.io;

import java.util.Arrays;
import java.util.StringJoiner;

/** Small helpers on shapes (long[] in PyTorch order). */
public final class Shapes {
    private Shapes() {}

    /** Product of the dimensions; 1 for a scalar. Throws ArithmeticException on overflow. */
    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        return n;
    }

    /** "[3072, 64]" */
    public static String format(long[] shape) {
        StringJoiner j = new StringJoiner(", ", "[", "]");
        for (long d : shape) j.add(Long.toString(d));
        return j.toString();
    }

    public static boolean equal(long[] a, long[] b) {
        return Arrays.equals(a, b);
    }
}
