package dev.impasto.eval;

/** In-place radix-2 complex FFT (forward, unnormalised), 1-D and over the rows then columns of a square plane. */
final class Fft {
    private Fft() {}

    static void transform(double[] re, double[] im, int off, int stride, int n) {
        if (Integer.bitCount(n) != 1) throw new IllegalArgumentException("FFT length must be a power of two, got " + n);
        for (int i = 1, j = 0; i < n; i++) {
            int bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j) {
                int a = off + i * stride, b = off + j * stride;
                double t = re[a]; re[a] = re[b]; re[b] = t;
                t = im[a]; im[a] = im[b]; im[b] = t;
            }
        }
        for (int len = 2; len <= n; len <<= 1) {
            double ang = -2 * Math.PI / len;
            double wr = Math.cos(ang), wi = Math.sin(ang);
            for (int i = 0; i < n; i += len) {
                double cr = 1, ci = 0;
                for (int k = 0; k < len / 2; k++) {
                    int a = off + (i + k) * stride, b = off + (i + k + len / 2) * stride;
                    double xr = re[b] * cr - im[b] * ci, xi = re[b] * ci + im[b] * cr;
                    re[b] = re[a] - xr;
                    im[b] = im[a] - xi;
                    re[a] += xr;
                    im[a] += xi;
                    double nr = cr * wr - ci * wi;
                    ci = cr * wi + ci * wr;
                    cr = nr;
                }
            }
        }
    }

    static void transform2d(double[] re, double[] im, int n) {
        for (int y = 0; y < n; y++) transform(re, im, y * n, 1, n);
        for (int x = 0; x < n; x++) transform(re, im, x, n, n);
    }
}
