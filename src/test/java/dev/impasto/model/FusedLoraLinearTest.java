package dev.impasto.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.quant.BaseFormat;
import dev.impasto.quant.WeightQuantizer;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The fused LoRA forward (input buffer with spare columns: y = [x | h] [W | s B]^T) against the plain sequence
 * (y = x W^T, then y += s h B^T per piece) on the CPU backend in float64: same outputs, same h, same gradients, for
 * dense and quantized bases, pieces that do and do not cover the whole output, with and without dropout.
 */
class FusedLoraLinearTest {
    final Backend be = new CpuBackend();
    static final long IN = 40, OUT = 24, ROWS = 7;
    static final int RANK = 3;

    LinearWeight weight(String format, Random r) {
        double[] w = GradCheck.random(r, (int) (OUT * IN), 0.3);
        if (format.equals("dense")) return new LinearWeight.Dense(be.fromDoubles(w, DType.F64, OUT, IN));
        float[] f = new float[w.length];
        for (int i = 0; i < f.length; i++) f[i] = (float) w[i];
        return WeightQuantizer.quantize(be, f, OUT, IN, BaseFormat.valueOf(format));
    }

    /** A LoRA layer with random non-zero A and B; partial: the pieces cover rows [0, 16) of 24 only. */
    Linear layer(String format, boolean partial, double dropout, long seed) {
        Random r = new Random(seed);
        Tensor bias = be.fromDoubles(GradCheck.random(r, (int) OUT, 1), DType.F64, OUT);
        Linear l = new Linear("double_blocks.0.img_attn.qkv", new BaseLinear(weight(format, r), bias));
        List<LoraGroup.Piece> pieces = partial
                ? List.of(new LoraGroup.Piece("q", 0, 8), new LoraGroup.Piece("k", 8, 16))
                : List.of(new LoraGroup.Piece("q", 0, 8), new LoraGroup.Piece("k", 8, 16), new LoraGroup.Piece("v", 16, 24));
        LoraGroup g = new LoraGroup(be, l.key, pieces, IN, RANK, 5.0, dropout, DType.F64);
        be.copy(g.a, be.fromDoubles(GradCheck.random(r, (int) g.a.numel(), 0.5), DType.F64, g.a.shape()));
        be.copy(g.b, be.fromDoubles(GradCheck.random(r, (int) g.b.numel(), 0.5), DType.F64, g.b.shape()));
        g.syncCompute(be);
        l.lora = g;
        return l;
    }

