package dev.impasto.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import dev.impasto.tensor.cuda.CudaBackend;
import dev.impasto.tensor.cuda.CudaTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The CUDA runtime on a real GPU: memory, kernel launch, cuBLASLt, libtorch views, error paths, allocator counters. */
@Tag("gpu")
class CudaRuntimeGpuTest {
    static CudaBackend be;

    @BeforeAll
    static void open() {
        Assumptions.assumeTrue(Cuda.available(), "no usable GPU");
        be = CudaBackend.open(0);
        System.out.println("[gpu] " + be.context().info.name() + " " + be.context().info.computeCapability());
    }

    @AfterAll
    static void close() {
        if (be != null) be.close();
    }

    @Test
    void hostDeviceRoundTripIsExact() {
        Random r = new Random(1);
        for (DType t : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            double[] v = new double[1_000_003];
            for (int i = 0; i < v.length; i++) v[i] = t.round(r.nextGaussian() * 100);
            try (Tensor d = be.fromDoubles(v, t, v.length)) {
                double[] back = be.toDoubles(d);
                for (int i = 0; i < v.length; i++) if (back[i] != v[i]) throw new AssertionError(t + " element " + i + ": " + back[i] + " != " + v[i]);
            }
        }
        // raw bytes through Memcpy and a device-to-device copy
        try (Arena a = Arena.ofConfined(); Tensor x = be.empty(DType.U8, 4097); Tensor y = be.empty(DType.U8, 4097)) {
            MemorySegment src = a.allocate(4097);
            for (int i = 0; i < 4097; i++) src.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31));
            Memcpy.hostToDevice(((CudaTensor) x).address(), src, 4097, be.context().stream());
            be.copy(y, x);
            byte[] back = be.toBytes(y);
            for (int i = 0; i < 4097; i++) assertEquals((byte) (i * 31), back[i]);
        }
    }

    @Test
    void customKernelLaunchComputesOnTheDevice() {
        int n = 1 << 20 | 7;
        double[] x = GradCheck.random(new Random(2), n, 3);
        try (Tensor tx = be.fromDoubles(x, DType.F32, n); Tensor ty = be.empty(DType.F32, n)) {
            be.fill(ty, Double.NaN);
            be.context().kernels().get("impasto_selftest_axpb").launch1d(be.context().stream(), n, 256,
                    ((CudaTensor) ty).address(), ((CudaTensor) tx).address(), 1.5f, -0.25f, (long) n);
            double[] y = be.toDoubles(ty);
            for (int i = 0; i < n; i++) assertEquals((float) (1.5f * (float) x[i] - 0.25f), y[i], 1e-6, "element " + i);
        }
    }

    @Test
    void cublasLtGemmMatchesFloat64AtOddShapes() {
        CpuBackend cpu = new CpuBackend();
        Random r = new Random(3);
        int[][] shapes = {{37, 61, 129}, {1, 3072, 64}, {130, 17, 8}, {257, 96, 3072}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            for (boolean ta : new boolean[] {false, true})
                for (boolean tb : new boolean[] {false, true})
                    for (DType dt : new DType[] {DType.BF16, DType.F32}) {
                        double[] a = GradCheck.random(r, m * k, 1), b = GradCheck.random(r, n * k, 1), c0 = GradCheck.random(r, m * n, 1);
                        long[] as = ta ? new long[] {k, m} : new long[] {m, k}, bs = tb ? new long[] {n, k} : new long[] {k, n};
                        try (Tensor ga = be.fromDoubles(a, dt, as); Tensor gb = be.fromDoubles(b, dt, bs); Tensor gc = be.fromDoubles(c0, DType.F32, m, n)) {
                            be.gemm(gc, ga, ta, gb, tb, 0.5, 1.0);
                            Tensor ca = cpu.fromDoubles(a, dt, as), cb = cpu.fromDoubles(b, dt, bs), cc = cpu.fromDoubles(c0, DType.F64, m, n);
                            cpu.gemm(cc, ca, ta, cb, tb, 0.5, 1.0);
                            double err = GradCheck.relL2(be.toDoubles(gc), cpu.toDoubles(cc));
                            double tol = dt == DType.BF16 ? 1e-2 : 1e-5;
                            assertTrue(err <= tol, "gemm " + m + "x" + n + "x" + k + " ta=" + ta + " tb=" + tb + " " + dt + ": rel err " + err);
                        }
                    }
        }
    }

    @Test
    void libtorchWrapsOurMemoryAndRunsAnAttentionShim() {
        TorchRuntime t = be.context().torch();
        Assumptions.assumeTrue(t != null, "libtorch not present");
        int b = 1, h = 2, l = 40, d = 64;
        double[] q = GradCheck.random(new Random(4), b * l * h * d, 1);
        try (Tensor tq = be.fromDoubles(q, DType.BF16, b, l, h * d); Tensor out = be.empty(DType.BF16, b, l, h * d);
             Tensor lse = be.empty(DType.F32, b, h, l)) {
            long addr = ((CudaTensor) tq).address();
            MemorySegment view = t.view(addr, DType.BF16, new long[] {b, h, l, d}, new long[] {l * h * d, d, h * d, 1});
            assertEquals(addr, t.dataPtr(view), "the torch tensor aliases our memory");
            assertEquals(java.util.List.of(1L, 2L, 40L, 64L), java.util.Arrays.stream(t.sizes(view)).boxed().toList());
            t.delete(view);
            be.fill(out, Double.NaN);
            be.attention(out, lse, tq, tq, tq, h);
            CpuBackend cpu = new CpuBackend();
            Tensor cq = cpu.fromDoubles(q, DType.BF16, b, l, h * d), co = cpu.empty(DType.F64, b, l, h * d);
            cpu.attention(co, null, cq, cq, cq, h);
            double err = GradCheck.relL2(be.toDoubles(out), cpu.toDoubles(co));
            assertTrue(err < 1e-2, "attention through " + be.attentionImplementation() + ": rel err " + err);
        }
    }

    @Test
    void aBadLaunchIsAnExceptionAndTheContextSurvives() {
        Kernel k = be.context().kernels().get("impasto_selftest_axpb");
        CudaException e = assertThrows(CudaException.class, () -> k.launch(be.context().stream(), 1, 1, 1, 4096, 1, 1, 0, 0L, 0L, 1f, 0f, 0L));
        assertTrue(e.getMessage().contains("cuLaunchKernel(impasto_selftest_axpb") && e.getMessage().contains("CUDA_ERROR_INVALID_VALUE"), e.getMessage());
        assertThrows(CudaException.class, () -> be.context().kernels().get("no_such_kernel"));
        try (Tensor x = be.fromDoubles(new double[] {1, 2}, DType.F32, 2)) {
            assertEquals(3.0, be.toDoubles(x)[0] + be.toDoubles(x)[1]);
        }
    }

    @Test
    void allocatorReusesBlocksAndCountsPeak() {
        DeviceAllocator al = be.context().allocator();
        be.synchronize();
        al.resetPeak();
        long base = al.bytesInUse();
        long calls0 = al.driverAllocations();
        long a = al.allocate(10 << 20), b = al.allocate(30 << 20);
        long afterTwo = al.driverAllocations();
        al.free(a);
        long c = al.allocate(10 << 20);
        assertEquals(a, c, "a freed block of the same size is reused");
        assertEquals(afterTwo, al.driverAllocations(), "reuse does not call the driver");
        assertEquals(base + (10L << 20) + (30L << 20), al.peakBytes());
        al.free(b);
        al.free(c);
        assertEquals(base, al.bytesInUse());
        assertTrue(afterTwo - calls0 <= 2);
        assertThrows(IllegalStateException.class, () -> al.free(12345));
    }

    @Test
    void outOfMemorySaysWhatWasAskedAndWhatIsFree() {
        CudaOutOfMemoryException e = assertThrows(CudaOutOfMemoryException.class, () -> be.empty(DType.F32, 1L << 40));
        assertTrue(e.getMessage().contains("asked for 4.00 TiB") && e.getMessage().contains("free of"), e.getMessage());
    }
}
