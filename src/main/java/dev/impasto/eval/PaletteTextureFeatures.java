package dev.impasto.eval;

import java.awt.image.BufferedImage;

/**
 * A feature extractor that needs no weights: the picture's palette (a 4x4x4 RGB histogram) and texture (a histogram
 * of Sobel gradient magnitudes of luma), each as square roots of its bin shares, scaled so that x.y/d is the mean of
 * the two histograms' Bhattacharyya coefficients (1 for identical statistics). KID over these features says how far
 * apart two sets' colour and texture distributions are; it sees nothing of content, and its numbers are not
 * comparable with KID over Inception or CLIP features.
 */
public final class PaletteTextureFeatures implements FeatureExtractor {
    static final int LEVELS = 4, PALETTE_BINS = LEVELS * LEVELS * LEVELS;
    static final double[] GRADIENT_EDGES = {0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75};
    static final int DIM = PALETTE_BINS + GRADIENT_EDGES.length + 1;
    private final int analysisSize;

    /** Pictures are measured at shorter side {@code analysisSize} (aspect kept). */
    public PaletteTextureFeatures(int analysisSize) {
        this.analysisSize = analysisSize;
    }

    public PaletteTextureFeatures() {
        this(128);
    }

    @Override
    public String name() {
        return "palette-texture histograms (no weights)";
    }

    @Override
    public float[] image(BufferedImage image) {
        BufferedImage a = ImageMetrics.prepare(image, analysisSize);
        int w = a.getWidth(), h = a.getHeight();
        int[] px = a.getRGB(0, 0, w, h, null, 0, w);
        double[] pal = new double[PALETTE_BINS];
        for (int p : px) {
            int r = ((p >> 16) & 255) * LEVELS / 256, g = ((p >> 8) & 255) * LEVELS / 256, b = (p & 255) * LEVELS / 256;
            pal[(r * LEVELS + g) * LEVELS + b]++;
        }
        double[] grad = new double[GRADIENT_EDGES.length + 1];
        for (double m : ImageMetrics.sobelMagnitudes(ImageMetrics.luma(a), w, h)) {
            int bin = 0;
            while (bin < GRADIENT_EDGES.length && m >= GRADIENT_EDGES[bin]) bin++;
            grad[bin]++;
        }
        float[] f = new float[DIM];
        double scale = Math.sqrt(DIM / 2.0);
        put(pal, f, 0, scale);
        put(grad, f, PALETTE_BINS, scale);
        return f;
    }

    private static void put(double[] counts, float[] out, int at, double scale) {
        double total = 0;
        for (double c : counts) total += c;
        for (int i = 0; i < counts.length; i++) out[at + i] = (float) (total == 0 ? 0 : Math.sqrt(counts[i] / total) * scale);
    }
}