    @ParameterizedTest
    @CsvSource({"dense,false,0", "dense,true,0", "dense,false,0.25", "NF4,false,0", "NF4,true,0.25", "INT8,true,0", "INT4,false,0"})
    void fusedForwardAndBackwardEqualThePlainSequence(String format, boolean partial, double dropout) {
        Linear plain = layer(format, partial, dropout, 1), fused = layer(format, partial, dropout, 1);
        fused.scratch = new WeightScratch();
        if (format.equals("dense")) assertNotNull(fused.padDenseWeight(be), "a dense base is re-stored with room for s B");
        LoraContext ctx = dropout > 0 ? LoraContext.training(77) : LoraContext.INFERENCE;
        double[] xv = GradCheck.random(new Random(9), (int) (ROWS * IN), 1);
        Tensor x = be.fromDoubles(xv, DType.F64, ROWS, IN);
        try (Scope sc = new Scope(be)) {
            Tensor buf = fused.newInput(sc, DType.F64, ROWS, IN);
            assertEquals(IN + fused.loraWidth(), buf.cols());
            be.copy(fused.inputOf(buf), x);
            be.fill(buf.cols(IN, buf.cols()), Double.NaN); // forward must write h there before anything reads it
            Tensor yPlain = be.empty(DType.F64, ROWS, OUT), yFused = be.empty(DType.F64, ROWS, OUT);
            be.fill(yFused, Double.NaN);
            Tensor hPlain = plain.forward(be, yPlain, x, sc, ctx);
            Tensor hFused = fused.forward(be, yFused, buf, sc, ctx);
            close("y " + format, be.toDoubles(yPlain), be.toDoubles(yFused), 1e-12);
            close("h " + format, be.toDoubles(hPlain), be.toDoubles(hFused), 1e-12);
            assertArrayEqualsExactly(xv, be.toDoubles(fused.inputOf(buf)), "the input columns are left as they were");

            double[] dyv = GradCheck.random(new Random(4), (int) (ROWS * OUT), 1);
            Tensor dy = be.fromDoubles(dyv, DType.F64, ROWS, OUT);
            Tensor dxPlain = be.zeros(DType.F64, ROWS, IN), dxFused = be.zeros(DType.F64, ROWS, IN);
            plain.backward(be, dxPlain, 0, dy, x, hPlain, ctx);
            fused.backward(be, dxFused, 0, dy, buf, hFused, ctx);
            close("dx " + format, be.toDoubles(dxPlain), be.toDoubles(dxFused), 1e-12);
            close("dA " + format, be.toDoubles(plain.lora.gradA), be.toDoubles(fused.lora.gradA), 1e-12);
            close("dB " + format, be.toDoubles(plain.lora.gradB), be.toDoubles(fused.lora.gradB), 1e-12);
            assertTrue(maxAbs(be.toDoubles(fused.lora.gradA)) > 0 && maxAbs(be.toDoubles(fused.lora.gradB)) > 0);

            // [dx | dh] = dy [W | s B] in one product when dx is an input buffer too
            be.fill(fused.lora.gradA, 0);
            be.fill(fused.lora.gradB, 0);
            Tensor dxBuf = fused.newInput(sc, DType.F64, ROWS, IN);
            be.fill(dxBuf, Double.NaN);
            fused.backward(be, dxBuf, 0, dy, buf, hFused, ctx);
            close("dx one-pass " + format, be.toDoubles(dxPlain), be.toDoubles(fused.inputOf(dxBuf)), 1e-12);
            close("dA one-pass " + format, be.toDoubles(plain.lora.gradA), be.toDoubles(fused.lora.gradA), 1e-12);
            close("dB one-pass " + format, be.toDoubles(plain.lora.gradB), be.toDoubles(fused.lora.gradB), 1e-12);
        }
    }

