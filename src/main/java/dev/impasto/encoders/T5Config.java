package dev.impasto.encoders;

/**
 * Architecture of a T5 v1.1 encoder (transformers T5Config, encoder side): gated-GELU feed-forward, RMSNorm without
 * bias, relative-position-bucket attention bias computed once in the first layer and shared by all layers, no
 * scaling of attention scores.
 *
 * @param maxLength tokens every prompt is padded to (512 for FLUX.1-dev, 256 for FLUX.1-schnell)
 */
public record T5Config(String name, int vocab, int dModel, int dKv, int heads, int dFf, int layers, int numBuckets,
                       int maxDistance, double eps, int maxLength) {
    public T5Config {
        if (vocab <= 0 || dModel <= 0 || dKv <= 0 || heads <= 0 || dFf <= 0 || layers <= 0 || maxLength <= 0)
            throw new IllegalArgumentException("invalid T5 config " + name + ": every size must be positive");
        if (numBuckets < 4 || numBuckets % 4 != 0 || maxDistance <= numBuckets / 4)
            throw new IllegalArgumentException("invalid T5 config " + name + ": relative attention needs numBuckets a multiple of 4 and maxDistance > numBuckets / 4");
    }

    public int inner() {
        return heads * dKv;
    }

    /** google/t5-v1_1-xxl's encoder, as FLUX uses it (4.76 B parameters with the embedding table). */
    public static T5Config xxl(int maxLength) {
        return new T5Config("t5-v1.1-xxl", 32128, 4096, 64, 64, 10240, 24, 32, 128, 1e-6, maxLength);
    }

    /** A two-layer miniature for tests and the CPU demo; the vocabulary fits {@link ByteTokenizer#t5()}. */
    public static T5Config tiny() {
        return new T5Config("t5-tiny", 259, 32, 8, 4, 64, 2, 32, 128, 1e-6, 32);
    }

    public T5Config withMaxLength(int n) {
        return new T5Config(name, vocab, dModel, dKv, heads, dFf, layers, numBuckets, maxDistance, eps, n);
    }

    public long parameterCount() {
        long layer = 4L * dModel * inner() + 3L * dModel * dFf + 2L * dModel;
        return (long) vocab * dModel + (long) numBuckets * heads + layers * layer + dModel;
    }
}
