package dev.impasto.bindings;

import dev.impasto.bindings.cublaslt.cublasLt_h;
import dev.impasto.bindings.cuda.cuda_h;
import dev.impasto.bindings.torch.torch_shim_h;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Runs inside BindingsSymbolLookupTest's own class loader: System.load here ties the stub library to that loader,
 * which is exactly how impasto's runtime makes libcuda / libcublasLt / libtorch visible to the generated classes
 * (their SymbolLookup.loaderLookup()).
 */
public final class StubLibraryCalls {
    private StubLibraryCalls() {}

    /** Returns {driverVersion, deviceCount, rc of cuGetErrorName} and the error name, all read through the bindings. */
    public static Object[] callThroughBindings(String absoluteLibraryPath) {
        // header classes (and their SymbolLookup) initialised first: the lookup must still see a library loaded later
        int initialised = cuda_h.CUDA_SUCCESS() + cublasLt_h.CUBLAS_STATUS_SUCCESS() + torch_shim_h.AOTI_TORCH_SUCCESS();
        System.load(absoluteLibraryPath);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment version = arena.allocate(cuda_h.C_INT);
            int rcVersion = cuda_h.cuDriverGetVersion(version);
            MemorySegment count = arena.allocate(cuda_h.C_INT);
            int rcCount = cuda_h.cuDeviceGetCount(count);
            // const char** out-parameter: a pointer-sized cell the callee fills in; the C string has no known
            // size, so it is reinterpreted before reading
            MemorySegment namePtr = arena.allocate(cuda_h.C_POINTER);
            int rcName = cuda_h.cuGetErrorName(cuda_h.CUDA_ERROR_OUT_OF_MEMORY(), namePtr);
            String name = namePtr.get(cuda_h.C_POINTER, 0).reinterpret(256).getString(0);
            long cublasVersion = cublasLt_h.cublasLtGetVersion();
            long abiVersion = torch_shim_h.aoti_torch_abi_version();
            MemorySegment dim = arena.allocate(ValueLayout.JAVA_LONG);
            int rcDim = torch_shim_h.aoti_torch_get_dim(MemorySegment.ofAddress(0x5), dim);
            return new Object[] {initialised, rcVersion, version.get(ValueLayout.JAVA_INT, 0), rcCount,
                    count.get(ValueLayout.JAVA_INT, 0), rcName, name, cublasVersion, abiVersion, rcDim,
                    dim.get(ValueLayout.JAVA_LONG, 0)};
        }
    }
}
