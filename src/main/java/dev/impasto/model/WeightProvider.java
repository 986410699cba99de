package dev.impasto.model;

import dev.impasto.tensor.Tensor;

/**
 * Where the model's frozen weights come from, by canonical BFL module key ("double_blocks.0.img_attn.qkv",
 * "final_layer.linear", ...): a checkpoint on disk (quantized on load or prequantized) or random weights.
 */
public interface WeightProvider {
    /** The linear layer {@code key} (weight [out, in] and bias if it has one). */
    BaseLinear linear(String key, long out, long in, boolean bias);

    /** A vector parameter, e.g. "double_blocks.0.img_attn.norm.query_norm.scale". */
    Tensor vector(String key, long n);
}
