package dev.impasto.encoders;

/**
 * Architecture of a CLIP text transformer (transformers CLIPTextConfig): learned positions, pre-LayerNorm blocks with
 * causal attention and a quick-GELU MLP, final LayerNorm, pooled output at the end-of-text token.
 */
public record ClipConfig(String name, int vocab, int hidden, int heads, int intermediate, int layers, int maxPositions, double eps) {
    public ClipConfig {
        if (vocab <= 0 || hidden <= 0 || heads <= 0 || hidden % heads != 0 || intermediate <= 0 || layers <= 0 || maxPositions <= 0)
            throw new IllegalArgumentException("invalid CLIP config " + name + ": sizes must be positive and hidden a multiple of heads");
    }

    /** openai/clip-vit-large-patch14's text tower, FLUX's pooled-vector encoder (123 M parameters). */
    public static ClipConfig large() {
        return new ClipConfig("clip-vit-l-14", 49408, 768, 12, 3072, 12, 77, 1e-5);
    }

    /** A two-layer miniature for tests; the vocabulary fits {@link ByteTokenizer#clip()}. */
    public static ClipConfig tiny() {
        return new ClipConfig("clip-tiny", 258, 16, 2, 32, 2, 77, 1e-5);
    }

    public int headDim() {
        return hidden / heads;
    }

    public long parameterCount() {
        long layer = 4L * (hidden * (long) hidden + hidden) + 2L * hidden * intermediate + intermediate + hidden + 4L * hidden;
        return (long) vocab * hidden + (long) maxPositions * hidden + layers * layer + 2L * hidden;
    }
}
