package dev.impasto.encoders;

import dev.impasto.quant.BaseFormat;
import dev.impasto.quant.WeightQuantizer;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;

/**
 * Random encoder weights drawn on the backend itself (Philox, the same on every backend): weights N(0, 1 / fan-in),
 * biases N(0, 0.02^2), norm scales 1 + N(0, 0.1^2), embeddings N(0, 0.5^2). Deterministic per (seed, key). For tiny
 * test configurations and full-size benchmarks without the real files.
 */
public final class RandomEncoderWeights implements EncoderWeights {
    private final long seed;

    public RandomEncoderWeights(long seed) {
        this.seed = seed;
    }

    long seedOf(String key) {
        long h = seed * 0x9E3779B97F4A7C15L + 17;
        for (char c : key.toCharArray()) h = h * 1_000_003L + c;
        return h ^ (h >>> 31);
    }

    @Override
    public Tensor tensor(Backend be, String key, Kind kind, DType dtype, long... shape) {
        Tensor t = be.empty(dtype, shape);
        be.randn(t, seedOf(key));
        long fanIn = shape.length > 1 ? t.numel() / shape[0] : 1;
        switch (kind) {
            case WEIGHT -> be.axpby(t, 1 / Math.sqrt(fanIn), t, 0);
            case BIAS -> be.axpby(t, 0.02, t, 0);
            case EMBEDDING -> be.axpby(t, 0.5, t, 0);
            case NORM -> {
                be.axpby(t, 0.1, t, 0);
                try (Tensor one = be.empty(dtype, shape)) {
                    be.fill(one, 1);
                    be.axpby(t, 1, one, 1);
                }
            }
        }
        return t;
    }

    @Override
    public LinearWeight linear(Backend be, String key, long out, long in, DType dtype, BaseFormat format) {
        Tensor w = tensor(be, key, Kind.WEIGHT, dtype, out, in);
        if (!format.quantized()) return new LinearWeight.Dense(w);
        try (w) {
            return WeightQuantizer.quantize(be, be.toFloats(w), out, in, format);
        }
    }

    @Override
    public String describe() {
        return "random (seed " + seed + ")";
    }
}
