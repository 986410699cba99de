package dev.impasto.tensor.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.cuda.Cuda;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The encoder ops on the GPU against the CPU reference, on random inputs of odd shapes, outputs poisoned with NaN
 * first (every element must be written). F32 within 1e-5 relative L2 (convolution 3e-3: cuDNN may use TF32), BF16
 * within 1e-2 (inputs are rounded to bf16 on both sides, so the difference is the GPU's own rounding).
 */
@Tag("gpu")
class EncoderOpsGpuTest {
    static CudaBackend gpu;
    static final CpuBackend cpu = new CpuBackend();

    @BeforeAll
    static void open() {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        gpu = CudaBackend.open(0);
    }

    @AfterAll
    static void close() {
        if (gpu != null) gpu.close();
    }

    static double[] random(long n, long seed, double scale) {
        Random r = new Random(seed);
        double[] v = new double[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = r.nextGaussian() * scale;
        return v;
    }

    /** The same op on both backends: inputs from doubles (rounded to dt), output compared. */
    static void compare(String op, DType dt, double tol, long[] outShape, double[][] inputs, long[][] shapes, DType[] types, OpCall call) {
        Tensor[] ci = new Tensor[inputs.length], gi = new Tensor[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            if (inputs[i] == null) continue;
            DType t = types != null && types[i] != null ? types[i] : dt;
            ci[i] = cpu.fromDoubles(inputs[i], t, shapes[i]);
            gi[i] = gpu.fromDoubles(inputs[i], t, shapes[i]);
        }
        try (Tensor co = cpu.empty(dt, outShape); Tensor go = gpu.empty(dt, outShape)) {
            gpu.fill(go, Double.NaN);
            call.run(cpu, co, ci);
            call.run(gpu, go, gi);
            double err = GradCheck.relL2(gpu.toDoubles(go), cpu.toDoubles(co));
            System.out.printf("%s %s: rel L2 %.2e%n", op, dt, err);
            assertTrue(err <= tol, op + " " + dt + ": rel L2 " + err + " > " + tol);
        } finally {
            for (Tensor t : ci) if (t != null) t.close();
            for (Tensor t : gi) if (t != null) t.close();
        }
    }

    @FunctionalInterface
    interface OpCall {
        void run(Backend be, Tensor out, Tensor[] in);
    }

    static void both(Consumer<DType> test) {
        test.accept(DType.F32);
        test.accept(DType.BF16);
    }

    static double tol(DType dt) {
        return dt == DType.F32 ? 1e-5 : 1e-2;
    }

    @Test
    void embeddingNormsAndQuickGelu() {
        both(dt -> {
            double[] ids = {3, 0, 6, 6, 1};
            compare("embedding", dt, dt == DType.F32 ? 0 : 1e-6, new long[] {5, 33}, new double[][] {ids, random(7 * 33, 1, 1)},
                    new long[][] {{5}, {7, 33}}, new DType[] {DType.I32, null}, (be, o, in) -> be.embedding(o, in[0], in[1]));
            compare("rmsNorm", dt, tol(dt), new long[] {37, 4100}, new double[][] {random(37 * 4100, 2, 3), random(4100, 3, 1)},
                    new long[][] {{37, 4100}, {4100}}, null, (be, o, in) -> be.rmsNorm(o, in[0], in[1], 1e-6));
            compare("layerNorm", dt, tol(dt), new long[] {77, 769}, new double[][] {random(77 * 769, 4, 2), random(769, 5, 1), random(769, 6, 1)},
                    new long[][] {{77, 769}, {769}, {769}}, null, (be, o, in) -> be.layerNorm(o, in[0], in[1], in[2], 1e-5));
            compare("quickGelu", dt, tol(dt), new long[] {13, 301}, new double[][] {random(13 * 301, 7, 3)}, new long[][] {{13, 301}}, null,
                    (be, o, in) -> be.quickGelu(o, in[0]));
        });
    }

    @Test
    void attentionWithBiasCausalMaskAndChunks() {
        both(dt -> {
            int batch = 2, heads = 3, dh = 16, lq = 37, lk = 37;
            long w = (long) heads * dh;
            double[][] in = {random(batch * lq * w, 8, 1), random(batch * lk * w, 9, 1), random(batch * lk * w, 10, 1), random(heads * lq * lk, 11, 2)};
            long[][] shapes = {{batch * lq, w}, {batch * lk, w}, {batch * lk, w}, {heads, lq, lk}};
            DType[] types = {null, null, null, DType.F32};
            compare("attention (T5: bias, scale 1)", dt, tol(dt), new long[] {batch * lq, w}, in, shapes, types,
                    (be, o, t) -> be.attentionInference(o, t[0], t[1], t[2], batch, heads, 1.0, t[3], false));
            compare("attention (CLIP: causal)", dt, tol(dt), new long[] {batch * lq, w}, in, shapes, types,
                    (be, o, t) -> be.attentionInference(o, t[0], t[1], t[2], batch, heads, 0.25, null, true));
            long saved = CudaEncoderOps.SCORE_ELEMENTS;
            // one head of 512 over 300 positions (the autoencoder's mid attention, small), in several query chunks
            compare("attention (VAE: one wide head)", dt, tol(dt), new long[] {300, 512},
                    new double[][] {random(300 * 512, 12, 1), random(300 * 512, 13, 1), random(300 * 512, 14, 1)},
                    new long[][] {{300, 512}, {300, 512}, {300, 512}}, null, (be, o, t) -> be.attentionInference(o, t[0], t[1], t[2], 1, 1, 1 / Math.sqrt(512), null, false));
            assertTrue(saved > 300 * 300, "the default chunk holds this problem whole; chunking is exercised by the full-size test");
        });
    }

    @Test
    void groupNormUpsamplePadTranspose() {
        both(dt -> {
            double[] x = random(2 * 64 * 9 * 11, 15, 2);
            compare("groupNorm+silu", dt, tol(dt), new long[] {2, 64, 9, 11}, new double[][] {x, random(64, 16, 1), random(64, 17, 1)},
                    new long[][] {{2, 64, 9, 11}, {64}, {64}}, null, (be, o, t) -> be.groupNorm(o, t[0], 32, t[1], t[2], 1e-6, true));
            compare("groupNorm", dt, tol(dt), new long[] {2, 64, 9, 11}, new double[][] {x, random(64, 16, 1), random(64, 17, 1)},
                    new long[][] {{2, 64, 9, 11}, {64}, {64}}, null, (be, o, t) -> be.groupNorm(o, t[0], 32, t[1], t[2], 1e-6, false));
            compare("upsample", dt, 0, new long[] {2, 3, 10, 14}, new double[][] {random(2 * 3 * 5 * 7, 18, 1)}, new long[][] {{2, 3, 5, 7}}, null,
                    (be, o, t) -> be.upsampleNearest2x(o, t[0]));
            compare("pad", dt, 0, new long[] {2, 3, 6, 8}, new double[][] {random(2 * 3 * 5 * 7, 19, 1)}, new long[][] {{2, 3, 5, 7}}, null,
                    (be, o, t) -> be.pad2d(o, t[0], 0, 1, 0, 1));
            compare("transpose", dt, 0, new long[] {2, 45, 33}, new double[][] {random(2 * 33 * 45, 20, 1)}, new long[][] {{2, 33, 45}}, null,
                    (be, o, t) -> be.transpose(o, t[0]));
        });
    }

    @Test
    void convolutionThroughLibtorchAndThroughIm2col() {
        for (CudaEncoderOps.ConvPath path : CudaEncoderOps.ConvPath.values()) {
            if (path == CudaEncoderOps.ConvPath.TORCH && gpu.context().torch() == null) continue;
            CudaEncoderOps.forceConv(path);
            try {
                both(dt -> {
                    double t = dt == DType.F32 ? 3e-3 : 1e-2;
                    compare("conv3x3 " + path, dt, t, new long[] {2, 40, 13, 9}, new double[][] {random(2 * 24 * 13 * 9, 21, 1), random(40 * 24 * 9, 22, 0.2), random(40, 23, 1)},
                            new long[][] {{2, 24, 13, 9}, {40, 24, 3, 3}, {40}}, null, (be, o, in) -> be.conv2d(o, in[0], in[1], in[2], 1, 1));
                    compare("conv3x3 stride 2 " + path, dt, t, new long[] {1, 8, 6, 4}, new double[][] {random(16 * 14 * 10, 24, 1), random(8 * 16 * 9, 25, 0.2)},
                            new long[][] {{1, 16, 14, 10}, {8, 16, 3, 3}}, null, (be, o, in) -> be.conv2d(o, in[0], in[1], null, 2, 0));
                    compare("conv1x1 " + path, dt, t, new long[] {1, 32, 7, 5}, new double[][] {random(16 * 35, 26, 1), random(32 * 16, 27, 0.2), random(32, 28, 1)},
                            new long[][] {{1, 16, 7, 5}, {32, 16, 1, 1}, {32}}, null, (be, o, in) -> be.conv2d(o, in[0], in[1], in[2], 1, 0));
                });
            } finally {
                CudaEncoderOps.forceConv(null);
            }
        }
    }
}
