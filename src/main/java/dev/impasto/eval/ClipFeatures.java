package dev.impasto.eval;

import dev.impasto.Backends;
import dev.impasto.encoders.ClipImages;
import dev.impasto.encoders.ClipModel;
import dev.impasto.tensor.Backend;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * CLIP as a feature extractor: a picture's features are its image embedding (preprocessed as CLIPImageProcessor does,
 * then the vision tower and visual_projection), a prompt's its text embedding (text tower and text_projection), in
 * one space, so {@link ClipScore} compares them and KID can compare pictures on them. Pictures go through the model
 * {@link #BATCH} at a time. Closing it closes the model (and the backend, when it opened one).
 */
public final class ClipFeatures implements FeatureExtractor {
    /** Pictures per forward pass: enough to fill the GPU's matrix units at ViT-L size, small next to FLUX's memory. */
    public static final int BATCH = 16;
    public static final String LARGE_NAME = "CLIP ViT-L/14 (openai/clip-vit-large-patch14)";

    private final ClipModel model;
    private final String name;
    private final Backend ownedBackend;

    /** Wraps {@code model} (closed with this); {@code ownedBackend}, if not null, is closed after it. */
    public ClipFeatures(ClipModel model, String name, Backend ownedBackend) {
        this.model = model;
        this.name = name;
        this.ownedBackend = ownedBackend;
    }

    /**
     * openai/clip-vit-large-patch14 from {@code weights} (its model.safetensors or folder) and {@code tokenizer} (null:
     * beside the weights), on a backend opened for {@code device} (cpu, cuda, cuda:N, auto), computing in bf16 on a GPU
     * and f32 on the CPU.
     */
    public static ClipFeatures open(String device, Path weights, Path tokenizer) throws IOException {
        Backend be = Backends.open(device);
        try {
            ClipModel m = ClipModel.load(be, Backends.computeType(be), ClipModel.Configs.large(), weights, tokenizer);
            return new ClipFeatures(m, LARGE_NAME, be);
        } catch (IOException | RuntimeException e) {
            be.close();
            throw e;
        }
    }

    /** The tiny CLIP with random weights (tests and CI: every code path, meaningless numbers), on a backend opened for {@code device}. */
    public static ClipFeatures tinyRandom(String device, long seed) {
        Backend be = Backends.open(device);
        try {
            return new ClipFeatures(tinyModel(be, seed), tinyName(seed), be);
        } catch (RuntimeException e) {
            be.close();
            throw e;
        }
    }

    /** The tiny random CLIP on {@code be}, which the caller keeps. */
    public static ClipFeatures tinyRandom(Backend be, long seed) {
        return new ClipFeatures(tinyModel(be, seed), tinyName(seed), null);
    }

    private static ClipModel tinyModel(Backend be, long seed) {
        return ClipModel.random(be, Backends.computeType(be), ClipModel.Configs.tiny(), seed);
    }

    private static String tinyName(long seed) {
        return "tiny random CLIP (seed " + seed + "; a test model: its numbers mean nothing)";
    }

    public ClipModel model() {
        return model;
    }

    @Override
    public String name() {
        return name;
    }

    /** Embedding length (768 for ViT-L/14). */
    public int dim() {
        return model.configs().projection();
    }

    @Override
    public float[] image(BufferedImage image) {
        return images(List.of(image))[0];
    }

    @Override
    public float[][] images(List<BufferedImage> images) {
        int size = model.configs().vision().imageSize(), plane = 3 * size * size;
        float[][] out = new float[images.size()][];
        for (int i0 = 0; i0 < images.size(); i0 += BATCH) {
            int n = Math.min(BATCH, images.size() - i0);
            float[] pixels = new float[n * plane];
            for (int i = 0; i < n; i++) System.arraycopy(ClipImages.pixelValues(images.get(i0 + i), size), 0, pixels, i * plane, plane);
            float[][] e = model.embedPixels(pixels, n);
            System.arraycopy(e, 0, out, i0, n);
        }
        return out;
    }

    @Override
    public boolean hasText() {
        return true;
    }

    @Override
    public float[] text(String prompt) {
        return model.embedTexts(List.of(prompt))[0];
    }

    @Override
    public void close() {
        try {
            model.close();
        } finally {
            if (ownedBackend != null) ownedBackend.close();
        }
    }
}
