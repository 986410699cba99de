package dev.impasto.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.impasto.bindings.cublaslt.cublasLtMatmulAlgo_t;
import dev.impasto.bindings.cublaslt.cublasLtMatmulHeuristicResult_t;
import dev.impasto.bindings.cublaslt.cublasLt_h;
import dev.impasto.bindings.cuda.CUuuid_st;
import dev.impasto.bindings.cuda.cuda_h;
import dev.impasto.bindings.torch.torch_shim_h;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.NoSuchElementException;
import org.junit.jupiter.api.Test;

/**
 * The committed jextract output matches the headers it was generated from (values below are read from CUDA 13.0
 * cuda.h, cuBLAS 13.1.0.3 cublasLt.h / cublas_api.h / library_types.h and the PyTorch 2.11 shim), has the
 * Java signatures the runtime is written against, and can be loaded on a machine with no NVIDIA library.
 */
class BindingsConstantsTest {

    @Test
    void cudaDriverConstantsMatchCudaH() {
        assertEquals(13000, cuda_h.CUDA_VERSION());
        assertEquals(0, cuda_h.CUDA_SUCCESS());
        assertEquals(2, cuda_h.CUDA_ERROR_OUT_OF_MEMORY());
        assertEquals(3, cuda_h.CUDA_ERROR_NOT_INITIALIZED());
        assertEquals(100, cuda_h.CUDA_ERROR_NO_DEVICE());
        assertEquals(700, cuda_h.CUDA_ERROR_ILLEGAL_ADDRESS());
        assertEquals(999, cuda_h.CUDA_ERROR_UNKNOWN());
        assertEquals(16, cuda_h.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT());
        assertEquals(75, cuda_h.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR());
        assertEquals(97, cuda_h.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN());
        assertEquals(1, cuda_h.CU_STREAM_NON_BLOCKING());
        assertEquals(2, cuda_h.CU_EVENT_DISABLE_TIMING());
        assertEquals(8, cuda_h.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES());
        assertEquals(2, cuda_h.CU_STREAM_CAPTURE_MODE_RELAXED());
        assertEquals(1, cuda_h.CU_MEMHOSTREGISTER_PORTABLE());
        assertEquals(2, cuda_h.CU_MEMHOSTREGISTER_DEVICEMAP());
        assertEquals(5, cuda_h.CU_JIT_ERROR_LOG_BUFFER());
        assertEquals(6, cuda_h.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES());
        assertEquals(2, cuda_h.CU_POINTER_ATTRIBUTE_MEMORY_TYPE());
        assertEquals(2, cuda_h.CU_MEMORYTYPE_DEVICE());
    }

    @Test
    void cublasLtConstantsMatchCublasHeaders() {
        assertEquals(13, cublasLt_h.CUBLAS_VER_MAJOR());
        assertEquals(1, cublasLt_h.CUBLAS_VER_MINOR());
        assertEquals(0, cublasLt_h.CUBLAS_STATUS_SUCCESS());
        assertEquals(15, cublasLt_h.CUBLAS_STATUS_NOT_SUPPORTED());
        assertEquals(68, cublasLt_h.CUBLAS_COMPUTE_32F());
        assertEquals(77, cublasLt_h.CUBLAS_COMPUTE_32F_FAST_TF32());
        assertEquals(0, cublasLt_h.CUDA_R_32F());
        assertEquals(2, cublasLt_h.CUDA_R_16F());
        assertEquals(14, cublasLt_h.CUDA_R_16BF());
        assertEquals(28, cublasLt_h.CUDA_R_8F_E4M3());
        assertEquals(29, cublasLt_h.CUDA_R_8F_E5M2());
        assertEquals(1, cublasLt_h.CUBLAS_OP_T());
        assertEquals(1, cublasLt_h.CUBLASLT_ORDER_ROW());
        assertEquals(1, cublasLt_h.CUBLASLT_EPILOGUE_DEFAULT());
        assertEquals(4, cublasLt_h.CUBLASLT_EPILOGUE_BIAS());
        assertEquals(36, cublasLt_h.CUBLASLT_EPILOGUE_GELU_BIAS()); // GELU (32) | BIAS (4)
        assertEquals(3, cublasLt_h.CUBLASLT_MATMUL_DESC_TRANSA());
        assertEquals(7, cublasLt_h.CUBLASLT_MATMUL_DESC_EPILOGUE());
        assertEquals(8, cublasLt_h.CUBLASLT_MATMUL_DESC_BIAS_POINTER());
        assertEquals(17, cublasLt_h.CUBLASLT_MATMUL_DESC_A_SCALE_POINTER());
        assertEquals(1, cublasLt_h.CUBLASLT_MATRIX_LAYOUT_ORDER());
        assertEquals(1, cublasLt_h.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES());
    }

