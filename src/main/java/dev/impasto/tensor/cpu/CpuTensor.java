package dev.impasto.tensor.cpu;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;

/** A CPU tensor: elements held as doubles, each already rounded to the tensor's dtype. */
public final class CpuTensor extends Tensor {
    final CpuBackend backend;

    static final class Data extends Storage {
        double[] values;
        final CpuBackend owner;
        final long bytes;

        Data(CpuBackend owner, int n, long bytes) {
            this.owner = owner;
            this.values = new double[n];
            this.bytes = bytes;
        }

        @Override
        protected void release() {
            owner.released(bytes);
            values = null;
        }
    }

    CpuTensor(CpuBackend backend, Storage storage, boolean owner, DType dtype, long offset, long rowStride, long... shape) {
        super(storage, owner, dtype, offset, rowStride, shape);
        this.backend = backend;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    protected Tensor newView(DType dt, long off, long stride, long... s) {
        return new CpuTensor(backend, storage, false, dt, off, stride, s);
    }

    /** The element array (shared with views); index = offset + row * rowStride + col. */
    double[] data() {
        checkLive();
        return ((Data) storage).values;
    }

    int base(long row) {
        return (int) (offset + row * rowStride);
    }
}
