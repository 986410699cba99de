package dev.impasto.eval;

/**
 * CLIP score (Hessel et al. 2021): 2.5 * max(cos(image, prompt), 0) between a picture's and its prompt's CLIP
 * embeddings; 0 = unrelated, about 0.75-0.9 for a good FLUX picture of its prompt with ViT-L/14.
 */
public final class ClipScore {
    public static final double WEIGHT = 2.5;

    private ClipScore() {}

    public static double score(float[] image, float[] text) {
        if (image.length != text.length) throw new IllegalArgumentException("image and text embeddings differ in length: " + image.length + " vs " + text.length);
        return WEIGHT * Math.max(cosine(image, text), 0);
    }

    public static double cosine(float[] a, float[] b) {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            na += (double) a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        return na == 0 || nb == 0 ? 0 : dot / Math.sqrt(na * nb);
    }
}
