package dev.impasto.bench;

import dev.impasto.cuda.Cuda;
import dev.impasto.cuda.CublasLt;
import dev.impasto.cuda.CudaEvent;
import dev.impasto.cuda.CudaStream;
import dev.impasto.cuda.Memcpy;
import dev.impasto.tensor.DType;
import dev.impasto.model.BaseLinear;
import dev.impasto.model.Linear;
import dev.impasto.model.LoraContext;
import dev.impasto.model.LoraGroup;
import dev.impasto.model.WeightScratch;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cuda.CudaBackend;
import dev.impasto.tensor.cuda.CudaTensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * GPU kernel benchmarks at FLUX sizes: NF4 dequantization (GB/s against a device-to-device copy measured in the same
 * run), the LoRA forward's overhead over the bare base GEMM (M 4608, N = K = 3072, rank 16, the sequence of
 * dev.impasto.model.Linear.forward), LayerNorm + modulation, QK norm + RoPE, the NF4 GEMV of the modulation linears, and
 * impasto's own attention.
 *
 * <p>Two ways to run it. {@link #main} (no harness): times each case with CUDA events (warm-up, then the median of
 * many repetitions, inputs rotated over buffers larger than L2 where the working set is small) and prints a table:
 * <pre>java --enable-native-access=ALL-UNNAMED -cp target/classes:target/test-classes:LIBS dev.impasto.bench.KernelBench</pre>
 * JMH: {@code java -cp ... org.openjdk.jmh.Main KernelBench} runs the {@code @Benchmark} methods (each call queues the
 * op and synchronises, so the numbers include one launch + sync; use main's event timings for kernel time).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class KernelBench {
    static final long M = 4608, D = 3072, RANK = 16, HEADS = 24, HEAD_DIM = 128;
    /** Launches per timed sample (see medianMs). */
    static final int BATCH = 10;

    CudaBackend be;
    final List<Tensor> owned = new ArrayList<>();
    Fixtures f;

    /** Every input of every case, allocated once. */
    static final class Fixtures {
        final LinearWeight.Nf4 nf4, nf4dq;
        final Tensor dequantOut;
        final Tensor copySrc, copyDst;
        final LinearWeight w;
        final Tensor bias, loraA, loraB, h;
        final Tensor[] x;           // rotated [M, D] bf16 activations
        final Tensor out;           // [M, D]
        final Tensor mod, mean, rstd;
        final Tensor[] qkv;         // rotated [M, 3D]
        final Tensor q, k, v, qScale, kScale, pe;
        final Tensor vec, modOut;   // GEMV: [B, D] -> [B, 6D]
        final LinearWeight.Nf4 modWeight;
        final LinearWeight.Gguf modQ8, modQ4K; // the same modulation linear as GGUF Q8_0 / Q4_K blocks
        final Tensor modDense;                 // [6D, D] bf16: where the dequantize + GEMM path puts them
        final Tensor aq, ak, av, aout, alse, adout, adq, adk, adv;
        final long attnLen;
        // the model's fused LoRA forward (dev.impasto.model.Linear): dense bf16 and NF4 bases [D, D] with one rank-16
        // adapter, inputs in buffers with RANK spare columns
        final Linear denseLora, nf4Lora;
        final LinearWeight.Nf4 nf4Square;
        final Tensor[] xWide;       // rotated [M, D + RANK]
        final WeightScratch scratch = new WeightScratch();
        final List<LoraGroup> groups = new ArrayList<>();
        static final long[] K_SWEEP = {3072, 3088, 3104, 3136};
        final Tensor[] xk = new Tensor[K_SWEEP.length];
        final LinearWeight[] wk = new LinearWeight[K_SWEEP.length];

        Fixtures(CudaBackend be, List<Tensor> owned) {
            Random r = new Random(1);
            // NF4 weight of linear1's size [21504, 3072]: the kernel's speed does not depend on the values
            long n = 21504, k = D;
            nf4 = nf4(be, owned, r, n, k, false);
            nf4dq = nf4(be, owned, r, n, k, true);
            dequantOut = own(owned, be.empty(DType.BF16, n, k));
            copySrc = own(owned, be.empty(DType.U8, 256L << 20));
            copyDst = own(owned, be.empty(DType.U8, 256L << 20));
            w = new LinearWeight.Dense(randn(be, owned, DType.BF16, 0.02, D, D));
            bias = randn(be, owned, DType.BF16, 0.02, D);
            loraA = randn(be, owned, DType.BF16, 0.02, RANK, D);
            loraB = randn(be, owned, DType.BF16, 0.02, D, RANK);
            h = own(owned, be.empty(DType.BF16, M, RANK));
            x = new Tensor[4];
            for (int i = 0; i < x.length; i++) x[i] = randn(be, owned, DType.BF16, 1, M, D);
            out = own(owned, be.empty(DType.BF16, M, D));
            mod = randn(be, owned, DType.BF16, 0.1, 1, 6 * D);
            mean = own(owned, be.empty(DType.F32, M));
            rstd = own(owned, be.empty(DType.F32, M));
            qkv = new Tensor[4];
            for (int i = 0; i < qkv.length; i++) qkv[i] = randn(be, owned, DType.BF16, 1, M, 3 * D);
            q = own(owned, be.empty(DType.BF16, 1, M, D));
            this.k = own(owned, be.empty(DType.BF16, 1, M, D));
            v = own(owned, be.empty(DType.BF16, 1, M, D));
            qScale = randn(be, owned, DType.BF16, 0.1, HEAD_DIM);
            kScale = randn(be, owned, DType.BF16, 0.1, HEAD_DIM);
            double[] pv = new double[(int) (M * HEAD_DIM)];
            for (int i = 0; i < pv.length; i += 2) {
                double a = r.nextDouble() * 6.28;
                pv[i] = Math.cos(a);
                pv[i + 1] = Math.sin(a);
            }
            pe = own(owned, be.fromDoubles(pv, DType.F32, M, HEAD_DIM / 2, 2));
            vec = randn(be, owned, DType.BF16, 1, 4, D);
            modOut = own(owned, be.empty(DType.BF16, 4, 6 * D));
            modWeight = nf4(be, owned, r, 6 * D, D, false);
            modQ8 = gguf(be, owned, r, 8, "Q8_0", 32, 34, 6 * D, D);
            modQ4K = gguf(be, owned, r, 12, "Q4_K", 256, 144, 6 * D, D);
            modDense = own(owned, be.empty(DType.BF16, 6 * D, D));
            attnLen = M;
            aq = randn(be, owned, DType.BF16, 1, 1, attnLen, D);
            ak = randn(be, owned, DType.BF16, 1, 1, attnLen, D);
            av = randn(be, owned, DType.BF16, 1, 1, attnLen, D);
            aout = own(owned, be.empty(DType.BF16, 1, attnLen, D));
            alse = own(owned, be.empty(DType.F32, 1, HEADS, attnLen));
            adout = randn(be, owned, DType.BF16, 1, 1, attnLen, D);
            adq = own(owned, be.empty(DType.BF16, 1, attnLen, D));
            adk = own(owned, be.empty(DType.BF16, 1, attnLen, D));
            adv = own(owned, be.empty(DType.BF16, 1, attnLen, D));
            nf4Square = nf4(be, owned, r, D, D, false);
            Tensor denseW = randn(be, new ArrayList<>(), DType.BF16, 0.02, D, D); // re-stored (and closed) by attachLora
            denseLora = loraLinear(be, owned, "double_blocks.0.img_mlp.0", new LinearWeight.Dense(denseW), bias, scratch);
            nf4Lora = loraLinear(be, owned, "double_blocks.0.txt_mlp.0", nf4Square, bias, scratch);
            for (int i = 0; i < K_SWEEP.length; i++) {
                xk[i] = randn(be, owned, DType.BF16, 1, M, K_SWEEP[i]);
                wk[i] = new LinearWeight.Dense(randn(be, owned, DType.BF16, 0.02, D, K_SWEEP[i]));
            }
            xWide = new Tensor[4];
            for (int i = 0; i < xWide.length; i++) xWide[i] = randn(be, owned, DType.BF16, 1, M, D + RANK);
        }

        Linear loraLinear(CudaBackend be, List<Tensor> owned, String key, LinearWeight w, Tensor bias, WeightScratch scratch) {
            Linear l = new Linear(key, new BaseLinear(w, bias));
            LoraGroup g = new LoraGroup(be, key, List.of(new LoraGroup.Piece("", 0, D)), D, (int) RANK, RANK, 0, DType.BF16);
            be.randn(g.a, 5);
            be.axpby(g.a, 0.02, g.a, 0);
            be.randn(g.b, 6);
            be.axpby(g.b, 0.02, g.b, 0);
            g.syncCompute(be);
            Tensor padded = l.attachLora(be, g, scratch);
            if (padded != null) owned.add(padded);
            groups.add(g);
            return l;
        }
    }

    static Tensor own(List<Tensor> owned, Tensor t) {
        owned.add(t);
        return t;
    }

    static Tensor randn(CudaBackend be, List<Tensor> owned, DType t, double scale, long... shape) {
        Tensor x = own(owned, be.empty(t, shape));
        be.randn(x, shape.length * 1_000_003L + shape[shape.length - 1]);
        be.axpby(x, scale, x, 0);
        return x;
    }

    static LinearWeight.Nf4 nf4(CudaBackend be, List<Tensor> owned, Random r, long n, long k, boolean dq) {
        long numel = n * k, blocks = numel / 64;
        byte[] packed = new byte[(int) (numel / 2)];
        r.nextBytes(packed);
        Tensor p = own(owned, be.fromBytes(MemorySegment.ofArray(packed), DType.U8, DType.U8, packed.length));
        if (!dq) {
            double[] am = new double[(int) blocks];
            for (int i = 0; i < am.length; i++) am[i] = 0.01 + 0.05 * r.nextDouble();
            return new LinearWeight.Nf4(p, own(owned, be.fromDoubles(am, DType.F32, blocks)), null, null, 0, 64, 0, n, k);
        }
        byte[] codes = new byte[(int) blocks];
        r.nextBytes(codes);
        double[] nested = new double[(int) ((blocks + 255) / 256)];
        Arrays.fill(nested, 0.01);
        double[] code = new double[256];
        for (int i = 0; i < 256; i++) code[i] = (i - 127.5) / 128;
        return new LinearWeight.Nf4(p, own(owned, be.fromBytes(MemorySegment.ofArray(codes), DType.U8, DType.U8, codes.length)),
                own(owned, be.fromDoubles(nested, DType.F32, nested.length)), own(owned, be.fromDoubles(code, DType.F32, 256)), 0.03f, 64, 256, n, k);
    }

    /** GGUF blocks of random bytes with small finite f16 scales at the start of each block (Q4_K: d and dmin). */
    static LinearWeight.Gguf gguf(CudaBackend be, List<Tensor> owned, Random r, int type, String name, int elems, int bytes, long n, long k) {
        long blocks = n * k / elems;
        byte[] b = new byte[Math.toIntExact(blocks * bytes)];
        r.nextBytes(b);
        for (long i = 0; i < blocks; i++) {
            int at = (int) (i * bytes);
            b[at] = 0x00;
            b[at + 1] = 0x20; // f16 0x2000 = 2^-7
            if (elems == 256) {
                b[at + 2] = 0x00;
                b[at + 3] = 0x1c;
            }
        }
        Tensor t = own(owned, be.fromBytes(MemorySegment.ofArray(b), DType.U8, DType.U8, b.length));
        return new LinearWeight.Gguf(t, type, name, n, k);
    }

    @Setup(Level.Trial)
    public void setUp() {
        if (!Cuda.available()) throw new IllegalStateException("KernelBench needs a CUDA GPU");
        be = CudaBackend.open(0);
        be.useAttention("OWN"); // the attention rows time impasto's own kernels
        f = new Fixtures(be, owned);
        be.synchronize();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        be.synchronize();
        for (LoraGroup g : f.groups) g.close();
        f.scratch.close();
        for (Tensor t : owned) t.close();
        be.close();
    }

    int rot;

    Tensor x() {
        return f.x[rot++ & 3];
    }

    // ------------------------------------------------------------------------------------------ the cases

    void nf4Dequant() {
        be.dequantize(f.dequantOut, f.nf4);
    }

    void nf4DqDequant() {
        be.dequantize(f.dequantOut, f.nf4dq);
    }

    void copy256MiB() {
        Memcpy.deviceToDevice(((CudaTensor) f.copyDst).address(), ((CudaTensor) f.copySrc).address(), 256L << 20, be.context().stream());
    }

    void baseGemm() {
        be.linear(f.out, x(), f.w, f.bias, 0);
    }

    /** The unfused LoRA sequence, no dropout: base, h = x A^T, out += s h B^T (a second pass over out). */
    void baseGemmWithLora() {
        Tensor xi = x();
        be.linear(f.out, xi, f.w, f.bias, 0);
        be.gemm(f.h, xi, false, f.loraA, true, 1, 0);
        be.gemm(f.out, f.h, false, f.loraB, true, 1.0, 1);
    }

    Tensor xWide() {
        return f.xWide[rot++ & 3];
    }

    /** Linear.forward of the model with a fused rank-16 LoRA on a dense bf16 base: h into x's spare columns, one GEMM. */
    void fusedLoraDense() {
        f.denseLora.forward(be, f.out, xWide(), null, LoraContext.INFERENCE);
    }

    /** The NF4 base alone: dequantize [D, D] + GEMM (what Linear.forward runs without a LoRA). */
    void nf4Linear() {
        be.linear(f.out, x(), f.nf4Square, f.bias, 0);
    }

    /** Linear.forward with a fused rank-16 LoRA on the NF4 base: dequantize into [W | s B], h, one GEMM. */
    void fusedLoraNf4() {
        f.nf4Lora.forward(be, f.out, xWide(), null, LoraContext.INFERENCE);
    }

    /** Parts of the fused forward, timed alone: the down-projection into x's spare columns. */
    void fusedPartDown() {
        Tensor xw = xWide();
        be.gemm(xw.cols(D, D + RANK), xw.cols(0, D), false, f.loraA, true, 1, 0);
    }

    /** ... the base GEMM over K + RANK against [W | s B]. */
    void fusedPartGemm() {
        be.linear(f.out, xWide(), new LinearWeight.Dense(f.denseLora.paddedWeightForBench()), f.bias, 0);
    }

    /** Base GEMM with K' = K_SWEEP[i] (what the extra LoRA columns cost for each padding of them). */
    void gemmK(int i) {
        be.linear(f.out, f.xk[i], f.wk[i], f.bias, 0);
    }

    /**
     * In the model's order: LayerNorm+modulate writes x into the input buffer, then the layer runs (x is still in L2,
     * 28 MB of 50 MB). withLora: the fused LoRA forward; else the bare base GEMM on the same buffer's x.
     */
    void lnThen(boolean withLora) {
        Tensor xw = xWide();
        be.layerNormModulate(xw.cols(0, D), f.mean, f.rstd, x(), f.mod.chunk(0, 6), f.mod.chunk(1, 6));
        if (withLora) f.denseLora.forward(be, f.out, xw, null, LoraContext.INFERENCE);
        else be.linear(f.out, xw.cols(0, D), f.w, f.bias, 0);
    }

    /** ... the host side alone: wall time of issuing one fused forward (the GPU runs behind). */
    double hostMicros(Runnable op, int n) {
        for (int i = 0; i < 20; i++) op.run();
        be.synchronize();
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) op.run();
        long t1 = System.nanoTime();
        be.synchronize();
        return (t1 - t0) / 1e3 / n;
    }

    void layerNormModulate() {
        be.layerNormModulate(f.out, f.mean, f.rstd, x(), f.mod.chunk(0, 6), f.mod.chunk(1, 6));
    }

    void qkNormRope() {
        be.qkNormRope(f.q, f.k, f.v, null, null, f.qkv[rot++ & 3], f.qScale, f.kScale, f.pe, (int) HEADS, 0);
    }

    void nf4Gemv(int rows) {
        be.linear(f.modOut.rows(0, rows), f.vec.rows(0, rows), f.modWeight, null, 0);
    }

    void ggufGemv(LinearWeight.Gguf w, int rows) {
        be.linear(f.modOut.rows(0, rows), f.vec.rows(0, rows), w, null, 0);
    }

    /** What a GGUF modulation linear cost before it had a GEMV: dequantize [6D, D], then a GEMM of a few rows. */
    void ggufDequantGemm(LinearWeight.Gguf w, int rows) {
        be.dequantize(f.modDense, w);
        be.linear(f.modOut.rows(0, rows), f.vec.rows(0, rows), new LinearWeight.Dense(f.modDense), null, 0);
    }

    void ownAttentionForward() {
        be.attention(f.aout, f.alse, f.aq, f.ak, f.av, (int) HEADS);
    }

    void ownAttentionBackward() {
        be.attentionBackward(f.adq, f.adk, f.adv, f.adout, f.aq, f.ak, f.av, f.aout, f.alse, (int) HEADS);
    }

    // ------------------------------------------------------------------------------------------ JMH entry points

    @Benchmark
    public void jmhNf4Dequant() {
        nf4Dequant();
        be.synchronize();
    }

    @Benchmark
    public void jmhCopy256MiB() {
        copy256MiB();
        be.synchronize();
    }

    @Benchmark
    public void jmhBaseGemm() {
        baseGemm();
        be.synchronize();
    }

    @Benchmark
    public void jmhBaseGemmWithLora() {
        baseGemmWithLora();
        be.synchronize();
    }

    @Benchmark
    public void jmhFusedLoraDense() {
        fusedLoraDense();
        be.synchronize();
    }

    @Benchmark
    public void jmhFusedLoraNf4() {
        fusedLoraNf4();
        be.synchronize();
    }

    @Benchmark
    public void jmhLayerNormModulate() {
        layerNormModulate();
        be.synchronize();
    }

    @Benchmark
    public void jmhQkNormRope() {
        qkNormRope();
        be.synchronize();
    }

    // ------------------------------------------------------------------------------------------ event timing + table

    /** Median milliseconds of op over reps repetitions after warm-up, each timed by a pair of CUDA events. */
    /**
     * Median time of one op: each sample is a batch of {@link #BATCH} launches between two events, divided by the batch.
     * One launch per event pair would also count the host's launch time (the GPU is idle when the first event is
     * recorded): tens of microseconds, a third of a 0.1 ms kernel.
     */
    double medianMs(Runnable op, int warmup, int reps) {
        CudaStream s = be.context().stream();
        for (int i = 0; i < warmup; i++) op.run();
        be.synchronize();
        double[] t = new double[reps];
        try (CudaEvent a = CudaEvent.create(); CudaEvent b = CudaEvent.create()) {
            for (int i = 0; i < reps; i++) {
                a.record(s);
                for (int j = 0; j < BATCH; j++) op.run();
                b.record(s);
                t[i] = b.elapsedSince(a) / BATCH;
            }
        }
        Arrays.sort(t);
        return t[reps / 2];
    }

    public static void main(String[] args) {
        KernelBench b = new KernelBench();
        b.setUp();
        try {
            b.table();
        } finally {
            b.tearDown();
        }
    }

    void table() {
        System.out.println("impasto kernel benchmarks on " + be.context().info.name() + " (median of CUDA-event timings)");
        System.out.println(String.format(Locale.ROOT, "%-52s %10s %12s %s", "case", "time", "rate", "note"));
        double copy = medianMs(this::copy256MiB, 5, 30);
        double copyGBs = 2.0 * (256L << 20) / (copy * 1e-3) / 1e9;
        row("device-to-device copy 256 MiB", copy, copyGBs, "GB/s", "read + written: the bandwidth ceiling");

        long numel = f.nf4.outFeatures() * f.nf4.inFeatures();
        double bytes = numel / 2.0 + numel / 64 * 4.0 + numel * 2.0;
        double t = medianMs(this::nf4Dequant, 5, 30);
        row("NF4 dequant [21504, 3072] -> bf16", t, bytes / (t * 1e-3) / 1e9, "GB/s",
                String.format(Locale.ROOT, "%.0f%% of copy (target >= 85%%)", 100 * bytes / (t * 1e-3) / 1e9 / copyGBs));
        double bytesDq = numel / 2.0 + numel / 64 + numel * 2.0;
        t = medianMs(this::nf4DqDequant, 5, 30);
        row("NF4 double-quant dequant [21504, 3072] -> bf16", t, bytesDq / (t * 1e-3) / 1e9, "GB/s",
                String.format(Locale.ROOT, "%.0f%% of copy", 100 * bytesDq / (t * 1e-3) / 1e9 / copyGBs));

        double flops = 2.0 * M * D * D;
        double base = medianMs(this::baseGemm, 10, 50);
        row("base GEMM 4608 x 3072 x 3072 bf16 + bias", base, flops / (base * 1e-3) / 1e12, "TFLOP/s", "");
        double lora = medianMs(this::baseGemmWithLora, 10, 50);
        row("base GEMM + LoRA r16, unfused (y += s h B^T)", lora, flops / (lora * 1e-3) / 1e12, "TFLOP/s",
                String.format(Locale.ROOT, "LoRA overhead %.1f%% (%.1f us)", 100 * (lora - base) / base, 1000 * (lora - base)));
        double fused = medianMs(this::fusedLoraDense, 10, 50);
        row("base GEMM + LoRA r16, fused (Linear.forward)", fused, flops / (fused * 1e-3) / 1e12, "TFLOP/s",
                String.format(Locale.ROOT, "LoRA overhead %.1f%% (%.1f us; target <= 10%%)", 100 * (fused - base) / base, 1000 * (fused - base)));
        double down = medianMs(this::fusedPartDown, 10, 50), kcat = medianMs(this::fusedPartGemm, 10, 50);
        row("  fused part: h = x A^T into the spare columns", down, 28.3e6 / (down * 1e-3) / 1e9, "GB/s", "x read once");
        row("  fused part: GEMM over K + 16 against [W | s B]", kcat, flops / (kcat * 1e-3) / 1e12, "TFLOP/s",
                String.format(Locale.ROOT, "%.1f us over the K = 3072 GEMM", 1000 * (kcat - base)));
        for (boolean sibling : new boolean[] {true, false}) {
            CublasLt.useSiblingAlgoForOddK(sibling);
            for (int i = 0; i < Fixtures.K_SWEEP.length; i++) {
                int ii = i;
                double tk = medianMs(() -> gemmK(ii), 10, 50);
                row("  GEMM 4608 x 3072 x " + Fixtures.K_SWEEP[i] + (sibling ? " (K-64 algo)" : " (own heuristic)"), tk,
                        2.0 * M * D * Fixtures.K_SWEEP[i] / (tk * 1e-3) / 1e12, "TFLOP/s", "");
            }
            if (!sibling) {
                double kcatOwn = medianMs(this::fusedPartGemm, 10, 50), fusedOwn = medianMs(this::fusedLoraDense, 10, 50);
                row("  fused GEMM over K + 16, heuristic's own pick", kcatOwn, flops / (kcatOwn * 1e-3) / 1e12, "TFLOP/s",
                        String.format(Locale.ROOT, "%.1f us over the K = 3072 GEMM", 1000 * (kcatOwn - base)));
                row("  fused forward, heuristic's own pick for K + 16", fusedOwn, 0, "",
                        String.format(Locale.ROOT, "overhead %.1f%% (%.1f us)", 100 * (fusedOwn - base) / base, 1000 * (fusedOwn - base)));
            }
        }
        CublasLt.useSiblingAlgoForOddK(true);
        double lnBare = medianMs(() -> lnThen(false), 10, 50), lnFused = medianMs(() -> lnThen(true), 10, 50);
        row("LayerNorm+modulate -> base GEMM (model order)", lnBare, 0, "", "");
        row("LayerNorm+modulate -> fused LoRA forward", lnFused, 0, "",
                String.format(Locale.ROOT, "LoRA overhead in place %.1f%% of the GEMM (%.1f us; target <= 10%%)", 100 * (lnFused - lnBare) / base, 1000 * (lnFused - lnBare)));
        row("  host: issuing one fused forward", hostMicros(this::fusedLoraDense, 200) / 1000, 0, "", "wall time per call, GPU behind");
        row("  host: issuing one bare base GEMM", hostMicros(this::baseGemm, 200) / 1000, 0, "", "");
        double nf4Base = medianMs(this::nf4Linear, 10, 50);
        row("NF4 base: dequant [3072, 3072] + GEMM", nf4Base, flops / (nf4Base * 1e-3) / 1e12, "TFLOP/s", "");
        double nf4Fused = medianMs(this::fusedLoraNf4, 10, 50);
        row("NF4 base + LoRA r16, fused (Linear.forward)", nf4Fused, flops / (nf4Fused * 1e-3) / 1e12, "TFLOP/s",
                String.format(Locale.ROOT, "LoRA overhead %.1f%% (%.1f us)", 100 * (nf4Fused - nf4Base) / nf4Base, 1000 * (nf4Fused - nf4Base)));

        double lnBytes = 2.0 * M * D * 2;
        t = medianMs(this::layerNormModulate, 10, 50);
        row("LayerNorm + modulate [4608, 3072] bf16", t, lnBytes / (t * 1e-3) / 1e9, "GB/s",
                String.format(Locale.ROOT, "%.0f%% of copy", 100 * lnBytes / (t * 1e-3) / 1e9 / copyGBs));
        double ropeBytes = 2.0 * M * 3 * D * 2;
        t = medianMs(this::qkNormRope, 10, 50);
        row("QK RMSNorm + RoPE [4608, 9216] bf16, 24 x 128", t, ropeBytes / (t * 1e-3) / 1e9, "GB/s",
                String.format(Locale.ROOT, "%.0f%% of copy", 100 * ropeBytes / (t * 1e-3) / 1e9 / copyGBs));

        for (LinearWeight.Gguf g : new LinearWeight.Gguf[] {f.modQ8, f.modQ4K}) {
            double wBytes = g.blocks().numel();
            for (int rows : new int[] {1, 4}) {
                int rr = rows;
                t = medianMs(() -> ggufGemv(g, rr), 10, 50);
                double old = medianMs(() -> ggufDequantGemm(g, rr), 10, 50);
                row(g.typeName() + " GEMV M=" + rows + " [18432, 3072] (adaLN modulation)", t, wBytes / (t * 1e-3) / 1e9, "GB/s",
                        String.format(Locale.ROOT, "%.0f%% of copy; dequantize + GEMM %.3f ms", 100 * wBytes / (t * 1e-3) / 1e9 / copyGBs, old));
            }
        }
        for (int rows : new int[] {1, 2, 4}) {
            double wBytes = 6.0 * D * D / 2 + 6.0 * D * D / 64 * 4;
            int rr = rows;
            t = medianMs(() -> nf4Gemv(rr), 10, 50);
            row("NF4 GEMV M=" + rows + " [18432, 3072] (adaLN modulation)", t, wBytes / (t * 1e-3) / 1e9, "GB/s",
                    String.format(Locale.ROOT, "weights read: %.0f%% of copy", 100 * wBytes / (t * 1e-3) / 1e9 / copyGBs));
        }

        double attnFlops = 4.0 * HEADS * f.attnLen * f.attnLen * HEAD_DIM;
        t = medianMs(this::ownAttentionForward, 3, 10);
        row("own attention fwd B1 H24 L4608 D128 bf16", t, attnFlops / (t * 1e-3) / 1e12, "TFLOP/s", "cuDNN measured 0.398 ms");
        t = medianMs(this::ownAttentionBackward, 3, 10);
        row("own attention bwd B1 H24 L4608 D128 bf16", t, 2.5 * attnFlops / (t * 1e-3) / 1e12, "TFLOP/s", "cuDNN measured 1.202 ms");
    }

    static void row(String name, double ms, double rate, String unit, String note) {
        System.out.println(String.format(Locale.ROOT, "%-52s %7.3f ms %8.1f %-7s %s", name, ms, rate, unit, note));
    }
}
