package dev.impasto.train.dist;

import dev.impasto.tensor.Tensor;
import java.util.List;

/**
 * What data-parallel training needs from a group of ranks: who am I, how many are we, and the average of a set of
 * tensors across all of us (the LoRA gradients and the loss of each step). Every rank calls the same collectives in
 * the same order; a failing or vanished rank makes the others fail within the timeout instead of hanging.
 */
public interface Collective extends AutoCloseable {
    int rank();

    int world();

    /** Replaces each tensor by its mean over all ranks (same shapes on every rank). */
    void allReduceMean(List<Tensor> tensors);

    /** Waits for every rank. */
    void barrier();

    @Override
    default void close() {}

    /** The single-process case: nothing to exchange. */
    Collective SOLO = new Collective() {
        public int rank() {
            return 0;
        }

        public int world() {
            return 1;
        }

        public void allReduceMean(List<Tensor> tensors) {}

        public void barrier() {}
    };
}
