package dev.impasto.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.cli.DoctorCommand;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The parts of the CUDA runtime that need no GPU: library discovery, error messages, the fatbin, GEMM shape logic. */
class RuntimeCpuTest {

    @Test
    void discoveryPrefersTheEnvironmentOverrideAndListsWhereItLooked(@TempDir Path tmp) throws Exception {
        Path custom = Files.createDirectories(tmp.resolve("custom"));
        Files.writeString(custom.resolve("libcuda.so.1"), "");
        List<Path> dirs = NativeLibraries.driverDirs(Map.of("IMPASTO_CUDA_LIB_DIR", custom.toString()));
        assertEquals(custom, dirs.getFirst());
        NativeLibraries.Search s = NativeLibraries.find("CUDA driver", List.of("libcuda.so.1"), dirs, Files::isRegularFile);
        assertEquals(custom.resolve("libcuda.so.1").toAbsolutePath(), s.found());
        NativeLibraries.Search none = NativeLibraries.find("cuBLASLt", List.of("libcublasLt.so.13"), List.of(tmp.resolve("a"), tmp.resolve("b")), p -> false);
        assertNull(none.found());
        assertTrue(none.describe().contains("libcublasLt.so.13") && none.describe().contains(tmp.resolve("a").toString())
                && none.describe().contains(tmp.resolve("b").toString()), none.describe());
    }

    @Test
    void cublasSearchCoversToolkitsAndPyTorchWheels() {
        Path torchLib = Path.of("/venv/lib/python3.12/site-packages/torch/lib");
        List<Path> dirs = NativeLibraries.cublasDirs(Map.of("CUDA_HOME", "/opt/cuda-x", "IMPASTO_CUBLAS_LIB_DIR", "/mine"), List.of(torchLib));
        assertEquals(Path.of("/mine"), dirs.getFirst());
        assertTrue(dirs.contains(Path.of("/opt/cuda-x/lib64")));
        assertTrue(dirs.contains(Path.of("/usr/local/cuda/lib64")));
        assertTrue(dirs.contains(Path.of("/venv/lib/python3.12/site-packages/nvidia/cu13/lib")));
        // a libtorch that is not a Python package has no wheels beside it
        assertTrue(NativeLibraries.cublasDirs(Map.of(), List.of(Path.of("/opt/libtorch/lib"))).stream().noneMatch(p -> p.startsWith("/opt/nvidia")));
    }

    @Test
    void explicitLibtorchDirIsTheOnlyPlaceSearched() {
        List<Path> l = NativeLibraries.torchDirs(Map.of("IMPASTO_LIBTORCH_DIR", "/x/torch"), () -> Optional.of(Path.of("/py/torch")));
        assertEquals(List.of(Path.of("/x/torch"), Path.of("/x/torch/lib")), l);
        List<Path> fromPython = NativeLibraries.torchDirs(Map.of(), () -> Optional.of(Path.of("/py/torch")));
        assertTrue(fromPython.contains(Path.of("/py/torch/lib")));
    }

    @Test
    void ldconfigOutputIsParsed() {
        String out = """
                1234 libs found in cache `/etc/ld.so.cache'
                \tlibcuda.so.1 (libc6) => /usr/lib32/libcuda.so.1
                \tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1
                \tlibcublasLt.so.13 (libc6,x86-64) => /usr/local/cuda/lib64/libcublasLt.so.13
                """;
        assertEquals(Path.of("/usr/lib/x86_64-linux-gnu/libcuda.so.1"), NativeLibraries.parseLdconfig(out, "libcuda.so.1").orElseThrow());
        assertTrue(NativeLibraries.parseLdconfig(out, "libtorch.so").isEmpty());
    }