    @Test
    void theStoredSBTailFollowsEveryOptimizerStepAndScaleChange() {
        // bf16 compute with fp32 masters (separate compute copies): the re-stored weight's s B columns are written once
        // per (B, scale) and must be rewritten after syncCompute (an optimizer step) and for another strength
        Random r = new Random(3);
        Tensor w = be.fromDoubles(GradCheck.random(r, (int) (OUT * IN), 0.3), DType.BF16, OUT, IN);
        double[] wd = be.toDoubles(w); // padDenseWeight closes w
        Linear l = new Linear("double_blocks.0.img_attn.qkv", new BaseLinear(new LinearWeight.Dense(w), null));
        LoraGroup g = new LoraGroup(be, l.key, List.of(new LoraGroup.Piece("", 0, OUT)), IN, RANK, 3.0, 0, DType.BF16);
        assertTrue(g.hasComputeCopies());
        be.copy(g.a, be.fromDoubles(GradCheck.random(r, (int) g.a.numel(), 0.5), DType.F32, g.a.shape()));
        l.lora = g;
        assertNotNull(l.padDenseWeight(be));
        double[] xv = GradCheck.random(new Random(9), (int) (ROWS * IN), 1);
        try (Scope sc = new Scope(be)) {
            Tensor buf = l.newInput(sc, DType.BF16, ROWS, IN);
            double[] last = null;
            for (int step = 0; step < 4; step++) {
                if (step != 2) { // step 2 changes only the strength
                    be.copy(g.b, be.fromDoubles(GradCheck.random(r, (int) g.b.numel(), 0.5), DType.F32, g.b.shape()));
                    g.syncCompute(be);
                }
                LoraContext ctx = new LoraContext(step == 2 ? 0.5 : 1, false, 0);
                be.copy(l.inputOf(buf), be.fromDoubles(xv, DType.BF16, ROWS, IN));
                Tensor y = be.empty(DType.BF16, ROWS, OUT);
                l.forward(be, y, buf, null, ctx);
                // reference in float64 from the same bf16 values: x W^T + s (x A^T) B^T
                double[] x = be.toDoubles(l.inputOf(buf)), a = be.toDoubles(g.computeA), b = be.toDoubles(g.computeB);
                double s = g.scale() * ctx.loraScale();
                double[] want = new double[(int) (ROWS * OUT)];
                for (int i = 0; i < ROWS; i++) {
                    double[] h = new double[RANK];
                    for (int j = 0; j < RANK; j++)
                        for (int c = 0; c < IN; c++) h[j] += x[(int) (i * IN + c)] * a[(int) (j * IN + c)];
                    for (int o = 0; o < OUT; o++) {
                        double v = 0;
                        for (int c = 0; c < IN; c++) v += x[(int) (i * IN + c)] * wd[(int) (o * IN + c)];
                        for (int j = 0; j < RANK; j++) v += s * DType.BF16.round(h[j]) * b[o * RANK + j];
                        want[(int) (i * OUT + o)] = v;
                    }
                }
                double[] got = be.toDoubles(y);
                close("y after step " + step, want, got, 2e-2);
                if (last != null) assertTrue(GradCheck.relL2(got, last) > 0.05, "step " + step + " must see the new B or strength");
                last = got;
            }
        }
    }

    @Test
    void onlyLayersWhoseInputTheBlocksWidenTakeTheFusedPathAndWidthsStayAligned() {
        Linear qkv = layer("dense", false, 0, 3);   // 3 pieces x rank 3 = 9 -> 16 spare columns
        assertEquals(16, qkv.loraWidth());
        Linear proj = new Linear("double_blocks.0.img_attn.proj", new BaseLinear(new LinearWeight.Dense(be.zeros(DType.F64, OUT, IN)), null));
        proj.lora = new LoraGroup(be, proj.key, List.of(new LoraGroup.Piece("", 0, OUT)), IN, RANK, 3, 0, DType.F64);
        assertEquals(0, proj.loraWidth(), "proj's input comes from attention: plain sequence");
        assertNull(proj.padDenseWeight(be), "its weight stays as loaded");
    }

    @Test
    void paddedDenseWeightKeepsTheBaseAndRefusesOtherWidths() {
        Linear l = layer("dense", false, 0, 2);
        double[] before = be.toDoubles(l.base().weight() instanceof LinearWeight.Dense d ? d.w() : null);
        Tensor owner = l.padDenseWeight(be);
        assertNotNull(owner);
        assertEquals(IN + l.loraWidth(), owner.cols());
        assertNull(l.padDenseWeight(be), "already padded for this width");
        LinearWeight.Dense d = (LinearWeight.Dense) l.base().weight();
        assertEquals(IN, d.w().cols());
        assertArrayEqualsExactly(before, be.toDoubles(d.w()), "the base weight is unchanged");
        Tensor wrong = be.empty(DType.F64, ROWS, IN + 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> l.forward(be, be.empty(DType.F64, ROWS, OUT), wrong, null, LoraContext.INFERENCE));
        assertTrue(e.getMessage().contains("must have " + IN + " columns"), e.getMessage());
    }

    static void close(String what, double[] want, double[] got, double tol) {
        double e = GradCheck.relL2(got, want);
        assertTrue(e <= tol, what + ": relative L2 error " + e + " > " + tol);
    }

    static double maxAbs(double[] v) {
        double m = 0;
        for (double x : v) m = Math.max(m, Math.abs(x));
        return m;
    }

    static void assertArrayEqualsExactly(double[] want, double[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 0, what + " at " + i);
    }
}
