package dev.impasto.eval;

import java.awt.image.BufferedImage;
import java.util.List;

/**
 * Turns pictures (and, for CLIP-like models, prompts) into feature vectors: KID compares the image features of
 * generated and training pictures; the CLIP score compares an image's features with its prompt's. Implementations
 * wrap a model ({@link ClipFeatures}: CLIP ViT-L/14) or, like {@link PaletteTextureFeatures}, need no weights at all.
 */
public interface FeatureExtractor extends AutoCloseable {
    /** Shown in reports next to every number computed from these features (KID values are only comparable within one extractor). */
    String name();

    /** The feature vector of one picture; every call returns the same length. */
    float[] image(BufferedImage image);

    /** The feature vectors of several pictures, in order; model-backed extractors run them in batches. */
    default float[][] images(List<BufferedImage> images) {
        float[][] out = new float[images.size()][];
        for (int i = 0; i < out.length; i++) out[i] = image(images.get(i));
        return out;
    }

    /** Whether {@link #text} works: CLIP-like extractors embed prompts in the image features' space. */
    default boolean hasText() {
        return false;
    }

    /** The prompt's embedding in the same space as {@link #image}. */
    default float[] text(String prompt) {
        throw new UnsupportedOperationException(name() + " embeds images only: the CLIP score needs an image-text model");
    }

    @Override
    default void close() {}
}
