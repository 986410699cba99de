package dev.impasto.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.tensor.cpu.CpuBackend;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The tiny random CLIP as a feature extractor: embedding sizes, self-similarity, score range, batching. */
class ClipFeaturesTest {
    final CpuBackend be = new CpuBackend();

    static BufferedImage picture(int w, int h, long seed) {
        java.util.Random r = new java.util.Random(seed);
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        int a = r.nextInt(0xFFFFFF), b = r.nextInt(0xFFFFFF), period = 3 + r.nextInt(9);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, ((x + y) / period) % 2 == 0 ? a : b);
        return img;
    }

    @Test
    void embeddingsHaveTheProjectionWidthAndAPictureMatchesItselfExactly() {
        try (ClipFeatures clip = ClipFeatures.tinyRandom(be, 1)) {
            assertTrue(clip.hasText());
            assertTrue(clip.name().contains("tiny random CLIP"), clip.name());
            assertEquals(16, clip.dim());
            BufferedImage img = picture(48, 40, 1);
            float[] a = clip.image(img), again = clip.image(img);
            assertEquals(clip.dim(), a.length);
            assertArrayEquals(a, again, "deterministic");
            assertEquals(1.0, ClipScore.cosine(a, again), 1e-9);
            float[] t = clip.text("a red disc on a dark background");
            assertEquals(clip.dim(), t.length);
            assertTrue(ClipScore.cosine(t, clip.text("stripes")) < 0.9999, "different prompts embed differently");
            double other = ClipScore.cosine(a, clip.image(picture(48, 40, 2)));
            assertTrue(other < 0.9999, "different pictures embed differently: " + other);
        }
    }

    @Test
    void clipScoresStayWithinZeroAndTwoAndAHalf() {
        try (ClipFeatures clip = ClipFeatures.tinyRandom(be, 7)) {
            List<String> prompts = List.of("disc", "square", "stripes", "ring", "", "a very long prompt ".repeat(10));
            int positive = 0;
            for (int i = 0; i < 6; i++) {
                float[] img = clip.image(picture(64 + 8 * i, 64, 10 + i));
                for (String p : prompts) {
                    double s = ClipScore.score(img, clip.text(p));
                    assertTrue(s >= 0 && s <= 2.5 && Double.isFinite(s), p + ": " + s);
                    assertEquals(2.5 * Math.max(ClipScore.cosine(img, clip.text(p)), 0), s, 1e-12);
                    if (s > 0) positive++;
                }
            }
            assertTrue(positive > 0, "random embeddings are not all at negative cosines");
        }
    }

    @Test
    void batchedPicturesEmbedAsTheyDoOneByOne() {
        try (ClipFeatures clip = ClipFeatures.tinyRandom(be, 3)) {
            List<BufferedImage> pics = new ArrayList<>();
            for (int i = 0; i < ClipFeatures.BATCH + 3; i++) pics.add(picture(40 + i, 36, i)); // two batches, the second partial
            float[][] batched = clip.images(pics);
            assertEquals(pics.size(), batched.length);
            for (int i : new int[] {0, ClipFeatures.BATCH - 1, ClipFeatures.BATCH, pics.size() - 1}) {
                float[] one = clip.image(pics.get(i));
                for (int j = 0; j < one.length; j++) assertEquals(one[j], batched[i][j], 1e-5f, "picture " + i);
            }
        }
    }
}
