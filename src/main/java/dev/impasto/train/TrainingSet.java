package dev.impasto.train;

/**
 * What the trainer reads: per item a latent (unpacked [C, H, W]), the prompt's T5 token embeddings and CLIP pooled
 * vector, and its caption. Items of one batch must share the latent size (an aspect-ratio bucket).
 */
public interface TrainingSet extends AutoCloseable {
    /** One item, on the host. */
    record Item(float[] latent, int channels, int height, int width, float[] text, int textLen, float[] pooled, String caption) {}

    int size();

    Item item(int index);

    /** The latent size of an item, "HxW", without loading it. */
    String bucket(int index);

    /** Embeddings of the empty prompt (caption dropout), as an Item with no latent. */
    Item emptyPrompt();

    int latentChannels();

    int textDim();

    int pooledDim();

    @Override
    default void close() {}
}
