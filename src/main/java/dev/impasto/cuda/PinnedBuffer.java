package dev.impasto.cuda;

import static dev.impasto.bindings.cuda.cuda_h.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Page-locked host memory, for asynchronous copies between host and device. */
public final class PinnedBuffer implements AutoCloseable {
    private final MemorySegment segment;
    private boolean closed;

    public PinnedBuffer(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            Cuda.check(cuMemAllocHost_v2(p, bytes), "cuMemAllocHost(" + bytes + " bytes)");
            segment = p.get(ValueLayout.ADDRESS, 0).reinterpret(bytes);
        }
    }

    /** The host memory, bounds-checked to the buffer's size. */
    public MemorySegment segment() {
        return segment;
    }

    public long size() {
        return segment.byteSize();
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Cuda.check(cuMemFreeHost(segment), "cuMemFreeHost");
    }
}
