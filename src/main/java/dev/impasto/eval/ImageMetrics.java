package dev.impasto.eval;

import dev.impasto.pipeline.image.ImageInspector;
import dev.impasto.pipeline.image.ImageOps;
import java.awt.image.BufferedImage;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The pixel statistics a style LoRA is measured by (docs/pipeline.md, "Measuring a style LoRA"), per image. Every
 * image is first brought to one analysis size (shorter side {@code analysisSize}, aspect kept) so that the
 * resolution-dependent statistics (edges, spectrum) compare generated and training pictures at the same scale.
 */
public final class ImageMetrics {
    /** Luma (Rec. 709 weights on sRGB values in 0..1) under this counts as near-black. */
    public static final double NEAR_BLACK_LUMA = 0.08;
    /** Sobel gradient magnitude of luma (a unit step gives 1) over this counts as an edge pixel. */
    public static final double EDGE_THRESHOLD = 0.1;
    /** Radial frequency (cycles per pixel; Nyquist is 0.5) above which spectral energy counts as high-frequency. */
    public static final double HIGH_FREQUENCY_CUTOFF = 0.25;
    /** The largest analysis size: pictures are never measured at a shorter side above this. */
    public static final int MAX_ANALYSIS_SIZE = 512;

    /** The statistics, each with its report label and what it says. */
    public enum Metric {
        COLOURFULNESS("colourfulness", "Colourfulness", "Hasler-Suesstrunk M on 0-255 values: sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)"),
        NEAR_BLACK("near_black", "Near-black fraction", "share of pixels with luma 0.2126R + 0.7152G + 0.0722B under 0.08"),
        SATURATION("saturation", "HSV saturation", "mean HSV saturation (max - min) / max, 0..1"),
        EDGE_DENSITY("edge_density", "Edge density", "share of pixels whose Sobel luma gradient exceeds 0.1 (a unit step gives 1)"),
        HF_ENERGY("hf_energy", "High-frequency energy", "share of the grayscale spectrum's energy (Hann window, DC removed) above 0.25 cycles/pixel");

        public final String key, label, description;

        Metric(String key, String label, String description) {
            this.key = key;
            this.label = label;
            this.description = description;
        }
    }

    public static final List<Metric> ALL = List.of(Metric.values());

    private ImageMetrics() {}

    /** All statistics of one image, keyed by {@link Metric#key}, in {@link Metric} order. */
    public static Map<String, Double> measure(BufferedImage image, int analysisSize) {
        BufferedImage a = prepare(image, analysisSize);
        double[] luma = luma(a);
        Map<String, Double> m = new LinkedHashMap<>();
        m.put(Metric.COLOURFULNESS.key, ImageOps.colourfulness(a));
        m.put(Metric.NEAR_BLACK.key, nearBlackFraction(luma));
        m.put(Metric.SATURATION.key, ImageOps.meanSaturation(a));
        m.put(Metric.EDGE_DENSITY.key, edgeDensity(luma, a.getWidth(), a.getHeight()));
        m.put(Metric.HF_ENERGY.key, highFrequencyShare(centreCrop(luma, a.getWidth(), a.getHeight(), pow2Floor(Math.min(a.getWidth(), a.getHeight())))));
        return m;
    }

    /** The image scaled so that its shorter side is {@code size} (aspect kept), as 8-bit RGB. */
    public static BufferedImage prepare(BufferedImage image, int size) {
        BufferedImage rgb = ImageInspector.toRgb(image);
        int w = rgb.getWidth(), h = rgb.getHeight();
        if (Math.min(w, h) == size) return rgb;
        double s = size / (double) Math.min(w, h);
        return ImageOps.resize(rgb, Math.max(size, (int) Math.round(w * s)), Math.max(size, (int) Math.round(h * s)));
    }

    /** The analysis size for a set of images: a power of two no larger than the smallest shorter side, at most {@code cap}. */
    public static int analysisSize(int smallestSide, int cap) {
        return pow2Floor(Math.max(8, Math.min(smallestSide, cap)));
    }

    static int pow2Floor(int n) {
        return Integer.highestOneBit(Math.max(1, n));
    }

