package dev.impasto.cuda;

import static dev.impasto.bindings.cuda.cuda_h.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** A CUDA stream: all of impasto's work for a device is queued on one, in order. */
public final class CudaStream implements AutoCloseable {
    private final MemorySegment handle;
    private boolean closed;

    private CudaStream(MemorySegment handle) {
        this.handle = handle;
    }

    public static CudaStream create() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            Cuda.check(cuStreamCreate(p, CU_STREAM_NON_BLOCKING()), "cuStreamCreate");
            return new CudaStream(p.get(ValueLayout.ADDRESS, 0));
        }
    }

    public MemorySegment handle() {
        return handle;
    }

    public void synchronize() {
        Cuda.check(cuStreamSynchronize(handle), "cuStreamSynchronize");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Cuda.check(cuStreamDestroy_v2(handle), "cuStreamDestroy");
    }
}
