package dev.impasto.model;

import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;

/** A frozen linear layer of the base model: weight in any storage format, optional bias [out]. */
public record BaseLinear(LinearWeight weight, Tensor bias) implements AutoCloseable {
    public long in() {
        return weight.inFeatures();
    }

    public long out() {
        return weight.outFeatures();
    }

    @Override
    public void close() {
        weight.close();
        if (bias != null) bias.close();
    }
}
