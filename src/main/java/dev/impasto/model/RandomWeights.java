package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;

/**
 * Random base weights, generated on the backend itself (no host copy): weights N(0, gain^2 / in), biases
 * N(0, 0.02^2), norm scales 1 + N(0, 0.1^2). Deterministic per (seed, key). Used by tests, benchmarks at full FLUX
 * size, and as the starting point of the toy world's base model.
 */
public final class RandomWeights implements WeightProvider {
    private final Backend be;
    private final DType dtype;
    private final long seed;
    private final double gain;

    public RandomWeights(Backend be, DType dtype, long seed, double gain) {
        this.be = be;
        this.dtype = dtype;
        this.seed = seed;
        this.gain = gain;
    }

    DType dtype() {
        return dtype;
    }

    long seedOf(String key) {
        long h = seed;
        for (char c : key.toCharArray()) h = h * 1_000_003L + c;
        return h ^ (h >>> 29);
    }

    @Override
    public BaseLinear linear(String key, long out, long in, boolean bias) {
        Tensor w = be.empty(dtype, out, in);
        be.randn(w, seedOf(key + ".weight"));
        be.axpby(w, gain / Math.sqrt(in), w, 0);
        Tensor b = null;
        if (bias) {
            b = be.empty(dtype, out);
            be.randn(b, seedOf(key + ".bias"));
            be.axpby(b, 0.02, b, 0);
        }
        return new BaseLinear(new LinearWeight.Dense(w), b);
    }

    @Override
    public Tensor vector(String key, long n) {
        Tensor t = be.empty(dtype, n);
        be.randn(t, seedOf(key));
        be.axpby(t, 0.1, t, 0);
        try (Tensor one = be.empty(dtype, n)) {
            be.fill(one, 1);
            be.axpby(t, 1, one, 1);
        }
        return t;
    }
}
