package dev.impasto.cuda;

import static dev.impasto.bindings.cuda.cuda_h.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** A CUDA event, for timing device work (elapsed milliseconds between two recorded events). */
public final class CudaEvent implements AutoCloseable {
    private final MemorySegment handle;
    private boolean closed;

    private CudaEvent(MemorySegment handle) {
        this.handle = handle;
    }

    public static CudaEvent create() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            Cuda.check(cuEventCreate(p, CU_EVENT_DEFAULT()), "cuEventCreate");
            return new CudaEvent(p.get(ValueLayout.ADDRESS, 0));
        }
    }

    public void record(CudaStream s) {
        Cuda.check(cuEventRecord(handle, s.handle()), "cuEventRecord");
    }

    public void synchronize() {
        Cuda.check(cuEventSynchronize(handle), "cuEventSynchronize");
    }

    /** Milliseconds from start to this event (both recorded; waits for this one). */
    public float elapsedSince(CudaEvent start) {
        synchronize();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ms = a.allocate(ValueLayout.JAVA_FLOAT);
            Cuda.check(cuEventElapsedTime_v2(ms, start.handle, handle), "cuEventElapsedTime");
            return ms.get(ValueLayout.JAVA_FLOAT, 0);
        }
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Cuda.check(cuEventDestroy_v2(handle), "cuEventDestroy");
    }
}
