package dev.impasto.model;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.impasto.cuda.Cuda;
import dev.impasto.quant.BaseFormat;
import dev.impasto.quant.WeightQuantizer;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import dev.impasto.tensor.cuda.CudaBackend;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The fused LoRA forward on the GPU (bf16, [W | s B] in one cuBLASLt product; quantized bases dequantized into the
 * left columns of the scratch) against the CPU backend's plain sequence in float32 on the same bf16-rounded values:
 * y, h, dx, dA, dB at a FLUX width (K 3072) with q|k|v pieces, some covering part of the output.
 */
@Tag("gpu")
class FusedLoraLinearGpuTest {
    static CudaBackend gpu;
    static final CpuBackend cpu = new CpuBackend();
    static final long IN = 3072, OUT = 768, ROWS = 301;
    static final int RANK = 16;

    @BeforeAll
    static void open() {
        assumeTrue(Cuda.available(), "no CUDA GPU: GPU tests skipped");
        gpu = CudaBackend.open(0);
    }

    @AfterAll
    static void closeAll() {
        if (gpu != null) gpu.close();
    }

    static double[] bf16(double[] v) {
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) r[i] = DType.BF16.round(v[i]);
        return r;
    }

    /** A base weight [out, in] of w: dense in t, or quantized from the same values ("NF4", "INT8", ...). */
    static LinearWeight weight(Backend be, DType t, String format, double[] w, long out, long in) {
        if (format.equals("dense")) return new LinearWeight.Dense(be.fromDoubles(w, t, out, in));
        float[] f = new float[w.length];
        for (int i = 0; i < f.length; i++) f[i] = (float) w[i];
        return WeightQuantizer.quantize(be, f, out, in, BaseFormat.valueOf(format));
    }

    Linear layer(Backend be, DType t, String format, boolean partial, double[] w, double[] bias, double[] a, double[] b) {
        Linear l = new Linear("double_blocks.0.img_attn.qkv", new BaseLinear(weight(be, t, format, w, OUT, IN), be.fromDoubles(bias, t, OUT)));
        List<LoraGroup.Piece> pieces = partial
                ? List.of(new LoraGroup.Piece("q", 0, 256), new LoraGroup.Piece("v", 512, 768))
                : List.of(new LoraGroup.Piece("q", 0, 256), new LoraGroup.Piece("k", 256, 512), new LoraGroup.Piece("v", 512, 768));
        LoraGroup g = new LoraGroup(be, l.key, pieces, IN, RANK, 8.0, 0, t);
        be.copy(g.a, be.fromDoubles(java.util.Arrays.copyOf(a, (int) g.a.numel()), DType.F32, g.a.shape()));
        be.copy(g.b, be.fromDoubles(java.util.Arrays.copyOf(b, (int) g.b.numel()), DType.F32, g.b.shape()));
        g.syncCompute(be);
        l.attachLora(be, g, new WeightScratch());
        return l;
    }

    @ParameterizedTest
    @CsvSource({"dense,false", "dense,true", "NF4,false", "NF4_DQ,true", "INT8,false", "INT4,true"})
    void fusedGpuForwardAndBackwardMatchTheCpuSequence(String format, boolean partial) {
        Random r = new Random(format.hashCode() * 31L + (partial ? 1 : 0));
        double[] w = bf16(GradCheck.random(r, (int) (OUT * IN), 0.03));
        double[] bias = bf16(GradCheck.random(r, (int) OUT, 0.5));
        double[] a = bf16(GradCheck.random(r, 3 * RANK * (int) IN, 0.02));
        double[] b = bf16(GradCheck.random(r, (int) OUT * RANK, 0.3));
        double[] x = bf16(GradCheck.random(r, (int) (ROWS * IN), 1));
        double[] dy = bf16(GradCheck.random(r, (int) (ROWS * OUT), 1));
        Linear lg = layer(gpu, DType.BF16, format, partial, w, bias, a, b);
        Linear lc = layer(cpu, DType.F32, format, partial, w, bias, a, b);
        try (Scope sg = new Scope(gpu); Scope scc = new Scope(cpu)) {
            Tensor buf = lg.newInput(sg, DType.BF16, ROWS, IN);
            gpu.fill(buf, Double.NaN);
            gpu.copy(lg.inputOf(buf), gpu.fromDoubles(x, DType.BF16, ROWS, IN));
            Tensor yg = sg.empty(DType.BF16, ROWS, OUT);
            gpu.fill(yg, Double.NaN);
            Tensor hg = lg.forward(gpu, yg, buf, sg, LoraContext.INFERENCE);
            Tensor xc = cpu.fromDoubles(x, DType.F32, ROWS, IN), yc = scc.empty(DType.F32, ROWS, OUT);
            Tensor hc = lc.forward(cpu, yc, xc, scc, LoraContext.INFERENCE);
            close(format + " y", cpu.toDoubles(yc), gpu.toDoubles(yg), 1e-2);
            close(format + " h", cpu.toDoubles(hc), gpu.toDoubles(hg), 1e-2);

            Tensor dxg = sg.empty(DType.BF16, ROWS, IN), dxc = scc.empty(DType.F32, ROWS, IN);
            gpu.fill(dxg, Double.NaN);
            lg.backward(gpu, dxg, 0, gpu.fromDoubles(dy, DType.BF16, ROWS, OUT), buf, hg, LoraContext.INFERENCE);
            lc.backward(cpu, dxc, 0, cpu.fromDoubles(dy, DType.F32, ROWS, OUT), xc, hc, LoraContext.INFERENCE);
            close(format + " dx", cpu.toDoubles(dxc), gpu.toDoubles(dxg), 1e-2);
            close(format + " dA", cpu.toDoubles(lc.lora.gradA), gpu.toDoubles(lg.lora.gradA), 1e-2);
            close(format + " dB", cpu.toDoubles(lc.lora.gradB), gpu.toDoubles(lg.lora.gradB), 1e-2);
            // [dx | dh] = dy [W | s B] in one product
            gpu.fill(lg.lora.gradA, 0);
            gpu.fill(lg.lora.gradB, 0);
            Tensor dxBuf = lg.newInput(sg, DType.BF16, ROWS, IN);
            gpu.fill(dxBuf, Double.NaN);
            lg.backward(gpu, dxBuf, 0, gpu.fromDoubles(dy, DType.BF16, ROWS, OUT), buf, hg, LoraContext.INFERENCE);
            close(format + " dx one-pass", cpu.toDoubles(dxc), gpu.toDoubles(lg.inputOf(dxBuf)), 1e-2);
            close(format + " dA one-pass", cpu.toDoubles(lc.lora.gradA), gpu.toDoubles(lg.lora.gradA), 1e-2);
            close(format + " dB one-pass", cpu.toDoubles(lc.lora.gradB), gpu.toDoubles(lg.lora.gradB), 1e-2);
        } finally {
            lg.lora.close();
            lg.base().close();
            if (lg.scratch != null) lg.scratch.close();
        }
    }

    /**
     * At FLUX's size (4608 tokens, 3072 x 3072, rank 16) for a dense bf16 and an NF4 base: the fused forward's output and
     * the one-pass input gradient on 9 sampled rows (first, last, odd ones between) against the CPU on those rows.
     */
    @ParameterizedTest
    @CsvSource({"dense", "NF4"})
    void fusedAtFluxSizeMatchesTheCpuOnSampledRows(String format) {
        long rows = 4608, d = 3072;
        Random r = new Random(format.hashCode());
        double[] w = bf16(GradCheck.random(r, (int) (d * d), 0.02));
        double[] bias = bf16(GradCheck.random(r, (int) d, 0.5));
        double[] a = bf16(GradCheck.random(r, RANK * (int) d, 0.02));
        double[] b = bf16(GradCheck.random(r, (int) d * RANK, 0.3));
        Linear lg = flux(gpu, DType.BF16, format, w, bias, a, b, d), lc = flux(cpu, DType.F32, format, w, bias, a, b, d);
        int[] sample = {0, 1, 777, 2047, 2048, 3001, 4095, 4600, 4607};
        try (Scope sg = new Scope(gpu); Scope scc = new Scope(cpu)) {
            Tensor buf = lg.newInput(sg, DType.BF16, rows, d);
            gpu.randn(buf, 5);
            Tensor yg = sg.empty(DType.BF16, rows, d);
            gpu.fill(yg, Double.NaN);
            Tensor hg = lg.forward(gpu, yg, buf, sg, LoraContext.INFERENCE);
            Tensor dy = sg.empty(DType.BF16, rows, d);
            gpu.randn(dy, 6);
            Tensor dxBuf = lg.newInput(sg, DType.BF16, rows, d);
            gpu.fill(dxBuf, Double.NaN);
            lg.backward(gpu, dxBuf, 0, dy, buf, hg, LoraContext.INFERENCE);
            double[] xs = rowsOf(lg.inputOf(buf), sample), dys = rowsOf(dy, sample);
            Tensor xc = cpu.fromDoubles(xs, DType.F32, sample.length, d), yc = scc.empty(DType.F32, sample.length, d);
            Tensor hc = lc.forward(cpu, yc, xc, scc, LoraContext.INFERENCE);
            close(format + " y at 4608 x 3072 (sampled rows)", cpu.toDoubles(yc), rowsOf(yg, sample), 1e-2);
            Tensor dxc = scc.empty(DType.F32, sample.length, d);
            lc.backward(cpu, dxc, 0, cpu.fromDoubles(dys, DType.F32, sample.length, d), xc, hc, LoraContext.INFERENCE);
            close(format + " dx at 4608 x 3072 (sampled rows)", cpu.toDoubles(dxc), rowsOf(lg.inputOf(dxBuf), sample), 1e-2);
        } finally {
            lg.lora.close();
            lg.base().close();
            lg.scratch.close();
        }
    }

    Linear flux(Backend be, DType t, String format, double[] w, double[] bias, double[] a, double[] b, long d) {
        Linear l = new Linear("double_blocks.0.img_mlp.0", new BaseLinear(weight(be, t, format, w, d, d), be.fromDoubles(bias, t, d)));
        LoraGroup g = new LoraGroup(be, l.key, List.of(new LoraGroup.Piece("", 0, d)), d, RANK, 16.0, 0, t);
        be.copy(g.a, be.fromDoubles(a, DType.F32, g.a.shape()));
        be.copy(g.b, be.fromDoubles(b, DType.F32, g.b.shape()));
        g.syncCompute(be);
        l.attachLora(be, g, new WeightScratch());
        return l;
    }

    /** The given rows of a GPU matrix, as doubles. */
    static double[] rowsOf(Tensor t, int[] rows) {
        Tensor m = t.matrix();
        long cols = m.cols();
        double[] out = new double[(int) (rows.length * cols)];
        for (int i = 0; i < rows.length; i++)
            System.arraycopy(gpu.toDoubles(m.rows(rows[i], rows[i] + 1)), 0, out, (int) (i * cols), (int) cols);
        return out;
    }

    static void close(String what, double[] want, double[] got, double tol) {
        double e = GradCheck.relL2(got, want);
        assertTrue(e <= tol, what + ": relative L2 error " + e + " > " + tol);
    }
}
