package dev.impasto.cuda;

import static dev.impasto.bindings.cuda.cuda_h.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Entry point to the CUDA driver API: library loading, initialisation and the return-code check. */
public final class Cuda {
    private static volatile boolean initialised;

    private Cuda() {}

    /**
     * Loads the libraries and calls cuInit once. Throws {@link CudaUnavailableException} with one message naming
     * every missing piece and where it was looked for.
     */
    public static synchronized void init() {
        if (initialised) return;
        NativeLibraries.Status s = NativeLibraries.load();
        if (!s.cudaLoaded()) throw new CudaUnavailableException(s.problem());
        int rc = cuInit(0);
        if (rc == CUDA_ERROR_NO_DEVICE()) throw new CudaUnavailableException("the CUDA driver is installed but reports no GPU (cuInit: CUDA_ERROR_NO_DEVICE)");
        check(rc, "cuInit");
        initialised = true;
    }

    /** True when a GPU can be used (libraries present, driver initialised, at least one device). Never throws. */
    public static boolean available() {
        try {
            init();
            return deviceCount() > 0;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    public static int deviceCount() {
        init();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(ValueLayout.JAVA_INT);
            check(cuDeviceGetCount(n), "cuDeviceGetCount");
            return n.get(ValueLayout.JAVA_INT, 0);
        }
    }

    public static int driverVersion() {
        init();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(ValueLayout.JAVA_INT);
            check(cuDriverGetVersion(n), "cuDriverGetVersion");
            return n.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** Throws a {@link CudaException} naming the call, the error and its description unless rc is CUDA_SUCCESS. */
    public static void check(int rc, String call) {
        if (rc == CUDA_SUCCESS()) return;
        throw new CudaException(call, rc, errorName(rc), errorString(rc));
    }

    public static String errorName(int rc) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            if (cuGetErrorName(rc, p) != CUDA_SUCCESS()) return "CUDA_ERROR_" + rc;
            return p.get(ValueLayout.ADDRESS, 0).reinterpret(256).getString(0);
        } catch (RuntimeException | LinkageError e) {
            return "CUDA error " + rc;
        }
    }

    public static String errorString(int rc) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            if (cuGetErrorString(rc, p) != CUDA_SUCCESS()) return "";
            return p.get(ValueLayout.ADDRESS, 0).reinterpret(1024).getString(0);
        } catch (RuntimeException | LinkageError e) {
            return "";
        }
    }
}
