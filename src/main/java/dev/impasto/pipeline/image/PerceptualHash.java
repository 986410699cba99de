package dev.impasto.pipeline.image;

import java.awt.image.BufferedImage;
import java.util.Arrays;

/**
 * 64-bit DCT perceptual hash (pHash): 32x32 grey, 2-D DCT-II, the 8x8 lowest frequencies without DC, each
 * bit = coefficient above the median. Re-encodes, rescales and small crops of one picture land within a few
 * bits; different pictures differ in about 32.
 */
public final class PerceptualHash {
    private static final int N = 32;
    private static final double[][] COS = new double[8][N];

    static {
        for (int u = 0; u < 8; u++)
            for (int x = 0; x < N; x++) COS[u][x] = Math.cos((2 * x + 1) * u * Math.PI / (2 * N));
    }

    private PerceptualHash() {}

    public static long of(BufferedImage img) {
        BufferedImage small = ImageOps.resize(img, N, N);
        double[][] grey = new double[N][N];
        for (int y = 0; y < N; y++)
            for (int x = 0; x < N; x++) {
                int p = small.getRGB(x, y);
                grey[y][x] = 0.299 * ((p >> 16) & 255) + 0.587 * ((p >> 8) & 255) + 0.114 * (p & 255);
            }
        double[] coeff = new double[64];
        double[][] rows = new double[N][8];
        for (int y = 0; y < N; y++)
            for (int u = 0; u < 8; u++) {
                double s = 0;
                for (int x = 0; x < N; x++) s += grey[y][x] * COS[u][x];
                rows[y][u] = s;
            }
        for (int v = 0; v < 8; v++)
            for (int u = 0; u < 8; u++) {
                double s = 0;
                for (int y = 0; y < N; y++) s += rows[y][u] * COS[v][y];
                coeff[v * 8 + u] = s;
            }
        double[] ac = Arrays.copyOfRange(coeff, 1, 64);
        Arrays.sort(ac);
        double median = ac[ac.length / 2];
        long hash = 0;
        for (int i = 1; i < 64; i++) if (coeff[i] > median) hash |= 1L << i;
        return hash;
    }

    public static int distance(long a, long b) {
        return Long.bitCount(a ^ b);
    }

    public static String hex(long h) {
        return String.format("%016x", h);
    }
}
