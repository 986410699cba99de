package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;

/**
 * One reused buffer for the dequantized [W | s B] of the fused LoRA forward (see {@link Linear}): the layers run one
 * after another on one stream, so the largest layer's size serves them all. Grown on demand, freed on close.
 */
public final class WeightScratch implements AutoCloseable {
    private Tensor buffer;

    /** A [rows, cols] view of the buffer in dtype; valid until the next call. */
    public Tensor get(Backend be, DType dtype, long rows, long cols) {
        long need = rows * cols;
        if (buffer == null || buffer.dtype() != dtype || buffer.numel() < need || buffer.backend() != be) {
            close();
            buffer = be.empty(dtype, need);
        }
        return buffer.reshape(-1).cols(0, need).reshape(rows, cols);
    }

    @Override
    public void close() {
        if (buffer != null) buffer.close();
        buffer = null;
    }
}
