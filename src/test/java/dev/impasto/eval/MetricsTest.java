package dev.impasto.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class MetricsTest {
    static BufferedImage solid(int w, int h, int rgb) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, rgb);
        return img;
    }

    @Test
    void pixelStatisticsOfKnownPictures() {
        Map<String, Double> red = ImageMetrics.measure(solid(64, 64, 0xFF0000), 64);
        // rg = 255, yb = 127.5, no spread: M = 0.3 * sqrt(255^2 + 127.5^2)
        assertEquals(0.3 * Math.hypot(255, 127.5), red.get("colourfulness"), 1e-9);
        assertEquals(1.0, red.get("saturation"), 1e-12);
        assertEquals(0.0, red.get("near_black"));
        assertEquals(0.0, red.get("edge_density"));
        assertEquals(0.0, red.get("hf_energy"));
        Map<String, Double> grey = ImageMetrics.measure(solid(64, 64, 0x808080), 64);
        assertEquals(0.0, grey.get("colourfulness"), 1e-12);
        assertEquals(0.0, grey.get("saturation"), 1e-12);
        // (200,100,100): (max - min) / max = 0.5
        assertEquals(0.5, ImageMetrics.measure(solid(32, 32, 0xC86464), 32).get("saturation"), 1e-12);
    }

    @Test
    void nearBlackThresholdIsLuma008() {
        // grey 20 has luma 0.0784 (< 0.08), grey 21 has 0.0824
        BufferedImage img = new BufferedImage(10, 10, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 10; y++) for (int x = 0; x < 10; x++) img.setRGB(x, y, x < 3 ? 0x141414 : 0x151515);
        assertEquals(0.3, ImageMetrics.nearBlackFraction(ImageMetrics.luma(img)), 1e-12);
    }

    @Test
    void edgeDensityCountsBothSidesOfAStep() {
        BufferedImage img = new BufferedImage(64, 64, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) img.setRGB(x, y, x < 32 ? 0 : 0xFFFFFF);
        // columns 31 and 32 see the step, in each of the 62 interior rows, out of 62 x 62 interior pixels
        assertEquals(2.0 / 62, ImageMetrics.edgeDensity(ImageMetrics.luma(img), 64, 64), 1e-12);
        double[] mags = ImageMetrics.sobelMagnitudes(ImageMetrics.luma(img), 64, 64);
        assertEquals(1.0, mags[31 - 1], 1e-12); // a unit step gives magnitude 1
        // a step of 0.08 in luma stays under the 0.1 threshold
        for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) img.setRGB(x, y, x < 32 ? 0x646464 : 0x797979);
        assertEquals(0.0, ImageMetrics.edgeDensity(ImageMetrics.luma(img), 64, 64));
    }

    @Test
    void highFrequencyShareSeparatesFineFromCoarse() {
        int n = 64;
        double[] checker = new double[n * n], wave = new double[n * n], flat = new double[n * n];
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++) {
                checker[y * n + x] = (x + y) % 2;
                wave[y * n + x] = 0.5 + 0.5 * Math.sin(2 * Math.PI * x / 32.0);
                flat[y * n + x] = 0.3;
            }
        assertTrue(ImageMetrics.highFrequencyShare(checker) > 0.99, "checkerboard: " + ImageMetrics.highFrequencyShare(checker));
        assertTrue(ImageMetrics.highFrequencyShare(wave) < 0.01, "period-32 wave: " + ImageMetrics.highFrequencyShare(wave));
        assertEquals(0.0, ImageMetrics.highFrequencyShare(flat));
        assertThrows(IllegalArgumentException.class, () -> ImageMetrics.highFrequencyShare(new double[48 * 48]));
    }

    @Test
    void fftMatchesTheDefinition() {
        Random r = new Random(3);
        int n = 16;
        double[] re = new double[n], im = new double[n];
        for (int i = 0; i < n; i++) {
            re[i] = r.nextGaussian();
            im[i] = r.nextGaussian();
        }
        double[] fr = re.clone(), fi = im.clone();
        Fft.transform(fr, fi, 0, 1, n);
        for (int k = 0; k < n; k++) {
            double sr = 0, si = 0;
            for (int t = 0; t < n; t++) {
                double a = -2 * Math.PI * k * t / n;
                sr += re[t] * Math.cos(a) - im[t] * Math.sin(a);
                si += re[t] * Math.sin(a) + im[t] * Math.cos(a);
            }
            assertEquals(sr, fr[k], 1e-9);
            assertEquals(si, fi[k], 1e-9);
        }
    }

    @Test
    void analysisSizeIsAPowerOfTwoUpToTheCap() {
        assertEquals(512, ImageMetrics.analysisSize(1024, 512));
        assertEquals(512, ImageMetrics.analysisSize(768, 512));
        assertEquals(128, ImageMetrics.analysisSize(128, 512));
        assertEquals(128, ImageMetrics.analysisSize(200, 512));
        // a 2:1 picture keeps its aspect; the spectrum is taken from its centred square
        BufferedImage wide = ImageMetrics.prepare(solid(256, 128, 0x336699), 64);
        assertEquals(128, wide.getWidth());
        assertEquals(64, wide.getHeight());
        assertEquals(0.0, ImageMetrics.measure(solid(256, 128, 0x336699), 64).get("hf_energy"));
    }

    @Test
    void wassersteinOneIsExact() {
        assertEquals(1.0, Distributions.wasserstein1(new double[] {0}, new double[] {1}), 1e-12);
        assertEquals(0.0, Distributions.wasserstein1(new double[] {0, 1}, new double[] {1, 0}), 1e-12);
        assertEquals(1.0 / 3, Distributions.wasserstein1(new double[] {0, 0, 1}, new double[] {0, 1, 1}), 1e-12);
        assertEquals(0.5, Distributions.wasserstein1(new double[] {0, 1}, new double[] {0.5}), 1e-12);
        // equal sizes: the mean absolute difference of the sorted samples; shifting by c costs exactly c
        Random r = new Random(5);
        double[] a = new double[200], b = new double[200], c = new double[200];
        for (int i = 0; i < 200; i++) {
            a[i] = r.nextGaussian();
            b[i] = r.nextDouble() * 3;
            c[i] = a[i] + 0.7;
        }
        double[] sa = a.clone(), sb = b.clone();
        java.util.Arrays.sort(sa);
        java.util.Arrays.sort(sb);
        double brute = 0;
        for (int i = 0; i < 200; i++) brute += Math.abs(sa[i] - sb[i]) / 200;
        assertEquals(brute, Distributions.wasserstein1(a, b), 1e-9);
        assertEquals(Distributions.wasserstein1(a, b), Distributions.wasserstein1(b, a), 1e-12);
        assertEquals(0.7, Distributions.wasserstein1(a, c), 1e-9);
        assertThrows(IllegalArgumentException.class, () -> Distributions.wasserstein1(new double[0], a));
    }

    @Test
    void summaryUsesNumpyQuantiles() {
        Distributions.Summary s = Distributions.summary(new double[] {4, 1, 3, 2});
        assertEquals(2.5, s.mean(), 1e-12);
        assertEquals(Math.sqrt(1.25), s.std(), 1e-12);
        assertEquals(2.5, s.median(), 1e-12);
        assertEquals(1.3, s.p10(), 1e-12);
        assertEquals(3.7, s.p90(), 1e-12);
        assertEquals(4, s.count());
    }
}
