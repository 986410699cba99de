package dev.impasto.tensor;

import java.util.Arrays;

/**
 * A typed, shaped view of backend storage.
 *
 * <p>Every tensor is also a matrix: {@link #rows()} is the product of all dimensions but the last, {@link #cols()} the
 * last dimension, and consecutive rows lie {@link #rowStride()} elements apart. A contiguous tensor has rowStride ==
 * cols; a {@link #cols(long, long) column slice} keeps its parent's row stride, which is how the model reads the q|k|v
 * part of a fused projection or writes one half of a concatenation without a copy.
 *
 * <p>The tensor that allocated its storage owns it and frees it on {@link #close()}; views never free. Using any view
 * of storage that was freed throws {@link IllegalStateException} instead of reading reused memory.
 */
public abstract class Tensor implements AutoCloseable {
    protected final DType dtype;
    protected final long[] shape;
    protected final long offset;
    protected final long rowStride;
    protected final Storage storage;
    private final boolean owner;

    /** Reference-counted-free ownership marker shared by a tensor and all its views. */
    public abstract static class Storage {
        private volatile boolean released;

        public final boolean released() {
            return released;
        }

        /** Gives the memory back; called once, by the owning tensor. */
        protected abstract void release();

        final void releaseOnce() {
            if (!released) {
                released = true;
                release();
            }
        }
    }

    protected Tensor(Storage storage, boolean owner, DType dtype, long offset, long rowStride, long... shape) {
        if (shape.length == 0) throw new IllegalArgumentException("a tensor needs at least one dimension (use [1] for a scalar)");
        for (long d : shape) if (d < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
        long cols = shape[shape.length - 1];
        if (rowStride < cols) throw new IllegalArgumentException("row stride " + rowStride + " < row length " + cols);
        this.storage = storage;
        this.owner = owner;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.offset = offset;
        this.rowStride = rowStride;
    }

    public abstract Backend backend();

    /** A tensor over the same storage; views never own it. */
    protected abstract Tensor newView(DType dtype, long offset, long rowStride, long... shape);

    public final DType dtype() {
        return dtype;
    }

    public final long[] shape() {
        return shape.clone();
    }

    public final int rank() {
        return shape.length;
    }

    public final long dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    public final long numel() {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        return n;
    }

    public final long cols() {
        return shape[shape.length - 1];
    }

    public final long rows() {
        long cols = cols();
        return cols == 0 ? 0 : numel() / cols;
    }

    /** Element offset of this view's first element in its storage. */
    public final long offset() {
        return offset;
    }

    public final long rowStride() {
        return rowStride;
    }

    public final boolean isContiguous() {
        return rowStride == cols() || rows() <= 1;
    }

    public final Storage storage() {
        return storage;
    }

    public final boolean isOwner() {
        return owner;
    }

    /** Throws if this tensor's storage has been freed. */
    public final void checkLive() {
        if (storage.released()) throw new IllegalStateException("tensor " + this + " is used after its storage was closed");
    }

    /** Same elements, other shape; contiguous tensors only. */
    public final Tensor reshape(long... newShape) {
        checkLive();
        long n = 1;
        int infer = -1;
        long[] s = newShape.clone();
        for (int i = 0; i < s.length; i++) {
            if (s[i] == -1) {
                if (infer >= 0) throw new IllegalArgumentException("only one -1 allowed in " + Arrays.toString(newShape));
                infer = i;
            } else n *= s[i];
        }
        if (infer >= 0) s[infer] = n == 0 ? 0 : numel() / n;
        long total = 1;
        for (long d : s) total *= d;
        if (total != numel()) throw new IllegalArgumentException("cannot reshape " + Arrays.toString(shape) + " to " + Arrays.toString(newShape));
        if (!isContiguous()) throw new IllegalArgumentException("reshape of a strided view " + this + ": copy it first");
        return newView(dtype, offset, s[s.length - 1], s);
    }

    /** Rows [r0, r1) of this tensor seen as a [rows, cols] matrix. */
    public final Tensor rows(long r0, long r1) {
        checkLive();
        if (r0 < 0 || r1 < r0 || r1 > rows()) throw new IndexOutOfBoundsException("rows [" + r0 + ", " + r1 + ") of " + this);
        return newView(dtype, offset + r0 * rowStride, rowStride, r1 - r0, cols());
    }

    /** Columns [c0, c1) of this tensor seen as a [rows, cols] matrix; keeps the row stride. */
    public final Tensor cols(long c0, long c1) {
        checkLive();
        if (c0 < 0 || c1 < c0 || c1 > cols()) throw new IndexOutOfBoundsException("cols [" + c0 + ", " + c1 + ") of " + this);
        long[] s = shape.clone();
        s[s.length - 1] = c1 - c0;
        return newView(dtype, offset + c0, rowStride, s);
    }

    /** Column chunk i of n equal chunks (the way torch's chunk(n, dim=-1) splits the modulation vector). */
    public final Tensor chunk(int i, int n) {
        long c = cols();
        if (c % n != 0) throw new IllegalArgumentException(c + " columns don't split into " + n + " chunks");
        return cols(i * (c / n), (i + 1) * (c / n));
    }

    /** The matrix [rows, cols] view of this tensor (drops the leading dimensions). */
    public final Tensor matrix() {
        return newView(dtype, offset, rowStride, rows(), cols());
    }

    /**
     * A view of this tensor's storage at any element offset, row stride and shape (for tools that mirror tensors
     * between backends). The caller keeps it inside the storage.
     */
    public final Tensor strided(long elementOffset, long stride, long... newShape) {
        checkLive();
        return newView(dtype, elementOffset, stride, newShape);
    }

    public final Tensor view() {
        return newView(dtype, offset, rowStride, shape);
    }

    @Override
    public void close() {
        if (owner) storage.releaseOnce();
    }

    @Override
    public String toString() {
        return backend().name() + ":" + dtype + Arrays.toString(shape) + (isContiguous() ? "" : "(stride " + rowStride + ")");
    }
}
