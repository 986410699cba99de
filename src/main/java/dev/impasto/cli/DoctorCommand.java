package dev.impasto.cli;

import dev.impasto.cuda.CublasLt;
import dev.impasto.cuda.Cuda;
import dev.impasto.cuda.CudaContext;
import dev.impasto.cuda.CudaEvent;
import dev.impasto.cuda.DeviceAllocator;
import dev.impasto.cuda.DeviceInfo;
import dev.impasto.cuda.KernelModule;
import dev.impasto.cuda.NativeLibraries;
import dev.impasto.cuda.TorchRuntime;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cuda.CudaBackend;
import dev.impasto.tensor.cuda.CudaTensor;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** `impasto doctor`: what this machine has for impasto, and a short self-test on each GPU. */
@Command(name = "doctor", mixinStandardHelpOptions = true,
        description = {"Reports Java, GPUs, driver, cuBLASLt, libtorch and the packed kernels, then runs a 2-second self-test",
                "(a GEMM and a custom kernel on each GPU, compared with the CPU).",
                "Exit codes: 0 all good, 3 no usable GPU (CPU-only mode works), 4 a self-test failed."})
public final class DoctorCommand implements Callable<Integer> {
    public static final int EXIT_NO_GPU = 3;
    public static final int EXIT_SELFTEST_FAILED = 4;

    @Option(names = "--no-selftest", description = "Only report; skip the GPU self-test.")
    boolean noSelftest;

    private final PrintStream out;

    public DoctorCommand() {
        this(System.out);
    }

    public DoctorCommand(PrintStream out) {
        this.out = out;
    }

    @Override
    public Integer call() {
        out.println("impasto doctor");
        out.printf(Locale.ROOT, "  Java          %s (%s), %s %s, %d CPU cores%n", Runtime.version(), System.getProperty("java.vendor"),
                System.getProperty("os.name"), System.getProperty("os.arch"), Runtime.getRuntime().availableProcessors());
        out.println("  kernels       " + KernelModule.architectures());
        NativeLibraries.Status libs = NativeLibraries.load();
        out.println("  " + libs.cuda().describe());
        out.println("  " + libs.cublasLt().describe());
        if (libs.torch() == null) out.println("  libtorch: not used (" + libs.torchSkippedReason() + ")");
        else if (libs.torch().ok()) out.println("  libtorch: " + torchVersion(libs.torch().found()) + " at " + libs.torch().found().getParent());
        else out.println("  " + libs.torch().describe() + (libs.torchSkippedReason() == null ? "" : " " + libs.torchSkippedReason())
                + "; attention uses impasto's own kernel");
        if (!libs.cudaLoaded()) {
            out.println();
            out.println("No GPU can be used: " + libs.problem());
            out.println("impasto runs on the CPU backend (tiny models, tests); see README 'Real weights and a GPU'.");
            return EXIT_NO_GPU;
        }
        int count;
        try {
            Cuda.init();
            count = Cuda.deviceCount();
            int v = Cuda.driverVersion();
            String release = nvidiaDriverRelease(java.nio.file.Path.of("/proc/driver/nvidia/version"));
            out.printf(Locale.ROOT, "  driver        %sCUDA %d.%d%n", release == null ? "" : "NVIDIA " + release + ", ", v / 1000, (v % 1000) / 10);
            out.printf(Locale.ROOT, "  cuBLASLt      %d%n", CublasLt.version());
        } catch (RuntimeException e) {
            out.println();
            out.println("No GPU can be used: " + e.getMessage());
            return EXIT_NO_GPU;
        }
        if (count == 0) {
            out.println("No GPU: the driver reports 0 devices.");
            return EXIT_NO_GPU;
        }
        boolean ok = true;
        for (int i = 0; i < count; i++) {
            DeviceInfo d = DeviceInfo.query(i);
            out.printf(Locale.ROOT, "  GPU %d         %s, compute %s (%s), %d SMs, %.1f GiB, L2 %d MiB%n", i, d.name(), d.computeCapability(),
                    d.smTarget(), d.multiprocessors(), d.totalMemory() / (double) (1L << 30), d.l2CacheBytes() >> 20);
            if (!noSelftest) ok &= selfTest(i);
        }
        return ok ? 0 : EXIT_SELFTEST_FAILED;
    }

