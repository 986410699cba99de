package dev.impasto.encoders;

/**
 * Architecture of a CLIP vision transformer with its projection (transformers CLIPVisionConfig plus CLIPConfig's
 * projection_dim): square pictures of {@code imageSize} cut into {@code patch} x {@code patch} patches, a class token in
 * front, learned positions, pre-LayerNorm blocks with bidirectional attention and a quick-GELU MLP; the class token's
 * final state, layer-normed and projected to {@code projection} dimensions, is the image embedding.
 */
public record ClipVisionConfig(String name, int hidden, int heads, int intermediate, int layers, int patch, int imageSize, int projection,
                               double eps) {
    public ClipVisionConfig {
        if (hidden <= 0 || heads <= 0 || hidden % heads != 0 || intermediate <= 0 || layers <= 0 || patch <= 0 || imageSize <= 0 || projection <= 0)
            throw new IllegalArgumentException("invalid CLIP vision config " + name + ": sizes must be positive and hidden a multiple of heads");
        if (imageSize % patch != 0)
            throw new IllegalArgumentException("invalid CLIP vision config " + name + ": image size " + imageSize + " is not a multiple of the patch size " + patch);
    }

    /** openai/clip-vit-large-patch14's vision tower and projection (304 M parameters): 224 pixels, 16 x 16 patches of 14. */
    public static ClipVisionConfig large() {
        return new ClipVisionConfig("clip-vit-l-14-vision", 1024, 16, 4096, 24, 14, 224, 768, 1e-5);
    }

    /** A two-layer miniature for tests: 32 pixels in 4 x 4 patches of 8, projected to 16 like {@link ClipConfig#tiny()}'s width. */
    public static ClipVisionConfig tiny() {
        return new ClipVisionConfig("clip-tiny-vision", 16, 2, 32, 2, 8, 32, 16, 1e-5);
    }

    public int headDim() {
        return hidden / heads;
    }

    /** Patches along each side. */
    public int grid() {
        return imageSize / patch;
    }

    /** Sequence length: the class token and one token a patch. */
    public int tokens() {
        return grid() * grid() + 1;
    }

    /** Inputs of the patch embedding: 3 channels x patch x patch. */
    public int patchDim() {
        return 3 * patch * patch;
    }

    public long parameterCount() {
        long layer = 4L * (hidden * (long) hidden + hidden) + 2L * hidden * intermediate + intermediate + hidden + 4L * hidden;
        return (long) hidden * patchDim() + hidden + (long) tokens() * hidden + 4L * hidden + layers * layer + (long) projection * hidden;
    }
}
