package dev.impasto.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The KID and CLIP-score math, against hand computations and a synthetic feature extractor. */
class KidAndClipTest {

    static float[][] gaussian(int n, int d, double shift, long seed) {
        Random r = new Random(seed);
        float[][] x = new float[n][d];
        for (float[] v : x) for (int i = 0; i < d; i++) v[i] = (float) (r.nextGaussian() + shift);
        return x;
    }

    @Test
    void unbiasedMmdByHand() {
        // d = 1, k(a, b) = (ab + 1)^3: X = {0, 0}, Y = {1, 1}: Kxx = 1, Kyy = 8, Kxy = 1 -> 1 + 8 - 2 = 7
        assertEquals(7.0, Kid.mmd2Unbiased(new float[][] {{0}, {0}}, new float[][] {{1}, {1}}), 1e-12);
        assertEquals(8.0, Kid.kernel(new float[] {1, 1}, new float[] {1, 1}), 1e-12);
    }

    @Test
    void unbiasedMmdMatchesTheDefinitionForUnequalSizes() {
        float[][] x = gaussian(7, 5, 0, 1), y = gaussian(11, 5, 0.5, 2);
        double kxx = 0, kyy = 0, kxy = 0;
        for (int i = 0; i < 7; i++) for (int j = 0; j < 7; j++) if (i != j) kxx += Kid.kernel(x[i], x[j]);
        for (int i = 0; i < 11; i++) for (int j = 0; j < 11; j++) if (i != j) kyy += Kid.kernel(y[i], y[j]);
        for (float[] a : x) for (float[] b : y) kxy += Kid.kernel(a, b);
        double expect = kxx / (7 * 6) + kyy / (11 * 10) - 2 * kxy / (7 * 11);
        assertEquals(expect, Kid.mmd2Unbiased(x, y), 1e-9);
    }

    @Test
    void kidGrowsWithTheShiftAndIsNearZeroForOneDistribution() {
        float[][] ref = gaussian(300, 16, 0, 10);
        Kid.Result same = Kid.estimate(gaussian(300, 16, 0, 11), ref, 20, 100, 1);
        Kid.Result near = Kid.estimate(gaussian(300, 16, 0.3, 12), ref, 20, 100, 1);
        Kid.Result far = Kid.estimate(gaussian(300, 16, 1.0, 13), ref, 20, 100, 1);
        assertTrue(Math.abs(same.mean()) < 0.05, "same distribution: " + same);
        assertTrue(near.mean() > same.mean() + 0.05, near + " vs " + same);
        assertTrue(far.mean() > near.mean() * 3, far + " vs " + near);
        assertEquals(20, far.subsets());
        assertEquals(100, far.subsetSize());
        assertTrue(far.std() > 0);
        // seeded: the same draws give the same number
        assertEquals(far.mean(), Kid.estimate(gaussian(300, 16, 1.0, 13), ref, 20, 100, 1).mean(), 0);
    }

    @Test
    void smallSetsAreUsedWholeOnce() {
        float[][] x = gaussian(6, 4, 0, 1), y = gaussian(6, 4, 1, 2);
        Kid.Result r = Kid.estimate(x, y, 100, 1000, 7);
        assertEquals(1, r.subsets());
        assertEquals(6, r.subsetSize());
        assertEquals(0.0, r.std());
        assertEquals(Kid.mmd2Unbiased(x, y), r.mean(), 0);
        var e = assertThrows(IllegalArgumentException.class, () -> Kid.estimate(new float[][] {{1}}, y, 10, 10, 1));
        assertTrue(e.getMessage().contains("at least 2"), e.getMessage());
    }

    /** A synthetic CLIP: an image embeds as its mean RGB, a prompt as the RGB of the colour it names. */
    static final class ColourClip implements FeatureExtractor {
        @Override
        public String name() {
            return "colour-clip (test)";
        }

        @Override
        public float[] image(BufferedImage img) {
            double[] m = new double[3];
            int n = img.getWidth() * img.getHeight();
            for (int y = 0; y < img.getHeight(); y++)
                for (int x = 0; x < img.getWidth(); x++) {
                    int p = img.getRGB(x, y);
                    m[0] += ((p >> 16) & 255) / 255.0 / n;
                    m[1] += ((p >> 8) & 255) / 255.0 / n;
                    m[2] += (p & 255) / 255.0 / n;
                }
            return new float[] {(float) m[0], (float) m[1], (float) m[2]};
        }

        @Override
        public boolean hasText() {
            return true;
        }

        @Override
        public float[] text(String prompt) {
            int[] c = FakeGenerator.COLOURS.get(prompt);
            return new float[] {c[0] / 255f, c[1] / 255f, c[2] / 255f};
        }
    }

    @Test
    void clipScoreIsTwoAndAHalfTimesThePositiveCosine() {
        assertEquals(2.5, ClipScore.score(new float[] {1, 0, 0}, new float[] {3, 0, 0}), 1e-12);
        assertEquals(0.0, ClipScore.score(new float[] {1, 0, 0}, new float[] {0, 1, 0}), 1e-12);
        assertEquals(0.0, ClipScore.score(new float[] {1, 0, 0}, new float[] {-1, 0, 0}), 1e-12); // negative cosines clip to 0
        assertEquals(2.5 * Math.cos(Math.PI / 4), ClipScore.score(new float[] {1, 1, 0}, new float[] {1, 0, 0}), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> ClipScore.score(new float[2], new float[3]));
        ColourClip clip = new ColourClip();
        BufferedImage red = MetricsTest.solid(8, 8, 0xDC1E1E);
        double self = ClipScore.score(clip.image(red), clip.text("red")), other = ClipScore.score(clip.image(red), clip.text("blue"));
        assertEquals(2.5, self, 1e-6);
        assertTrue(other < 0.7 * self, other + " vs " + self);
    }

    @Test
    void paletteTextureFeaturesAreHellingerEmbeddings() {
        PaletteTextureFeatures f = new PaletteTextureFeatures(32);
        float[] a = f.image(MetricsTest.solid(64, 64, 0xFF0000)), b = f.image(MetricsTest.solid(64, 64, 0x0000FF));
        assertEquals(PaletteTextureFeatures.DIM, a.length);
        double aa = 0, ab = 0;
        for (int i = 0; i < a.length; i++) {
            aa += a[i] * a[i];
            ab += a[i] * b[i];
        }
        // x.x / d = mean Bhattacharyya coefficient = 1; red vs blue share no palette bin but the same (flat) texture: 0.5
        assertEquals(1.0, aa / a.length, 1e-5);
        assertEquals(0.5, ab / a.length, 1e-5);
    }
}