    @Test
    void torchStatusCodes() {
        assertEquals(0, torch_shim_h.AOTI_TORCH_SUCCESS());
        assertEquals(1, torch_shim_h.AOTI_TORCH_FAILURE());
    }

    @Test
    void structLayoutsMatchTheCStructs() {
        // typedef struct { uint64_t data[8]; } cublasLtMatmulAlgo_t;
        assertEquals(64, cublasLtMatmulAlgo_t.sizeof());
        // { cublasLtMatmulAlgo_t algo; size_t workspaceSize; cublasStatus_t state; float wavesCount; int reserved[4]; }
        assertEquals(96, cublasLtMatmulHeuristicResult_t.sizeof());
        assertEquals(0, cublasLtMatmulHeuristicResult_t.algo$offset());
        assertEquals(64, cublasLtMatmulHeuristicResult_t.workspaceSize$offset());
        assertEquals(72, cublasLtMatmulHeuristicResult_t.state$offset());
        assertEquals(76, cublasLtMatmulHeuristicResult_t.wavesCount$offset());
        assertEquals(16, CUuuid_st.sizeof());
    }

    @Test
    void heuristicResultArrayIsReadableThroughTheAccessors() {
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment results = cublasLtMatmulHeuristicResult_t.allocateArray(2, arena);
            MemorySegment second = cublasLtMatmulHeuristicResult_t.asSlice(results, 1);
            cublasLtMatmulHeuristicResult_t.workspaceSize(second, 1L << 20);
            cublasLtMatmulHeuristicResult_t.wavesCount(second, 0.75f);
            cublasLtMatmulAlgo_t.data(cublasLtMatmulHeuristicResult_t.algo(second), 7, 0x1234L);
            assertEquals(1L << 20, results.get(java.lang.foreign.ValueLayout.JAVA_LONG, 96 + 64));
            assertEquals(0.75f, results.get(java.lang.foreign.ValueLayout.JAVA_FLOAT, 96 + 76));
            assertEquals(0x1234L, results.get(java.lang.foreign.ValueLayout.JAVA_LONG, 96 + 7 * 8));
        }
    }

    /** The runtime is written against these exact Java shapes; a regeneration that changes one must be noticed. */
    @Test
    void representativeSignatures() throws NoSuchMethodException {
        Class<MemorySegment> ms = MemorySegment.class;
        assertSignature(cuda_h.class, "cuMemAlloc_v2", int.class, ms, long.class);
        assertSignature(cuda_h.class, "cuMemcpyHtoDAsync_v2", int.class, long.class, ms, long.class, ms);
        assertSignature(cuda_h.class, "cuLaunchKernel", int.class,
                ms, int.class, int.class, int.class, int.class, int.class, int.class, int.class, ms, ms, ms);
        assertSignature(cuda_h.class, "cuEventElapsedTime_v2", int.class, ms, ms, ms);
        assertSignature(cuda_h.class, "cuGetErrorName", int.class, int.class, ms);
        assertSignature(cublasLt_h.class, "cublasLtMatmul", int.class,
                ms, ms, ms, ms, ms, ms, ms, ms, ms, ms, ms, ms, ms, ms, long.class, ms);
        assertSignature(cublasLt_h.class, "cublasLtMatmulAlgoGetHeuristic", int.class,
                ms, ms, ms, ms, ms, ms, ms, int.class, ms, ms);
        assertSignature(cublasLt_h.class, "cublasLtGetVersion", long.class);
        assertSignature(torch_shim_h.class, "aoti_torch_abi_version", long.class);
        assertSignature(torch_shim_h.class, "aoti_torch_grad_mode_set_enabled", void.class, boolean.class);
        assertSignature(torch_shim_h.class, "aoti_torch_create_tensor_from_blob_v2", int.class,
                ms, long.class, ms, ms, long.class, int.class, int.class, int.class, ms, int.class, ms, long.class);
        assertSignature(torch_shim_h.class, "aoti_torch_cuda__scaled_dot_product_cudnn_attention", int.class,
                ms, ms, ms, ms, int.class, double.class, int.class, int.class, ms, ms, ms, ms, ms, ms, ms, ms, ms, ms);
    }

    private static void assertSignature(Class<?> owner, String name, Class<?> ret, Class<?>... params)
            throws NoSuchMethodException {
        Method m = owner.getMethod(name, params);
        assertTrue(Modifier.isStatic(m.getModifiers()), name + " is static");
        assertEquals(ret, m.getReturnType(), name + " return type");
    }

    /** Every function named in bindings/*.symbols (and not marked optional) was generated. */
    @Test
    void everyListedFunctionIsBound() throws IOException {
        assertListedFunctionsBound(Path.of("bindings/cuda.symbols"), cuda_h.class, 63);
        assertListedFunctionsBound(Path.of("bindings/cublaslt.symbols"), cublasLt_h.class, 18);
        assertListedFunctionsBound(Path.of("bindings/torch.symbols"), torch_shim_h.class, 38);
    }

    private static void assertListedFunctionsBound(Path symbols, Class<?> header, int expectedRequired) throws IOException {
        List<String> missing = new ArrayList<>();
        int required = 0;
        for (String raw : Files.readAllLines(symbols)) {
            String[] parts = raw.replaceAll("#.*", "").trim().split("\\s+");
            if (parts.length < 2 || !parts[0].equals("function") || parts.length == 3) {
                continue; // comments, other kinds, and "optional" entries
            }
            required++;
            boolean bound = Arrays.stream(header.getMethods())
                    .anyMatch(m -> m.getName().equals(parts[1]) && Modifier.isStatic(m.getModifiers()));
            if (!bound) {
                missing.add(parts[1]);
            }
        }
        assertEquals(List.of(), missing, symbols + " lists functions that " + header.getSimpleName() + " lacks");
        assertEquals(expectedRequired, required, "required functions in " + symbols);
    }

    /**
     * Header classes initialise without any native library (symbols are looked up per function, on first call), and
     * a call whose library is not loaded fails with a Java exception naming the symbol, not a JVM crash.
     */
    @Test
    void callingWithoutTheLibraryFailsWithAJavaException() throws ClassNotFoundException {
        for (Class<?> header : List.of(cuda_h.class, cublasLt_h.class, torch_shim_h.class)) {
            Class.forName(header.getName(), true, header.getClassLoader());
        }
        assumeTrue(SymbolLookup.loaderLookup().find("cuInit").isEmpty(),
                "a libcuda is loaded in this JVM; the no-library case cannot be observed here");

        ExceptionInInitializerError first = assertThrows(ExceptionInInitializerError.class, () -> cuda_h.cuInit(0));
        NoSuchElementException cause = assertInstanceOf(NoSuchElementException.class, first.getCause());
        assertEquals("Symbol not found: cuInit", cause.getMessage());
        // the per-function holder class stays unusable for the life of the class loader: load libraries first
        assertThrows(NoClassDefFoundError.class, () -> cuda_h.cuInit(0));
        // other functions are unaffected until they are called
        assertEquals(0, cuda_h.CUDA_SUCCESS());
    }
}
