package dev.impasto.cuda;

import static dev.impasto.bindings.cuda.cuda_h.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * A caching device allocator: freed blocks go to a size-keyed free list and are handed out again instead of calling
 * cuMemFree/cuMemAlloc per op. All work runs on one stream, so a block freed by one op can be reused by the next op
 * on that stream without synchronisation. Sizes round up to 512 bytes (small) or 2 MiB (large) so that blocks fit
 * later requests of nearly the same size. On out-of-memory the cache is released to the driver and the allocation
 * retried once before {@link CudaOutOfMemoryException} is thrown.
 */
public final class DeviceAllocator implements AutoCloseable {
    static final long SMALL_LIMIT = 1L << 20;
    static final long SMALL_ROUND = 512;
    static final long LARGE_ROUND = 2L << 20;

    private final TreeMap<Long, ArrayDeque<Long>> free = new TreeMap<>();
    private final Map<Long, Long> live = new HashMap<>();
    private long inUse, reserved, cached, peak, allocCalls;

    static long roundUp(long bytes) {
        long r = bytes <= SMALL_LIMIT ? SMALL_ROUND : LARGE_ROUND;
        return Math.max(r, (bytes + r - 1) / r * r);
    }

    /** Largest cached block a request of rounded size r may take (limits waste to a quarter plus one round). */
    static long maxReuse(long r) {
        return r <= SMALL_LIMIT ? r * 2 : r + r / 4 + LARGE_ROUND;
    }

    /** Device address of a new block of at least {@code bytes} bytes (256-byte aligned). */
    public synchronized long allocate(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("negative allocation " + bytes);
        long r = roundUp(Math.max(1, bytes));
        var e = free.ceilingEntry(r);
        long addr;
        long size;
        if (e != null && e.getKey() <= maxReuse(r)) {
            size = e.getKey();
            addr = e.getValue().pop();
            if (e.getValue().isEmpty()) free.remove(size);
            cached -= size;
        } else {
            size = r;
            addr = driverAlloc(size);
        }
        live.put(addr, size);
        inUse += size;
        peak = Math.max(peak, inUse);
        return addr;
    }

    private long driverAlloc(long size) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.JAVA_LONG);
            int rc = cuMemAlloc_v2(p, size);
            if (rc == CUDA_ERROR_OUT_OF_MEMORY()) {
                emptyCache();
                rc = cuMemAlloc_v2(p, size);
                if (rc == CUDA_ERROR_OUT_OF_MEMORY()) {
                    long[] fm = memInfo();
                    throw new CudaOutOfMemoryException(size, fm[0], fm[1], inUse, cached, peak);
                }
            }
            Cuda.check(rc, "cuMemAlloc(" + size + " bytes)");
            reserved += size;
            allocCalls++;
            return p.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** Returns a block to the cache. */
    public synchronized void free(long addr) {
        Long size = live.remove(addr);
        if (size == null) throw new IllegalStateException("freeing device address 0x" + Long.toHexString(addr) + " that this allocator did not hand out");
        inUse -= size;
        cached += size;
        free.computeIfAbsent(size, k -> new ArrayDeque<>()).push(addr);
    }

    /** Gives every cached (unused) block back to the driver. */
    public synchronized void emptyCache() {
        for (var e : free.entrySet())
            for (long addr : e.getValue()) {
                Cuda.check(cuMemFree_v2(addr), "cuMemFree");
                reserved -= e.getKey();
            }
        free.clear();
        cached = 0;
    }

    /** {free, total} bytes of the device, as the driver reports them. */
    public static long[] memInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(ValueLayout.JAVA_LONG), t = a.allocate(ValueLayout.JAVA_LONG);
            Cuda.check(cuMemGetInfo_v2(f, t), "cuMemGetInfo");
            return new long[] {f.get(ValueLayout.JAVA_LONG, 0), t.get(ValueLayout.JAVA_LONG, 0)};
        }
    }

    /** Bytes held by live blocks. */
    public synchronized long bytesInUse() {
        return inUse;
    }

    public synchronized long peakBytes() {
        return peak;
    }

    public synchronized void resetPeak() {
        peak = inUse;
    }

    /** Bytes obtained from the driver (live + cached). */
    public synchronized long reservedBytes() {
        return reserved;
    }

    public synchronized long cachedBytes() {
        return cached;
    }

    /** How many times the driver's allocator was called (a test that the cache works). */
    public synchronized long driverAllocations() {
        return allocCalls;
    }

    @Override
    public synchronized void close() {
        emptyCache();
        for (var e : live.entrySet()) {
            cuMemFree_v2(e.getKey());
            reserved -= e.getValue();
        }
        live.clear();
        inUse = 0;
    }
}
