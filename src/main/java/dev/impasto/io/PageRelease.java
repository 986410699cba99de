package dev.impasto.io;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Drops the pages of a region of a memory-mapped weight file from this process (madvise MADV_DONTNEED): after a
 * tensor has been uploaded to the GPU, its pages need not stay resident, so loading a 24 GB checkpoint keeps the
 * process's resident memory at about one tensor. The file's pages stay in the OS page cache; reading the region again
 * maps them back. Best effort: on systems without madvise it does nothing.
 */
public final class PageRelease {
    private static final int MADV_DONTNEED = 4;
    private static final long PAGE = 4096;
    private static final MethodHandle MADVISE;

    static {
        MethodHandle h = null;
        try {
            Linker l = Linker.nativeLinker();
            h = l.defaultLookup().find("madvise")
                    .map(a -> l.downcallHandle(a, FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT)))
                    .orElse(null);
        } catch (RuntimeException | LinkageError e) {
            // not available here
        }
        MADVISE = h;
    }

    private PageRelease() {}

    /** Releases the whole pages inside {@code region} (a slice of a mapped file); returns whether madvise succeeded. */
    public static boolean release(MemorySegment region) {
        if (MADVISE == null || !region.isNative() || region.byteSize() == 0) return false;
        long start = (region.address() + PAGE - 1) & -PAGE, end = (region.address() + region.byteSize()) & -PAGE;
        if (end <= start) return false;
        try {
            return (int) MADVISE.invokeExact(MemorySegment.ofAddress(start), end - start, MADV_DONTNEED) == 0;
        } catch (Throwable t) {
            return false;
        }
    }
}
