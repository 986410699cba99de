package dev.impasto.cuda;

import static dev.impasto.bindings.cuda.cuda_h.*;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * impasto's CUDA kernels: the fatbin built from kernels/*.cu at build time, packed in the jar, loaded with
 * cuModuleLoadData. The driver picks the SASS for the device (sm_80/86/89/90a) or JIT-compiles the compute_90 PTX.
 */
public final class KernelModule implements AutoCloseable {
    public static final String RESOURCE = "/dev/impasto/kernels/impasto.fatbin";
    private final MemorySegment module;
    private final Map<String, Kernel> kernels = new ConcurrentHashMap<>();
    private boolean closed;

    private KernelModule(MemorySegment module) {
        this.module = module;
    }

    /** The fatbin bytes, or an exception saying this is a CPU-only jar. */
    public static byte[] fatbin() {
        try (InputStream in = KernelModule.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                boolean cpuOnly = KernelModule.class.getResource("/dev/impasto/kernels/CPU_ONLY") != null;
                throw new CudaUnavailableException(cpuOnly
                        ? "this impasto build has no CUDA kernels (it was built with -Dimpasto.cpuOnly=true); rebuild with nvcc on PATH to use the GPU"
                        : "the CUDA kernels (" + RESOURCE + ") are missing from the class path; rebuild impasto with `mvn package`");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new CudaException("reading " + RESOURCE + ": " + e.getMessage(), e);
        }
    }

    /** The SASS/PTX targets packed in the fatbin, as the build recorded them ("sm_80 sm_86 sm_89 sm_90a compute_90"). */
    public static String architectures() {
        try (InputStream in = KernelModule.class.getResourceAsStream(RESOURCE + ".archs")) {
            return in == null ? "none (CPU-only build)" : new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            return "unknown";
        }
    }

    /** Loads the module into the current context. */
    public static KernelModule load() {
        byte[] image = fatbin();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment data = a.allocate(image.length + 1L);
            data.copyFrom(MemorySegment.ofArray(image));
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            Cuda.check(cuModuleLoadData(p, data), "cuModuleLoadData(impasto.fatbin, " + image.length + " bytes)");
            return new KernelModule(p.get(ValueLayout.ADDRESS, 0));
        }
    }

    /** The kernel of that (extern "C") name. */
    public Kernel get(String name) {
        return kernels.computeIfAbsent(name, n -> {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment p = a.allocate(ValueLayout.ADDRESS);
                Cuda.check(cuModuleGetFunction(p, module, a.allocateFrom(n)), "cuModuleGetFunction(" + n + ")");
                return new Kernel(n, p.get(ValueLayout.ADDRESS, 0));
            }
        });
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Cuda.check(cuModuleUnload(module), "cuModuleUnload");
    }
}