    @Test
    void errorsNameTheCallTheErrorAndTheFix() {
        CudaException e = new CudaException("cuMemcpyHtoDAsync", 700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered");
        assertEquals("cuMemcpyHtoDAsync failed: CUDA_ERROR_ILLEGAL_ADDRESS (700): an illegal memory access was encountered", e.getMessage());
        CudaOutOfMemoryException oom = new CudaOutOfMemoryException(3L << 30, 1L << 30, 80L << 30, 70L << 30, 5L << 30, 75L << 30);
        String m = oom.getMessage();
        assertTrue(m.contains("asked for 3.00 GiB") && m.contains("1.00 GiB free of 80.00 GiB") && m.contains("--training.gradientCheckpointing true")
                && m.contains("--model.baseFormat nf4") && m.contains("--base-format nf4"), m);
    }

    @Test
    void theJarCarriesTheFatbin() {
        if (KernelModule.class.getResource("/dev/impasto/kernels/CPU_ONLY") != null) {
            // a -Dimpasto.cpuOnly=true build says so instead of failing obscurely
            CudaUnavailableException e = assertThrows(CudaUnavailableException.class, KernelModule::fatbin);
            assertTrue(e.getMessage().contains("-Dimpasto.cpuOnly=true"), e.getMessage());
            return;
        }
        byte[] fb = KernelModule.fatbin();
        // fatbin header magic 0xBA55ED50, little-endian
        assertEquals(0x50, fb[0] & 0xff);
        assertEquals(0xED, fb[1] & 0xff);
        assertEquals(0x55, fb[2] & 0xff);
        assertEquals(0xBA, fb[3] & 0xff);
        assertTrue(KernelModule.architectures().contains("sm_90a"), KernelModule.architectures());
    }

    @Test
    void rowMajorGemmMapsToColumnMajorLayouts() {
        // D[m=5, n=3] = A[5, 7] B[3, 7]^T: cuBLASLt's A is our B seen column-major as [7 x 3] transposed
        CublasLt.Gemm g = CublasLt.Gemm.of(5, 3, 7, false, true, CublasLt.Type.BF16, 0x1000, 7, 0x2000, 7, CublasLt.Type.F32, 0x3000, 3, 1, 0);
        g.validate();
        long[][] l = g.columnMajorLayouts();
        assertArrayEquals(new long[] {7, 3, 7}, l[0]);   // our B [n, k] row-major = col-major [k, n], op T
        assertArrayEquals(new long[] {7, 5, 7}, l[1]);   // our A [m, k] row-major = col-major [k, m]
        assertArrayEquals(new long[] {3, 5, 3}, l[3]);   // D [m, n] row-major = col-major [n, m]
        // a column view: leading dim larger than the row
        CublasLt.Gemm.of(5, 3, 7, true, false, CublasLt.Type.BF16, 0, 16, 0, 64, CublasLt.Type.BF16, 0, 40, 1, 1).validate();
        assertThrows(IllegalArgumentException.class, () ->
                CublasLt.Gemm.of(5, 3, 7, false, false, CublasLt.Type.BF16, 0, 6, 0, 3, CublasLt.Type.F32, 0, 3, 1, 0).validate());
        assertThrows(IllegalArgumentException.class, () ->
                CublasLt.Gemm.of(5, 3, 7, false, false, CublasLt.Type.BF16, 0, 7, 0, 2, CublasLt.Type.F32, 0, 3, 1, 0).validate());
    }

    @Test
    void allocatorRoundsToReusableSizes() {
        assertEquals(512, DeviceAllocator.roundUp(1));
        assertEquals(1024, DeviceAllocator.roundUp(513));
        assertEquals(4L << 20, DeviceAllocator.roundUp((2L << 20) + 1));
        assertTrue(DeviceAllocator.maxReuse(4L << 20) >= 5L << 20);
    }

    @Test
    void doctorWithoutAGpuSaysSoAndExitsWithItsOwnCode() {
        org.junit.jupiter.api.Assumptions.assumeFalse(Cuda.available(), "a GPU is present");
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int rc = new DoctorCommand(new PrintStream(buf)).call();
        assertEquals(DoctorCommand.EXIT_NO_GPU, rc);
        String text = buf.toString();
        assertTrue(text.contains("No GPU can be used") && text.contains("libcuda.so.1") && text.contains("Java"), text);
    }
}