    /** Luma in 0..1 per pixel, row-major. */
    public static double[] luma(BufferedImage rgb) {
        int w = rgb.getWidth(), h = rgb.getHeight();
        int[] px = rgb.getRGB(0, 0, w, h, null, 0, w);
        double[] y = new double[px.length];
        for (int i = 0; i < px.length; i++) {
            int p = px[i];
            y[i] = (0.2126 * ((p >> 16) & 255) + 0.7152 * ((p >> 8) & 255) + 0.0722 * (p & 255)) / 255.0;
        }
        return y;
    }

    public static double nearBlackFraction(double[] luma) {
        int n = 0;
        for (double v : luma) if (v < NEAR_BLACK_LUMA) n++;
        return n / (double) luma.length;
    }

    /** Share of interior pixels whose Sobel gradient magnitude exceeds {@link #EDGE_THRESHOLD}. */
    public static double edgeDensity(double[] luma, int w, int h) {
        double[] g = sobelMagnitudes(luma, w, h);
        if (g.length == 0) return 0;
        long edges = 0;
        for (double m : g) if (m > EDGE_THRESHOLD) edges++;
        return edges / (double) g.length;
    }

    /** Sobel gradient magnitudes (kernels divided by 4, so a unit step gives 1) of the (w-2) x (h-2) interior pixels. */
    public static double[] sobelMagnitudes(double[] luma, int w, int h) {
        if (w < 3 || h < 3) return new double[0];
        double[] out = new double[(w - 2) * (h - 2)];
        int k = 0;
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++) {
                int i = y * w + x;
                double gx = (luma[i - w + 1] + 2 * luma[i + 1] + luma[i + w + 1] - luma[i - w - 1] - 2 * luma[i - 1] - luma[i + w - 1]) / 4;
                double gy = (luma[i + w - 1] + 2 * luma[i + w] + luma[i + w + 1] - luma[i - w - 1] - 2 * luma[i - w] - luma[i - w + 1]) / 4;
                out[k++] = Math.sqrt(gx * gx + gy * gy);
            }
        return out;
    }

    /** The centred n x n window of a row-major w x h plane. */
    static double[] centreCrop(double[] plane, int w, int h, int n) {
        double[] out = new double[n * n];
        int x0 = (w - n) / 2, y0 = (h - n) / 2;
        for (int y = 0; y < n; y++) System.arraycopy(plane, (y0 + y) * w + x0, out, y * n, n);
        return out;
    }

    /**
     * Share of spectral energy above {@link #HIGH_FREQUENCY_CUTOFF} of an n x n plane (n a power of two): the mean is
     * removed and a Hann window applied first, so the picture's borders do not count as high-frequency content. A flat
     * picture has no energy at all and scores 0.
     */
    public static double highFrequencyShare(double[] square) {
        int n = (int) Math.round(Math.sqrt(square.length));
        if (n * n != square.length || Integer.bitCount(n) != 1) throw new IllegalArgumentException("expected a power-of-two square plane, got " + square.length + " values");
        double mean = 0;
        for (double v : square) mean += v;
        mean /= square.length;
        double[] win = new double[n];
        for (int i = 0; i < n; i++) win[i] = 0.5 - 0.5 * Math.cos(2 * Math.PI * i / n);
        double[] re = new double[n * n], im = new double[n * n];
        for (int y = 0; y < n; y++) for (int x = 0; x < n; x++) re[y * n + x] = (square[y * n + x] - mean) * win[y] * win[x];
        Fft.transform2d(re, im, n);
        double total = 0, high = 0;
        for (int v = 0; v < n; v++)
            for (int u = 0; u < n; u++) {
                if (u == 0 && v == 0) continue;
                double fu = (u <= n / 2 ? u : u - n) / (double) n, fv = (v <= n / 2 ? v : v - n) / (double) n;
                double e = re[v * n + u] * re[v * n + u] + im[v * n + u] * im[v * n + u];
                total += e;
                if (Math.hypot(fu, fv) > HIGH_FREQUENCY_CUTOFF) high += e;
            }
        return total <= 1e-18 ? 0 : high / total;
    }
}
