package dev.impasto.cuda;

import static dev.impasto.bindings.cuda.cuda_h.*;

import java.lang.foreign.MemorySegment;

/** Copies between host and device, checked. Host segments are bounds-checked against the byte count first. */
public final class Memcpy {
    private Memcpy() {}

    public static void hostToDevice(long dst, MemorySegment src, long bytes, CudaStream s) {
        if (src.byteSize() < bytes) throw new IndexOutOfBoundsException("host source has " + src.byteSize() + " bytes, copy needs " + bytes);
        if (src.isNative()) Cuda.check(cuMemcpyHtoDAsync_v2(dst, src, bytes, s.handle()), "cuMemcpyHtoDAsync");
        else throw new IllegalArgumentException("host-to-device copies need native memory (a mapped file, an arena or a pinned buffer)");
    }

    public static void deviceToHost(MemorySegment dst, long src, long bytes, CudaStream s) {
        if (dst.byteSize() < bytes) throw new IndexOutOfBoundsException("host destination has " + dst.byteSize() + " bytes, copy needs " + bytes);
        if (!dst.isNative()) throw new IllegalArgumentException("device-to-host copies need native memory");
        Cuda.check(cuMemcpyDtoHAsync_v2(dst, src, bytes, s.handle()), "cuMemcpyDtoHAsync");
    }

    public static void deviceToDevice(long dst, long src, long bytes, CudaStream s) {
        Cuda.check(cuMemcpyDtoDAsync_v2(dst, src, bytes, s.handle()), "cuMemcpyDtoDAsync");
    }

    public static void memsetD8(long dst, byte value, long bytes, CudaStream s) {
        Cuda.check(cuMemsetD8Async(dst, value, bytes, s.handle()), "cuMemsetD8Async");
    }

    public static void memsetD32(long dst, int value, long count, CudaStream s) {
        Cuda.check(cuMemsetD32Async(dst, value, count, s.handle()), "cuMemsetD32Async");
    }

    public static void memsetD16(long dst, short value, long count, CudaStream s) {
        Cuda.check(cuMemsetD16Async(dst, value, count, s.handle()), "cuMemsetD16Async");
    }
}