    static String torchVersion(Path libtorchCuda) {
        Path version = libtorchCuda.getParent().getParent().resolve("version.py");
        try {
            for (String line : Files.readAllLines(version))
                if (line.startsWith("__version__")) return "PyTorch " + line.replaceAll(".*=\\s*['\"]([^'\"]+)['\"].*", "$1") + ", C ABI " + TorchRuntime.abiVersion();
        } catch (Exception e) {
            // fall through
        }
        return "libtorch (C ABI " + TorchRuntime.abiVersion() + ")";
    }

    /** A bf16 GEMM through cuBLASLt and the selftest kernel, both against the CPU. */
    private boolean selfTest(int ordinal) {
        long t0 = System.nanoTime();
        try (CudaBackend be = new CudaBackend(CudaContext.open(ordinal))) {
            Random r = new Random(ordinal);
            int m = 257, n = 131, k = 384;
            double[] a = new double[m * k], b = new double[n * k];
            for (int i = 0; i < a.length; i++) a[i] = DType.BF16.round(r.nextGaussian());
            for (int i = 0; i < b.length; i++) b[i] = DType.BF16.round(r.nextGaussian());
            float gemmErr;
            float ms;
            try (Tensor ta = be.fromDoubles(a, DType.BF16, m, k); Tensor tb = be.fromDoubles(b, DType.BF16, n, k);
                 Tensor tc = be.empty(DType.F32, m, n); CudaEvent e0 = CudaEvent.create(); CudaEvent e1 = CudaEvent.create()) {
                be.fill(tc, Double.NaN);
                e0.record(be.context().stream());
                be.gemm(tc, ta, false, tb, true, 1, 0);
                e1.record(be.context().stream());
                ms = e1.elapsedSince(e0);
                double[] c = be.toDoubles(tc);
                double num = 0, den = 0;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double acc = 0;
                        for (int kk = 0; kk < k; kk++) acc += a[i * k + kk] * b[j * k + kk];
                        num += (c[i * n + j] - acc) * (c[i * n + j] - acc);
                        den += acc * acc;
                    }
                gemmErr = (float) Math.sqrt(num / den);
            }
            double kernErr;
            try (Tensor x = be.fromDoubles(new double[] {1, -2, 3.5, 1e3}, DType.F32, 4); Tensor y = be.empty(DType.F32, 4)) {
                be.fill(y, Double.NaN);
                be.context().kernels().get("impasto_selftest_axpb").launch1d(be.context().stream(), 4, 128,
                        ((CudaTensor) y).address(), ((CudaTensor) x).address(), 2.0f, 0.5f, 4L);
                double[] v = be.toDoubles(y);
                double[] expect = {2.5, -3.5, 7.5, 2000.5};
                kernErr = 0;
                for (int i = 0; i < 4; i++) kernErr = Math.max(kernErr, Math.abs(v[i] - expect[i]));
            }
            boolean pass = gemmErr < 1e-2 && !Float.isNaN(gemmErr) && kernErr == 0;
            long[] mem = DeviceAllocator.memInfo();
            out.printf(Locale.ROOT, "  self-test %d   %s: bf16 GEMM %dx%dx%d rel err %.2e (%.3f ms), kernel max err %.1g; %.1f GiB free; %.2f s%n",
                    ordinal, pass ? "PASS" : "FAIL", m, n, k, gemmErr, ms, kernErr, mem[0] / (double) (1L << 30), (System.nanoTime() - t0) / 1e9);
            return pass;
        } catch (RuntimeException e) {
            out.println("  self-test " + ordinal + "   FAIL: " + e.getMessage());
            return false;
        }
    }

    /**
     * The kernel module's release ("580.159.04") from the first line of /proc/driver/nvidia/version ("NVRM version:
     * NVIDIA UNIX x86_64 Kernel Module  580.159.04  ..."), or null when the file is absent or says something else.
     */
    static String nvidiaDriverRelease(java.nio.file.Path versionFile) {
        try (var lines = java.nio.file.Files.lines(versionFile)) {
            String first = lines.findFirst().orElse("");
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("Kernel Module\\s+(?:for \\S+\\s+)?([0-9]+(?:\\.[0-9]+)+)").matcher(first);
            return m.find() ? m.group(1) : null;
        } catch (java.io.IOException | java.io.UncheckedIOException e) {
            return null;
        }
    }
}
