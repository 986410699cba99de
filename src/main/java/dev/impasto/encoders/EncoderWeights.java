package dev.impasto.encoders;

import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;

/**
 * Where an encoder's frozen weights come from, by canonical key: Hugging Face transformers names for T5
 * ({@code encoder.block.0.layer.0.SelfAttention.q.weight}) and CLIP ({@code text_model.encoder.layers.0...}), BFL names
 * for the autoencoder ({@code decoder.up.3.block.0.conv1.weight}). A file in another layout is mapped to these names
 * when it is opened ({@link FileEncoderWeights}); {@link RandomEncoderWeights} makes them up.
 */
public interface EncoderWeights extends AutoCloseable {
    /** What a tensor is, which only matters to random weights (how to draw it). */
    enum Kind { WEIGHT, BIAS, NORM, EMBEDDING }

    /** The tensor {@code key} with exactly {@code shape}, as {@code dtype} on {@code be}. */
    Tensor tensor(Backend be, String key, Kind kind, DType dtype, long... shape);

    /** The linear layer weight {@code key} [out, in], quantized to {@code format} when that is a quantized format. */
    LinearWeight linear(Backend be, String key, long out, long in, DType dtype, BaseFormat format);

    /** A short description for logs and the cache manifest ("t5xxl_fp16.safetensors", "random (seed 1)"). */
    String describe();

    @Override
    default void close() {}
}
