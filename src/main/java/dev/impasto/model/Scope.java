package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Owns the tensors a piece of model code allocates and frees them together: the temporaries of one op sequence, or
 * the saved activations of one block between its forward and its backward. On the GPU, freeing returns memory to the
 * caching allocator, so the next block reuses it without a cudaMalloc.
 */
public final class Scope implements AutoCloseable {
    private final Backend be;
    private final List<Tensor> owned = new ArrayList<>();

    public Scope(Backend be) {
        this.be = be;
    }

    public Backend backend() {
        return be;
    }

    public Tensor empty(DType dt, long... shape) {
        return keep(be.empty(dt, shape));
    }

    public Tensor zeros(DType dt, long... shape) {
        return keep(be.zeros(dt, shape));
    }

    /** Takes ownership of t. */
    public Tensor keep(Tensor t) {
        owned.add(t);
        return t;
    }

    /** A copy of src owned by this scope. */
    public Tensor copyOf(Tensor src) {
        Tensor t = empty(src.dtype(), src.shape());
        be.copy(t, src);
        return t;
    }

    @Override
    public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) owned.get(i).close();
        owned.clear();
    }
}
