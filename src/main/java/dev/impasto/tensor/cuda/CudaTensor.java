package dev.impasto.tensor.cuda;

import dev.impasto.cuda.DeviceAllocator;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;

/** A tensor in device memory; {@link #address()} is the device address of its first element. */
public final class CudaTensor extends Tensor {
    final CudaBackend backend;

    static final class DeviceStorage extends Storage {
        final long base;
        final DeviceAllocator allocator;

        DeviceStorage(long base, DeviceAllocator allocator) {
            this.base = base;
            this.allocator = allocator;
        }

        @Override
        protected void release() {
            allocator.free(base);
        }
    }

    CudaTensor(CudaBackend backend, Storage storage, boolean owner, DType dtype, long offset, long rowStride, long... shape) {
        super(storage, owner, dtype, offset, rowStride, shape);
        this.backend = backend;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    protected Tensor newView(DType dt, long off, long stride, long... s) {
        return new CudaTensor(backend, storage, false, dt, off, stride, s);
    }

    /** Device address of element 0 of this view. */
    public long address() {
        checkLive();
        return ((DeviceStorage) storage).base + offset * dtype.byteSize();
    }
}
