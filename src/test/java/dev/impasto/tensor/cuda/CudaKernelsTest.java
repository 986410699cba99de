package dev.impasto.tensor.cuda;

import static dev.impasto.tensor.DType.BF16;
import static dev.impasto.tensor.DType.F16;
import static dev.impasto.tensor.DType.F32;
import static dev.impasto.tensor.cuda.GpuCheck.assertAbs;
import static dev.impasto.tensor.cuda.GpuCheck.assertClose;
import static dev.impasto.tensor.cuda.GpuCheck.gauss;
import static dev.impasto.tensor.cuda.GpuCheck.relL2;
import static dev.impasto.tensor.cuda.GpuCheck.tol;
import static dev.impasto.tensor.cuda.GpuCheck.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.impasto.cuda.Cuda;
import dev.impasto.quant.BaseFormat;
import dev.impasto.quant.WeightQuantizer;
import dev.impasto.tensor.AdamWConfig;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * Every CUDA backend op against the CPU backend (the oracle) on fresh random non-zero inputs: GPU outputs are poisoned
 * (NaN) or, for strided views, embedded in a parent whose other columns must stay untouched; shapes include odd sizes,
 * column views with row strides, batch 1 and 3, and FLUX sizes. Tolerances (relative L2): fp32 1e-5, bf16 1e-2,
 * f16 2e-3, with both backends fed the same dtype-rounded inputs. Skipped when no CUDA GPU is present.
 *
 * <p>Run on the GPU machine with the JUnit console launcher and {@code --include-tag gpu}; the whole class takes well
 * under two minutes on an H100 (FLUX-size attention is checked against sampled CPU rows, not a full CPU run).
 */
@Tag("gpu")
class CudaKernelsTest {
    static CudaBackend gpu;
    static CpuBackend cpu;
    static final DType[] TYPES = {F32, BF16, F16};

    final List<Tensor> owned = new ArrayList<>();
    Random rnd;

    @BeforeAll
    static void open() {
        assumeTrue(Cuda.available(), "no CUDA GPU: GPU tests skipped");
        gpu = CudaBackend.open(0);
        cpu = new CpuBackend();
    }

    @AfterAll
    static void closeAll() {
        if (gpu != null) gpu.close();
    }

    @org.junit.jupiter.api.BeforeEach
    void seed(TestInfo info) {
        rnd = new Random(info.getDisplayName().hashCode() * 31L + 17);
    }

    @AfterEach
    void release() {
        gpu.synchronize();
        for (Tensor t : owned) t.close();
        owned.clear();
    }

    // ------------------------------------------------------------------------------------------ helpers

    /** The same tensor (or view) on both backends. */
    record Both(Tensor g, Tensor c) {
        Tensor on(boolean gpuSide) {
            return gpuSide ? g : c;
        }

        Both cols(long c0, long c1) {
            return new Both(g.cols(c0, c1), c.cols(c0, c1));
        }

        Both rows(long r0, long r1) {
            return new Both(g.rows(r0, r1), c.rows(r0, r1));
        }

        Both chunk(int i, int n) {
            return new Both(g.chunk(i, n), c.chunk(i, n));
        }

        Both reshape(long... s) {
            return new Both(g.reshape(s), c.reshape(s));
        }

        DType dtype() {
            return c.dtype();
        }
    }

    /** An output: the view ops write, inside a parent whose other columns must stay as they were. */
    record Out(Both parent, Both view, long pad) {}

    @FunctionalInterface
    interface OnBoth {
        void run(Backend be, boolean gpuSide);
    }

    static void run(OnBoth op) {
        op.run(gpu, true);
        op.run(cpu, false);
    }

    Tensor own(Tensor t) {
        owned.add(t);
        return t;
    }

    Both from(DType t, double[] v, long... shape) {
        return new Both(own(gpu.fromDoubles(v, t, shape)), own(cpu.fromDoubles(v, t, shape)));
    }

    Both randn(DType t, double scale, long... shape) {
        long n = 1;
        for (long d : shape) n *= d;
        return from(t, gauss(rnd, (int) n, scale), shape);
    }

    /** An input [rows, cols]: contiguous when pad == 0, else columns [pad, pad + cols) of a [rows, cols + 2 pad] parent. */
    Both input(DType t, long rows, long cols, long pad, double scale) {
        if (pad == 0) return randn(t, scale, rows, cols);
        return randn(t, scale, rows, cols + 2 * pad).cols(pad, pad + cols);
    }

    /** A GPU tensor filled with NaN and a CPU tensor of zeros: every element must be written. */
    Both poisoned(DType t, long... shape) {
        Tensor g = own(gpu.empty(t, shape));
        gpu.fill(g, Double.NaN);
        return new Both(g, own(cpu.zeros(t, shape)));
    }

    /** An output [rows, cols]: poisoned when pad == 0, else a view of a random parent (same values on both sides). */
    Out output(DType t, long rows, long cols, long pad) {
        if (pad == 0) {
            Both p = poisoned(t, rows, cols);
            return new Out(p, p, 0);
        }
        Both p = randn(t, 1, rows, cols + 2 * pad);
        return new Out(p, p.cols(pad, pad + cols), pad);
    }

    /** The view against the CPU (tolerance) and the parent's other columns unchanged (exactly). */
    static void check(String what, Out o, double tol) {
        assertClose(what, gpu, o.view.g, cpu, o.view.c, tol);
        if (o.pad > 0) {
            double[] g = gpu.toDoubles(o.parent.g), c = cpu.toDoubles(o.parent.c);
            long w = o.parent.c.cols(), cols = o.view.c.cols();
            for (int i = 0; i < g.length; i++) {
                long col = i % w;
                if (col >= o.pad && col < o.pad + cols) continue;
                if (Double.doubleToLongBits(g[i]) != Double.doubleToLongBits(c[i]))
                    fail(what + ": element (" + i / w + ", " + col + ") outside the output view [" + o.pad + ", " + (o.pad + cols)
                            + ") changed: gpu " + g[i] + ", expected " + c[i]);
            }
        }
    }

    static void check(String what, Both b, double tol) {
        assertClose(what, gpu, b.g, cpu, b.c, tol);
    }

    /** [rows, cols, pad]: pad > 0 = a column view at offset pad (odd offsets are unaligned, 8 keeps 16-byte alignment). */
    static final long[][] SHAPES = {{37, 61, 0}, {3, 129, 5}, {64, 3072, 0}, {7, 64, 8}, {1, 1, 0}, {5, 24, 3}, {2, 1000, 8}};

    static String shape(long[] s, DType t) {
        return t + "[" + s[0] + ", " + s[1] + "]" + (s[2] > 0 ? " view@" + s[2] : "");
    }

    // ------------------------------------------------------------------------------------------ memory, conversion

    @Test
    void copyConvertsEveryPairOfTypesExactly() {
        for (DType src : TYPES)
            for (DType dst : TYPES)
                for (long[] s : SHAPES) {
                    Both x = input(src, s[0], s[1], s[2] == 8 ? 8 : s[2] + 1, 3);
                    Out o = output(dst, s[0], s[1], s[2]);
                    run((be, g) -> be.copy(o.view.on(g), x.on(g)));
                    check("copy " + src + "->" + shape(s, dst), o, 0);
                }
    }

    @Test
    void fillWritesOnlyTheView() {
        for (DType t : TYPES)
            for (long[] s : SHAPES) {
                Out o = output(t, s[0], s[1], s[2]);
                run((be, g) -> be.fill(o.view.on(g), 0.3712));
                check("fill " + shape(s, t), o, 0);
                run((be, g) -> be.fill(o.view.on(g), 0));
                check("fill 0 " + shape(s, t), o, 0);
            }
    }

    @Test
    void toDoublesOfAStridedViewGathersRows() {
        Both p = randn(BF16, 1, 9, 40);
        Both v = p.cols(3, 20).rows(2, 7);
        assertClose("toDoubles view", gpu.toDoubles(v.g), cpu.toDoubles(v.c), 17, 0);
    }

    // ------------------------------------------------------------------------------------------ elementwise

    @Test
    void binaryAndUnaryOps() {
        for (DType t : TYPES)
            for (long[] s : SHAPES) {
                String sh = shape(s, t);
                Both a = input(t, s[0], s[1], s[2], 1.5), b = input(t, s[0], s[1], s[2] == 0 ? 0 : s[2] + 2, 1.5);
                for (String op : new String[] {"add", "mul", "gelu", "silu", "axpby0", "axpby1"}) {
                    Out o = op.equals("axpby1") ? new Out(input(t, s[0], s[1], 0, 1), null, 0) : output(t, s[0], s[1], s[2]);
                    Out out = o.view == null ? new Out(o.parent, o.parent, 0) : o;
                    run((be, g) -> {
                        Tensor y = out.view.on(g);
                        switch (op) {
                            case "add" -> be.add(y, a.on(g), b.on(g));
                            case "mul" -> be.mul(y, a.on(g), b.on(g));
                            case "gelu" -> be.gelu(y, a.on(g));
                            case "silu" -> be.silu(y, a.on(g));
                            case "axpby0" -> be.axpby(y, -0.75, a.on(g), 0); // beta 0: the NaN poison must not be read
                            default -> be.axpby(y, -0.75, a.on(g), 0.5);
                        }
                    });
                    check(op + " " + sh, out, tol(t));
                }
            }
    }

    @Test
    void activationBackwardWithBetaAndInPlace() {
        for (DType t : TYPES)
            for (long[] s : SHAPES) {
                String sh = shape(s, t);
                Both x = input(t, s[0], s[1], s[2], 2), dy = input(t, s[0], s[1], s[2], 1);
                for (boolean gelu : new boolean[] {true, false}) {
                    Out o = output(t, s[0], s[1], s[2]);
                    run((be, g) -> {
                        if (gelu) be.geluBackward(o.view.on(g), dy.on(g), x.on(g), 0);
                        else be.siluBackward(o.view.on(g), dy.on(g), x.on(g), 0);
                    });
                    check((gelu ? "gelu" : "silu") + "Backward beta 0 " + sh, o, tol(t));
                    Both acc = input(t, s[0], s[1], 0, 1);
                    run((be, g) -> {
                        if (gelu) be.geluBackward(acc.on(g), dy.on(g), x.on(g), 1);
                        else be.siluBackward(acc.on(g), dy.on(g), x.on(g), 1);
                    });
                    check((gelu ? "gelu" : "silu") + "Backward beta 1 " + sh, acc, tol(t));
                    // in place, as the model calls it: dx == dy
                    Both inplace = input(t, s[0], s[1], 0, 1), xc = input(t, s[0], s[1], 0, 2);
                    run((be, g) -> {
                        if (gelu) be.geluBackward(inplace.on(g), inplace.on(g), xc.on(g), 0);
                        else be.siluBackward(inplace.on(g), inplace.on(g), xc.on(g), 0);
                    });
                    check((gelu ? "gelu" : "silu") + "Backward in place " + sh, inplace, tol(t));
                }
                Both h = input(t, s[0], s[1], 0, 2);
                run((be, g) -> be.silu(h.on(g), h.on(g)));
                check("silu in place " + sh, h, tol(t));
            }
    }

    // ------------------------------------------------------------------------------------------ per-batch ops

    @Test
    void gatedResidualAndBackward() {
        long[][] cases = {{1, 13, 61}, {3, 13, 64}, {3, 5, 129}, {1, 4608, 3072}};
        for (DType t : new DType[] {F32, BF16}) {
            for (long[] c : cases) {
                if (c[1] == 4608 && t != BF16) continue;
                long b = c[0], l = c[1], d = c[2];
                String sh = t + " B" + b + " L" + l + " D" + d;
                Both mod = randn(t, 0.5, b, 6 * d);
                Both gate = mod.chunk(2, 6);
                Both x = randn(t, 1, b * l, d), y = input(t, b * l, d, d == 3072 ? 0 : 8, 1);
                run((be, g) -> be.gatedResidual(x.on(g), gate.on(g), y.on(g)));
                check("gatedResidual " + sh, x, tol(t));

                Both dx = input(t, b * l, d, d == 3072 ? 0 : 3, 1);
                Out dy = output(t, b * l, d, 0);
                Both dmod = randn(t, 1, b, 6 * d);
                Both dgate = dmod.chunk(5, 6);
                run((be, g) -> be.gatedResidualBackward(dy.view.on(g), dgate.on(g), dx.on(g), gate.on(g), y.on(g), 0));
                check("gatedResidualBackward dy " + sh, dy, tol(t));
                check("gatedResidualBackward dgate (column sums) " + sh, dmod, tol(t));
                Both dyAcc = randn(t, 1, b * l, d);
                run((be, g) -> be.gatedResidualBackward(dyAcc.on(g), null, dx.on(g), gate.on(g), y.on(g), 0.5));
                check("gatedResidualBackward dy beta 0.5 " + sh, dyAcc, tol(t));
            }
        }
    }

    @Test
    void flowMatchMixConcatSplit() {
        for (DType t : new DType[] {F32, BF16, F16}) {
            for (long b : new long[] {1, 3}) {
                for (long d : new long[] {61, 64}) {
                    String sh = t + " B" + b + " D" + d;
                    long l = 7;
                    Both x0 = input(t, b * l, d, 0, 1), noise = input(t, b * l, d, 5, 1);
                    Both ts = from(F32, uniform(rnd, (int) b, 0.05, 0.95), b);
                    Out xt = output(t, b * l, d, 8), target = output(t, b * l, d, 0);
                    run((be, g) -> be.flowMatchMix(xt.view.on(g), target.view.on(g), x0.on(g), noise.on(g), ts.on(g)));
                    check("flowMatchMix xt " + sh, xt, tol(t));
                    check("flowMatchMix target " + sh, target, tol(t));

                    long la = 5, lb = 7;
                    Both a = input(t, b * la, d, 3, 1), bb = input(t, b * lb, d, 0, 1);
                    Out whole = output(t, b * (la + lb), d, 8);
                    run((be, g) -> be.concatSeq(whole.view.on(g), a.on(g), bb.on(g), (int) b));
                    check("concatSeq " + sh, whole, 0);
                    Out pa = output(t, b * la, d, 0), pb = output(t, b * lb, d, 3);
                    run((be, g) -> be.splitSeq(pa.view.on(g), pb.view.on(g), whole.view.on(g), (int) b));
                    check("splitSeq a " + sh, pa, 0);
                    check("splitSeq b " + sh, pb, 0);
                }
            }
        }
    }

    @Test
    void timestepEmbedding() {
        for (DType t : TYPES)
            for (long dim : new long[] {256, 7, 64}) {
                long b = 3;
                Both ts = from(F32, new double[] {0.0, 0.37, 1.0}, b);
                Out o = output(t, b, dim, dim == 64 ? 8 : 0);
                run((be, g) -> be.timestepEmbedding(o.view.on(g), ts.on(g), 1000, 10_000));
                check("timestepEmbedding " + t + " dim " + dim, o, tol(t));
            }
    }

    // ------------------------------------------------------------------------------------------ reductions, optimizer

    @Test
    void mseLossAndGradient() {
        for (DType t : TYPES)
            for (long[] s : SHAPES) {
                String sh = shape(s, t);
                Both p = input(t, s[0], s[1], s[2], 1), tg = input(t, s[0], s[1], 0, 1);
                Both loss = poisoned(F32, 1);
                Out grad = output(t, s[0], s[1], s[2]);
                run((be, g) -> be.mseLoss(loss.on(g), grad.view.on(g), p.on(g), tg.on(g), 0.5));
                check("mseLoss value " + sh, loss, 1e-5);
                check("mseLoss grad " + sh, grad, tol(t));
                Both loss2 = poisoned(F32, 1);
                run((be, g) -> be.mseLoss(loss2.on(g), null, p.on(g), tg.on(g), 1));
                check("mseLoss without grad " + sh, loss2, 1e-5);
            }
    }

    @Test
    void sumOfSquaresOverSeveralTensors() {
        Both a = input(F32, 37, 61, 0, 1), b = input(BF16, 3, 129, 5, 2), c = input(F32, 1, 4096, 0, 0.1), d = input(F16, 64, 3072, 0, 1);
        Both out = poisoned(F32, 1);
        run((be, g) -> be.sumOfSquares(out.on(g), List.of(a.on(g), b.on(g), c.on(g), d.on(g))));
        check("sumOfSquares", out, 1e-5);
    }

    @Test
    void hasNonFiniteSeesOnlyTheView() {
        for (DType t : TYPES) {
            double[] v = gauss(rnd, 9 * 40, 1);
            v[2 * 40 + 1] = Double.NaN;          // outside the view (col 1)
            v[3 * 40 + 38] = Double.POSITIVE_INFINITY; // outside the view (col 38)
            Both p = from(t, v, 9, 40);
            Both view = p.cols(3, 30);
            Both other = input(t, 64, 3072, 0, 1);
            assertFalse(gpu.hasNonFinite(List.of(view.g, other.g)), t + ": non-finite values outside a column view were reported");
            double[] w = v.clone();
            w[5 * 40 + 29] = Double.NaN;         // inside, last column of the view
            Both p2 = from(t, w, 9, 40);
            assertTrue(gpu.hasNonFinite(List.of(other.g, p2.cols(3, 30).g)), t + ": NaN in the last column of a view was missed");
            double[] big = gauss(rnd, 64 * 3072, 1);
            big[64 * 3072 - 1] = Double.NEGATIVE_INFINITY;
            Both b2 = from(t, big, 64, 3072);
            assertTrue(gpu.hasNonFinite(List.of(b2.g)), t + ": -inf in the last element was missed");
            assertEquals(cpu.hasNonFinite(List.of(view.c)), gpu.hasNonFinite(List.of(view.g)));
        }
    }

    @Test
    void adamwMatchesCpuWithAndWithoutClipping() {
        AdamWConfig cfg = AdamWConfig.defaults();
        for (double normSq : new double[] {-1, 16, 0.25}) {
            Both p = randn(F32, 1, 37, 61), gr = randn(F32, 1, 37, 61), m = randn(F32, 0.01, 37, 61);
            Both v = from(F32, uniform(rnd, 37 * 61, 1e-6, 1e-3), 37, 61);
            // the second tensor spans three work items of the multi-tensor kernel (65536 elements each)
            int big = 3 * 65536 - 77;
            Both p2 = randn(F32, 1, big), g2 = randn(F32, 1, big), m2 = randn(F32, 0.01, big);
            Both v2 = from(F32, uniform(rnd, big, 1e-6, 1e-3), big);
            Both ns = normSq < 0 ? null : from(F32, new double[] {normSq}, 1);
            run((be, g) -> be.adamw(List.of(p.on(g), p2.on(g)), List.of(gr.on(g), g2.on(g)), List.of(m.on(g), m2.on(g)), List.of(v.on(g), v2.on(g)),
                    cfg, 3, 1e-3, ns == null ? null : ns.on(g), 0.5));
            String w = "adamw gradNormSq " + normSq;
            check(w + " params", p, 1e-6);
            check(w + " m", m, 1e-6);
            check(w + " v", v, 1e-6);
            check(w + " params (2nd tensor)", p2, 1e-6);
            check(w + " v (2nd tensor)", v2, 1e-6);
        }
    }

    // ------------------------------------------------------------------------------------------ random numbers

    @Test
    void randnAndRandMatchCpuPhilox() {
        long seed = 0x5eed_1234_abcdL;
        for (long[] s : new long[][] {{37, 61, 0}, {5, 24, 3}, {1, 7, 0}, {256, 768, 0}}) {
            Out n = output(F32, s[0], s[1], s[2]);
            run((be, g) -> be.randn(n.view.on(g), seed));
            assertAbs("randn F32 " + Arrays.toString(s), gpu.toDoubles(n.view.g), cpu.toDoubles(n.view.c), 1e-5);
            check("randn F32 (padding) " + Arrays.toString(s), n, 1e-6);
            Out u = output(F32, s[0], s[1], s[2]);
            run((be, g) -> be.rand(u.view.on(g), seed + 1));
            assertAbs("rand F32 (exact) " + Arrays.toString(s), gpu.toDoubles(u.view.g), cpu.toDoubles(u.view.c), 0);
            check("rand (padding) " + Arrays.toString(s), u, 0);
        }
        Both nb = poisoned(BF16, 64, 3072);
        run((be, g) -> be.randn(nb.on(g), 42));
        double rel = relL2(gpu.toDoubles(nb.g), cpu.toDoubles(nb.c));
        assertTrue(rel < 1e-3, "randn BF16 [64, 3072]: relative L2 " + rel + " vs CPU (rounding ties only expected)");
        double[] z = gpu.toDoubles(nb.g);
        double mean = Arrays.stream(z).average().orElseThrow(), var = Arrays.stream(z).map(x -> (x - mean) * (x - mean)).sum() / z.length;
        assertTrue(Math.abs(mean) < 0.01 && Math.abs(var - 1) < 0.02, "randn moments: mean " + mean + ", variance " + var);
    }

    @Test
    void dropoutMatchesCpuMaskAndRunsInPlace() {
        for (DType t : TYPES)
            for (long[] s : SHAPES) {
                if (s[0] * s[1] < 8) continue;
                Both x = input(t, s[0], s[1], s[2], 1);
                Out o = output(t, s[0], s[1], s[2]);
                run((be, g) -> be.dropout(o.view.on(g), x.on(g), 0.25, 77));
                check("dropout p 0.25 " + shape(s, t), o, tol(t));
                Both y = input(t, s[0], s[1], 0, 1);
                run((be, g) -> be.dropout(y.on(g), y.on(g), 0.5, 78));
                check("dropout in place " + shape(s, t), y, tol(t));
                Out z = output(t, s[0], s[1], 0);
                run((be, g) -> be.dropout(z.view.on(g), x.on(g), 0, 79));
                check("dropout p 0 " + shape(s, t), z, 0);
            }
    }

    // ------------------------------------------------------------------------------------------ layer norm + modulation

    /** (B, L, D, dtype, mode): mode 0 = no modulation, 1 = shift + scale chunks of a [B, 6D] tensor, 2 = scale only. */
    static final Object[][] LN_CASES = {
        {1, 37, 61, F32, 0}, {3, 13, 64, BF16, 1}, {3, 13, 64, F32, 1}, {3, 11, 61, F16, 2}, {1, 64, 3072, F32, 1},
        {2, 9, 4100, BF16, 1}, {1, 4608, 3072, BF16, 1},
    };

    @Test
    void layerNormModulateForwardAndBackward() {
        for (Object[] c : LN_CASES) {
            int b = (Integer) c[0], l = (Integer) c[1], d = (Integer) c[2], mode = (Integer) c[4];
            DType t = (DType) c[3];
            String sh = t + " B" + b + " L" + l + " D" + d + " mode " + mode;
            boolean big = l * d > 1_000_000;
            Both x = input(t, (long) b * l, d, big ? 0 : 8, 2);
            Both mod = randn(t, 0.5, b, 6L * d);
            Both shift = mode == 1 ? mod.chunk(0, 6) : null, scale = mode == 0 ? null : mod.chunk(1, 6);
            Out o = output(t, (long) b * l, d, big ? 0 : 3);
            Both mean = poisoned(F32, (long) b * l), rstd = poisoned(F32, (long) b * l);
            run((be, g) -> be.layerNormModulate(o.view.on(g), mean.on(g), rstd.on(g), x.on(g), shift == null ? null : shift.on(g),
                    scale == null ? null : scale.on(g)));
            check("layerNormModulate " + sh, o, tol(t));
            check("layerNormModulate mean " + sh, mean, 1e-5);
            check("layerNormModulate rstd " + sh, rstd, 1e-5);

            // backward from the CPU's saved statistics (the same F32 values on both sides)
            Both m2 = from(F32, cpu.toDoubles(mean.c), (long) b * l), r2 = from(F32, cpu.toDoubles(rstd.c), (long) b * l);
            Both dy = input(t, (long) b * l, d, big ? 0 : 5, 1);
            Out dx = output(t, (long) b * l, d, big ? 0 : 8);
            Both dmod = randn(t, 1, b, 6L * d);
            Both dshift = mode == 0 ? poisoned(t, 1, d) : dmod.chunk(3, 6), dscale = mode == 0 ? poisoned(t, 1, d) : dmod.chunk(4, 6);
            run((be, g) -> be.layerNormModulateBackward(dx.view.on(g), dshift.on(g), dscale.on(g), dy.on(g), x.on(g), m2.on(g), r2.on(g),
                    scale == null ? null : scale.on(g), 0));
            check("layerNormModulateBackward dx " + sh, dx, tol(t));
            check("layerNormModulateBackward dshift " + sh, dshift, tol(t));
            check("layerNormModulateBackward dscale " + sh, dscale, tol(t));
            if (mode != 0) check("layerNormModulateBackward dmod untouched chunks " + sh, dmod, tol(t));
            Both acc = randn(t, 1, (long) b * l, d);
            run((be, g) -> be.layerNormModulateBackward(acc.on(g), null, null, dy.on(g), x.on(g), m2.on(g), r2.on(g),
                    scale == null ? null : scale.on(g), 1));
            check("layerNormModulateBackward dx beta 1 " + sh, acc, tol(t));
        }
    }

    // ------------------------------------------------------------------------------------------ QK norm + RoPE

    /** pe F32 [ltot, dh / 2, 2] of random angles (cos, sin). */
    Both pe(long ltot, int dh) {
        double[] v = new double[(int) (ltot * dh)];
        for (int i = 0; i < v.length; i += 2) {
            double a = rnd.nextDouble() * 2 * Math.PI;
            v[i] = Math.cos(a);
            v[i + 1] = Math.sin(a);
        }
        return from(F32, v, ltot, dh / 2, 2);
    }

    @Test
    void qkNormRopeSmallShapes() {
        for (DType t : TYPES)
            for (int b : new int[] {1, 3}) {
                int heads = 3, dh = 8;
                long l = 5, ltot = 11, off = 4, hd = (long) heads * dh;
                String sh = t + " B" + b + " L" + l + "@" + off + "/" + ltot + " H" + heads + " Dh" + dh;
                Both pe = pe(ltot, dh);
                Both qs = from(t, uniform(rnd, dh, 0.5, 1.5), dh), ks = from(t, uniform(rnd, dh, 0.5, 1.5), dh);
                for (long pad : new long[] {0, 3}) {
                    // qkv as the first 3 H Dh columns of a wider projection (like linear1), possibly at an odd offset
                    Both wide = randn(t, 1, b * l, 3 * hd + 40);
                    Both qkv = wide.cols(pad, pad + 3 * hd);
                    Both q = randn(t, 1, b, ltot, hd), k = randn(t, 1, b, ltot, hd), v = randn(t, 1, b, ltot, hd);
                    Both qr = poisoned(F32, b, heads, l), kr = poisoned(F32, b, heads, l);
                    run((be, g) -> be.qkNormRope(q.on(g), k.on(g), v.on(g), qr.on(g), kr.on(g), qkv.on(g), qs.on(g), ks.on(g), pe.on(g), heads, off));
                    check("qkNormRope q " + sh + " pad " + pad, q, tol(t));
                    check("qkNormRope k " + sh + " pad " + pad, k, tol(t));
                    check("qkNormRope v " + sh + " pad " + pad, v, 0);
                    check("qkNormRope q rstd " + sh, qr, 1e-5);
                    check("qkNormRope k rstd " + sh, kr, 1e-5);

                    Both dq = randn(t, 1, b, ltot, hd), dk = randn(t, 1, b, ltot, hd), dv = randn(t, 1, b, ltot, hd);
                    Both dwide = randn(t, 1, b * l, 3 * hd + 40);
                    Out dqkv = new Out(dwide, dwide.cols(pad, pad + 3 * hd), pad);
                    run((be, g) -> be.qkNormRopeBackward(dqkv.view.on(g), dq.on(g), dk.on(g), dv.on(g), qkv.on(g), qs.on(g), ks.on(g), pe.on(g),
                            heads, off));
                    if (pad == 0) check("qkNormRopeBackward " + sh, dqkv.view, tol(t));
                    else check("qkNormRopeBackward " + sh + " pad " + pad, dqkv, tol(t));
                }
            }
    }

    @Test
    void qkNormRopeFluxDoubleBlockShapes() {
        // txt (512 tokens at offset 0) and img (1024 at offset 512) of a double block, 24 heads of 128, bf16
        int heads = 24, dh = 128, b = 1;
        long lt = 512, li = 1024, ltot = lt + li, hd = (long) heads * dh;
        Both pe = pe(ltot, dh);
        Both qs = from(BF16, uniform(rnd, dh, 0.5, 1.5), dh), ks = from(BF16, uniform(rnd, dh, 0.5, 1.5), dh);
        Both q = poisoned(BF16, b, ltot, hd), k = poisoned(BF16, b, ltot, hd), v = poisoned(BF16, b, ltot, hd);
        Both txt = randn(BF16, 1, b * lt, 3 * hd);
        Both img = randn(BF16, 1, b * li, 3 * hd + 4 * hd).cols(0, 3 * hd); // single-block style: a view of linear1's output
        Both qrT = poisoned(F32, b, heads, lt), qrI = poisoned(F32, b, heads, li);
        run((be, g) -> {
            be.qkNormRope(q.on(g), k.on(g), v.on(g), qrT.on(g), null, txt.on(g), qs.on(g), ks.on(g), pe.on(g), heads, 0);
            be.qkNormRope(q.on(g), k.on(g), v.on(g), qrI.on(g), null, img.on(g), qs.on(g), ks.on(g), pe.on(g), heads, lt);
        });
        check("qkNormRope FLUX q", q, tol(BF16));
        check("qkNormRope FLUX k", k, tol(BF16));
        check("qkNormRope FLUX v", v, 0);
        check("qkNormRope FLUX txt rstd", qrT, 1e-5);
        check("qkNormRope FLUX img rstd", qrI, 1e-5);
        Both dq = randn(BF16, 1, b, ltot, hd), dk = randn(BF16, 1, b, ltot, hd), dv = randn(BF16, 1, b, ltot, hd);
        Both dimg = poisoned(BF16, b * li, 3 * hd);
        run((be, g) -> be.qkNormRopeBackward(dimg.on(g), dq.on(g), dk.on(g), dv.on(g), img.on(g), qs.on(g), ks.on(g), pe.on(g), heads, lt));
        check("qkNormRopeBackward FLUX img", dimg, tol(BF16));
    }

    // ------------------------------------------------------------------------------------------ GEMM and linear

    @Test
    void gemmOddShapesTransposesBetaAndViews() {
        long m = 37, k = 61, n = 129;
        for (DType t : new DType[] {F32, BF16}) {
            for (boolean ta : new boolean[] {false, true})
                for (boolean tb : new boolean[] {false, true})
                    for (double beta : new double[] {0, 0.5}) {
                        String sh = t + " " + m + "x" + k + "x" + n + (ta ? " A^T" : "") + (tb ? " B^T" : "") + " beta " + beta;
                        Both a = ta ? input(t, k, m, 3, 1) : input(t, m, k, 0, 1);
                        Both bm = tb ? input(t, n, k, 0, 1) : input(t, k, n, 8, 1);
                        Out o = beta == 0 ? output(t, m, n, 5) : new Out(randn(t, 1, m, n), null, 0);
                        Out out = o.view == null ? new Out(o.parent, o.parent, 0) : o;
                        run((be, g) -> be.gemm(out.view.on(g), a.on(g), ta, bm.on(g), tb, 0.7, beta));
                        check("gemm " + sh, out, t == F32 ? 1e-5 : 1e-2);
                    }
            // mixed: F32 A with BF16 B (the backend converts), F32 output
            Both a = input(F32, m, k, 0, 1), bm = input(BF16, n, k, 0, 1);
            Both o = poisoned(F32, m, n);
            run((be, g) -> be.gemm(o.on(g), a.on(g), false, bm.on(g), true, 1, 0));
            check("gemm mixed F32 x BF16 -> F32", o, 1e-2);
        }
    }

    @Test
    void oddKGemmWithTheRoundedDownShapesAlgorithm() {
        // K = 1024 + 16 and 3072 + 16 (a fused LoRA product) run the algorithm picked for K rounded down to 64: the last
        // partial K tile must be summed, not dropped; bias and beta as the fused forward uses them
        for (long k : new long[] {1040, 3088, 3080}) {
            long m = 300, n = 264;
            Both x = input(BF16, m, k, 0, 1);
            Both w = randn(BF16, 0.05, n, k);
            Both bias = randn(BF16, 0.5, n);
            for (boolean sibling : new boolean[] {true, false}) {
                Out o = output(BF16, m, n, 8);
                int borrowedBefore = gpu.context().blas().borrowedAlgorithmPlans();
                try {
                    dev.impasto.cuda.CublasLt.useSiblingAlgoForOddK(sibling);
                    run((be, g) -> be.linear(o.view.on(g), x.on(g), new LinearWeight.Dense(w.on(g)), bias.on(g), 0));
                } finally {
                    dev.impasto.cuda.CublasLt.useSiblingAlgoForOddK(true);
                }
                check("linear K " + k + (sibling ? " (K-64 algorithm)" : " (own algorithm)"), o, 1e-2);
                // the borrowed algorithm really ran (kept after its first use), and only when asked for
                assertEquals(sibling ? borrowedBefore + 1 : borrowedBefore, gpu.context().blas().borrowedAlgorithmPlans(), "borrowed plans after K " + k);
            }
        }
    }

    @Test
    void denseLinearWithBiasBetaAndInputGrad() {
        long m = 37, k = 61, n = 129;
        for (DType t : new DType[] {F32, BF16}) {
            Both w = randn(t, 0.2, n, k);
            Both x = input(t, m, k, 3, 1);
            for (DType biasType : new DType[] {t, F32}) {
                Both bias = randn(biasType, 0.5, n);
                Out o = output(t, m, n, 8);
                run((be, g) -> be.linear(o.view.on(g), x.on(g), new LinearWeight.Dense(w.on(g)), bias.on(g), 0));
                check("linear dense " + t + " bias " + biasType, o, tol(t));
            }
            Both acc = randn(t, 1, m, n);
            run((be, g) -> be.linear(acc.on(g), x.on(g), new LinearWeight.Dense(w.on(g)), null, 1));
            check("linear dense beta 1 " + t, acc, tol(t));
            Both dy = input(t, m, n, 0, 1);
            Both dx = randn(t, 1, m, k);
            run((be, g) -> be.linearInputGrad(dx.on(g), dy.on(g), new LinearWeight.Dense(w.on(g)), 0.5));
            check("linearInputGrad dense beta 0.5 " + t, dx, tol(t));
        }
    }

    // ------------------------------------------------------------------------------------------ quantized weights

    record Quant(LinearWeight g, LinearWeight c) {}

    Quant quantize(BaseFormat f, long n, long k) {
        float[] w = new float[(int) (n * k)];
        for (int i = 0; i < w.length; i++) w[i] = (float) (rnd.nextGaussian() * 0.05);
        return new Quant(WeightQuantizer.quantize(gpu, w, n, k, f), WeightQuantizer.quantize(cpu, w, n, k, f));
    }

    static final Object[][] QUANT_SHAPES = {
        {BaseFormat.NF4, 37L, 61L}, {BaseFormat.NF4, 64L, 3072L}, {BaseFormat.NF4_DQ, 37L, 61L}, {BaseFormat.NF4_DQ, 96L, 3072L},
        {BaseFormat.INT8, 37L, 61L}, {BaseFormat.INT8, 64L, 256L}, {BaseFormat.INT4, 37L, 61L}, {BaseFormat.INT4, 64L, 3072L},
        {BaseFormat.INT4, 9L, 200L}, {BaseFormat.Q8_0, 37L, 96L}, {BaseFormat.Q4_0, 37L, 96L}, {BaseFormat.Q4_K, 5L, 512L},
    };

    @Test
    void dequantizeIsBitIdenticalToTheCpuDequantizer() {
        for (Object[] c : QUANT_SHAPES) {
            BaseFormat f = (BaseFormat) c[0];
            long n = (Long) c[1], k = (Long) c[2];
            Quant q = quantize(f, n, k);
            float[] ref = WeightQuantizer.dequantize(gpu, q.g); // host dequantizer over the GPU's own parts
            for (DType t : TYPES) {
                Tensor out = own(gpu.empty(t, n, k));
                gpu.fill(out, Double.NaN);
                gpu.dequantize(out, q.g);
                double[] got = gpu.toDoubles(out);
                int worst = -1;
                long worstUlps = 0;
                for (int i = 0; i < got.length; i++) {
                    float expect = (float) t.round(ref[i]);
                    long u = t == F32 ? GpuCheck.ulps((float) got[i], expect) : (got[i] == expect ? 0 : Long.MAX_VALUE);
                    if (u > worstUlps) {
                        worstUlps = u;
                        worst = i;
                    }
                }
                if (worstUlps > (t == F32 ? 1 : 0))
                    fail("dequantize " + f + " [" + n + ", " + k + "] -> " + t + ": element " + worst + " (row " + worst / k + ", col " + worst % k
                            + ") is " + got[worst] + ", WeightQuantizer.dequantize gives " + ref[worst] + " (" + worstUlps + " ulps)");
                // into the left k columns of wider rows (the fused LoRA's [W | s B]): same values, the rest untouched
                Tensor wide = own(gpu.empty(t, n, k + 24));
                gpu.fill(wide, Double.NaN);
                gpu.dequantize(wide.cols(0, k), q.g);
                double[] left = gpu.toDoubles(wide.cols(0, k)), right = gpu.toDoubles(wide.cols(k, k + 24));
                for (int i = 0; i < left.length; i++)
                    if (left[i] != got[i]) fail("dequantize " + f + " [" + n + ", " + k + "] -> " + t + " into rows of " + (k + 24) + ": element " + i + " is " + left[i] + ", contiguous gives " + got[i]);
                for (double v : right) assertTrue(Double.isNaN(v), "dequantize " + f + " -> " + t + " wrote past column " + k + " of the wider rows");
            }
        }
        // stacked parts (separately quantized q, k, v) land in their rows
        Quant a = quantize(BaseFormat.NF4, 32, 256), b = quantize(BaseFormat.INT8, 16, 256);
        LinearWeight sg = new LinearWeight.Stacked(List.of(a.g, b.g));
        Tensor out = own(gpu.empty(BF16, 48, 256));
        gpu.fill(out, Double.NaN);
        gpu.dequantize(out, sg);
        float[] ref = WeightQuantizer.dequantize(gpu, sg);
        double[] r = new double[ref.length];
        for (int i = 0; i < r.length; i++) r[i] = BF16.round(ref[i]);
        assertClose("dequantize stacked NF4 + int8", gpu.toDoubles(out), r, 256, 0);
    }

    @Test
    void quantizedGemvMatchesCpuLinear() {
        Object[][] shapes = {{BaseFormat.NF4, 96L, 256L}, {BaseFormat.NF4, 37L, 61L}, {BaseFormat.NF4_DQ, 64L, 3072L}, {BaseFormat.NF4_DQ, 37L, 61L},
                {BaseFormat.INT8, 96L, 256L}, {BaseFormat.INT8, 37L, 61L}, {BaseFormat.INT4, 64L, 3072L}, {BaseFormat.INT4, 37L, 61L},
                {BaseFormat.Q8_0, 37L, 96L}, {BaseFormat.Q8_0, 64L, 3072L}, {BaseFormat.Q4_0, 37L, 160L}, {BaseFormat.Q4_0, 64L, 3072L},
                {BaseFormat.Q4_K, 37L, 512L}, {BaseFormat.Q4_K, 64L, 3072L}};
        for (Object[] s : shapes) {
            BaseFormat f = (BaseFormat) s[0];
            long n = (Long) s[1], k = (Long) s[2];
            Quant q = quantize(f, n, k);
            assertTrue(QuantKernels.hasGemv(q.g), f + " should have a GEMV");
            for (DType t : new DType[] {F32, BF16})
                for (long m : new long[] {1, 2, 3, 5, 8}) {
                    String sh = f + " " + t + " M" + m + " N" + n + " K" + k;
                    Both x = input(t, m, k, m == 3 ? 8 : 0, 1);
                    Both bias = m == 2 ? null : randn(m == 5 ? BF16 : F32, 0.5, n);
                    Out o = output(t, m, n, m == 5 ? 3 : 0);
                    run((be, g) -> {
                        if (g) QuantKernels.gemv(gpu, CudaBackend.cu(o.view.g), CudaBackend.cu(x.g), q.g, bias == null ? null : bias.g, 0);
                        else be.linear(o.view.c, x.c, q.c, bias == null ? null : bias.c, 0);
                    });
                    check("quantized GEMV " + sh, o, tol(t));
                    Both acc = randn(t, 1, m, n);
                    run((be, g) -> be.linear(acc.on(g), x.on(g), g ? q.g : q.c, bias == null ? null : bias.on(g), 1)); // through linear
                    check("quantized linear (GEMV) beta 1 " + sh, acc, tol(t));
                }
        }
    }

    @Test
    void nf4QuantizationOnTheDeviceEqualsTheHostQuantizer() {
        // quantize-on-load: odd element counts (a lone last element, a partial block), an all-zero block, bf16 / f16 / f32
        // inputs, plain and double-quantized absmax; codes and absmax bit for bit against WeightQuantizer on the host
        long[][] shapes = {{37, 61}, {64, 3072}, {3, 64}, {1, 5}};
        for (DType t : new DType[] {BF16, F16, F32})
            for (long[] sh : shapes)
                for (boolean dq : new boolean[] {false, true}) {
                    long n = sh[0], k = sh[1];
                    double[] v = gauss(rnd, (int) (n * k), 0.05);
                    if (n == 3) java.util.Arrays.fill(v, 64, 128, 0.0); // the second block of 64 is all zeros
                    Tensor gw = own(gpu.fromDoubles(v, t, n, k));
                    float[] f = new float[v.length];
                    double[] rounded = gpu.toDoubles(gw);
                    for (int i = 0; i < f.length; i++) f[i] = (float) rounded[i];
                    LinearWeight.Nf4 g = (LinearWeight.Nf4) gpu.quantizeNf4(gw, dq);
                    LinearWeight.Nf4 c = (LinearWeight.Nf4) WeightQuantizer.quantize(cpu, f, n, k, dq ? BaseFormat.NF4_DQ : BaseFormat.NF4);
                    String what = "NF4 quantize " + t + " [" + n + ", " + k + "]" + (dq ? " double-quantized" : "");
                    org.junit.jupiter.api.Assertions.assertArrayEquals(cpu.toDoubles(c.packed()), gpu.toDoubles(g.packed()), what + ": codes");
                    org.junit.jupiter.api.Assertions.assertArrayEquals(cpu.toDoubles(c.absmax()), gpu.toDoubles(g.absmax()), what + ": absmax");
                    if (dq) {
                        org.junit.jupiter.api.Assertions.assertArrayEquals(cpu.toDoubles(c.nestedAbsmax()), gpu.toDoubles(g.nestedAbsmax()), what + ": nested absmax");
                        assertEquals(c.nestedOffset(), g.nestedOffset(), what + ": offset");
                    }
                    for (Tensor x : new Tensor[] {g.packed(), g.absmax(), g.nestedAbsmax(), g.nestedCode()}) if (x != null) owned.add(x);
                }
        double[] v = gauss(rnd, 300, 1);
        v[201] = Double.NaN;
        v[250] = Double.POSITIVE_INFINITY;
        Tensor bad = own(gpu.fromDoubles(v, BF16, 3, 100));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> gpu.quantizeNf4(bad, false));
        assertTrue(e.getMessage().contains("weight element 201 is not finite"), e.getMessage());
    }

    @Test
    void quantizedLinearThroughDequantAndGemm() {
        for (BaseFormat f : new BaseFormat[] {BaseFormat.NF4, BaseFormat.NF4_DQ, BaseFormat.INT8, BaseFormat.INT4, BaseFormat.Q8_0, BaseFormat.Q4_0,
                BaseFormat.Q4_K}) {
            long n = 96, k = 512, m = 37;
            Quant q = quantize(f, n, k);
            for (DType t : new DType[] {F32, BF16}) {
                Both x = input(t, m, k, 0, 1);
                Both bias = randn(t, 0.5, n);
                Out o = output(t, m, n, 8);
                run((be, g) -> be.linear(o.view.on(g), x.on(g), g ? q.g : q.c, bias.on(g), 0));
                check("quantized linear (dequant + GEMM) " + f + " " + t, o, tol(t));
                Both dy = input(t, m, n, 0, 1);
                Both dx = poisoned(t, m, k);
                run((be, g) -> be.linearInputGrad(dx.on(g), dy.on(g), g ? q.g : q.c, 0));
                check("quantized linearInputGrad " + f + " " + t, dx, tol(t));
            }
        }
    }

    @Test
    void stackedQuantizedLinearWritesEachPartsColumns() {
        // separately quantized q, k, v (a diffusers NF4 file), with bias, through the GEMV (3 rows) and the GEMM (37 rows)
        List<Quant> parts = List.of(quantize(BaseFormat.NF4, 64, 256), quantize(BaseFormat.NF4_DQ, 32, 256), quantize(BaseFormat.INT8, 40, 256));
        LinearWeight sg = new LinearWeight.Stacked(parts.stream().map(Quant::g).toList());
        LinearWeight sc = new LinearWeight.Stacked(parts.stream().map(Quant::c).toList());
        for (DType t : new DType[] {F32, BF16})
            for (long m : new long[] {3, 37}) {
                Both x = input(t, m, 256, 0, 1);
                Both bias = randn(t, 0.5, 136);
                Out o = output(t, m, 136, 8);
                run((be, g) -> be.linear(o.view.on(g), x.on(g), g ? sg : sc, bias.on(g), 0));
                check("stacked NF4 + NF4-DQ + int8 linear " + t + " M" + m, o, tol(t));
                Both dy = input(t, m, 136, 0, 1);
                Both dx = randn(t, 1, m, 256);
                run((be, g) -> be.linearInputGrad(dx.on(g), dy.on(g), g ? sg : sc, 1));
                check("stacked linearInputGrad beta 1 " + t + " M" + m, dx, tol(t));
            }
    }

    /** Every kernel name the Java side launches exists in the fatbin (a missing or misspelt symbol shows here first). */
    @Test
    void everyKernelNameResolves() {
        List<String> names = new ArrayList<>();
        String[] ts = {"f32", "bf16", "f16"};
        for (String a : ts) for (String b : ts) names.add("impasto_convert_" + a + "_" + b);
        String[] perType = {"fill", "add", "mul", "axpby", "gelu", "silu", "gelu_bwd", "silu_bwd", "gated_residual", "gated_residual_bwd",
            "flow_mix", "concat_seq", "split_seq", "mse", "sum_squares", "nonfinite", "colsum_product", "colsum_finish", "timestep_embedding",
            "randn", "rand", "dropout", "ln_mod", "ln_mod_bwd", "ln_mod_bwd_params", "qk_norm_rope", "qk_norm_rope_bwd", "dequant_nf4",
            "dequant_int8", "dequant_int4", "dequant_q8_0", "dequant_q4_0", "dequant_q4_k", "attn_delta", "attn_fwd_generic",
            "attn_bwd_dq_generic", "attn_bwd_dkdv_generic"};
        for (String op : perType) for (String t : ts) names.add("impasto_" + op + "_" + t);
        for (String f : new String[] {"nf4", "int8", "int4", "q8_0", "q4_0", "q4_k"})
            for (int mb : new int[] {1, 2, 4}) for (String t : new String[] {"f32", "bf16"}) names.add("impasto_gemv_" + f + "_m" + mb + "_" + t);
        for (String k : new String[] {"attn_fwd_mma", "attn_bwd_dq_mma", "attn_bwd_dkdv_mma"})
            for (int d : new int[] {64, 128}) for (String t : new String[] {"bf16", "f16"}) names.add("impasto_" + k + "_d" + d + "_" + t);
        names.add("impasto_adamw_f32");
        names.add("impasto_adamw_multi_f32");
        List<String> missing = new ArrayList<>();
        for (String n : names) {
            try {
                gpu.kernel(n);
            } catch (RuntimeException e) {
                missing.add(n + " (" + e.getMessage() + ")");
            }
        }
        assertTrue(missing.isEmpty(), "kernels missing from the fatbin: " + missing);
    }

    // ------------------------------------------------------------------------------------------ attention

    /** q, k, v [B, L, H D] (k and v with lk rows), dout [B, L, H D], all the same on both sides. */
    record Attn(Both q, Both k, Both v, Both dout, int b, int h, long lq, long lk, int d) {}

    Attn attn(DType t, int b, int h, long lq, long lk, int d, long pad) {
        long hd = (long) h * d;
        return new Attn(input3(t, b, lq, hd, pad), input3(t, b, lk, hd, pad), input3(t, b, lk, hd, pad), input3(t, b, lq, hd, 0), b, h, lq, lk, d);
    }

    /** [b, l, hd] contiguous, or a [b * l, hd] column view of a wider parent (the attention ops take the batch from lse). */
    Both input3(DType t, int b, long l, long hd, long pad) {
        if (pad == 0) return randn(t, 1, b, l, hd);
        return randn(t, 1, b * l, hd + 2 * pad).cols(pad, pad + hd);
    }

    @Test
    void attentionSmallThroughTheBackendsPath() {
        for (DType t : new DType[] {BF16, F32}) {
            Attn a = attn(t, 2, 3, 77, 77, 64, 0);
            Both out = poisoned(t, 2, 77, 192), lse = poisoned(F32, 2, 3, 77);
            run((be, g) -> be.attention(out.on(g), lse.on(g), a.q.on(g), a.k.on(g), a.v.on(g), a.h));
            String path = gpu.attentionImplementation();
            check("attention (" + path + ") out " + t, out, t == F32 ? 2e-5 : 1e-2);
            assertAbs("attention (" + path + ") lse " + t, gpu.toDoubles(lse.g), cpu.toDoubles(lse.c), t == F32 ? 1e-4 : 2e-2);
            Both dq = poisoned(t, 2, 77, 192), dk = poisoned(t, 2, 77, 192), dv = poisoned(t, 2, 77, 192);
            run((be, g) -> be.attentionBackward(dq.on(g), dk.on(g), dv.on(g), a.dout.on(g), a.q.on(g), a.k.on(g), a.v.on(g), out.on(g),
                    lse.on(g), a.h));
            check("attentionBackward (" + path + ") dq " + t, dq, t == F32 ? 2e-5 : 1e-2);
            check("attentionBackward (" + path + ") dk " + t, dk, t == F32 ? 2e-5 : 1e-2);
            check("attentionBackward (" + path + ") dv " + t, dv, t == F32 ? 2e-5 : 1e-2);
        }
    }

    /** Own kernels against the CPU: tensor-core path (bf16/f16, D 64/128), generic path (f32, D 40, odd views). */
    @Test
    void ownAttentionAgainstCpu() {
        Object[][] cases = {
            {BF16, 2, 3, 77L, 77L, 64, 0L, true}, {F16, 2, 3, 77L, 77L, 128, 0L, true}, {BF16, 1, 2, 130L, 50L, 128, 8L, true},
            {F32, 2, 3, 77L, 77L, 64, 0L, false}, {BF16, 2, 3, 33L, 33L, 40, 0L, false}, {BF16, 1, 2, 45L, 45L, 64, 3L, false},
            {F32, 1, 1, 1L, 1L, 8, 0L, false}, {BF16, 3, 2, 64L, 64L, 64, 0L, true},
        };
        for (Object[] c : cases) {
            DType t = (DType) c[0];
            int b = (Integer) c[1], h = (Integer) c[2], d = (Integer) c[5];
            long lq = (Long) c[3], lk = (Long) c[4], pad = (Long) c[6];
            boolean mma = (Boolean) c[7];
            Attn a = attn(t, b, h, lq, lk, d, pad);
            long hd = (long) h * d;
            String sh = t + " B" + b + " H" + h + " Lq" + lq + " Lk" + lk + " D" + d + (pad > 0 ? " views@" + pad : "") + (mma ? " (tensor cores)" : " (generic)");
            assertEquals(mma, OwnAttention.tensorCores(t, d, CudaBackend.cu(a.q.g), CudaBackend.cu(a.k.g), CudaBackend.cu(a.v.g)), sh + ": path choice");
            Both lse = poisoned(F32, b, h, lq);
            Both out = poisoned(t, b, lq, hd);
            cpu.attention(out.c, lse.c, a.q.c, a.k.c, a.v.c, h);
            OwnAttention.forward(gpu, CudaBackend.cu(out.g), lse.g, CudaBackend.cu(a.q.g), CudaBackend.cu(a.k.g), CudaBackend.cu(a.v.g), b, lq, lk, h, d);
            double ot = t == F32 ? 2e-5 : t == F16 ? 3e-3 : 1e-2;
            check("own attention out " + sh, out, ot);
            assertAbs("own attention lse " + sh, gpu.toDoubles(lse.g), cpu.toDoubles(lse.c), t == F32 ? 1e-5 : 2e-2);
            Both dq = poisoned(t, b, lq, hd), dk = poisoned(t, b, lk, hd), dv = poisoned(t, b, lk, hd);
            cpu.attentionBackward(dq.c, dk.c, dv.c, a.dout.c, a.q.c, a.k.c, a.v.c, out.c, lse.c, h);
            OwnAttention.backward(gpu, CudaBackend.cu(dq.g), CudaBackend.cu(dk.g), CudaBackend.cu(dv.g), CudaBackend.cu(a.dout.g), CudaBackend.cu(a.q.g),
                    CudaBackend.cu(a.k.g), CudaBackend.cu(a.v.g), CudaBackend.cu(out.g), CudaBackend.cu(lse.g), b, lq, lk, h, d);
            check("own attention dq " + sh, dq, ot);
            check("own attention dk " + sh, dk, ot);
            check("own attention dv " + sh, dv, ot);
        }
    }

    /**
     * FLUX size (B 1, H 24, L 1536 = 512 txt + 1024 img, D 128, bf16): own kernels against sampled CPU rows (forward)
     * and one full head in fp64 (backward), and against the libtorch path when libtorch is present. Output and
     * gradients are column views of wider tensors, as in the single-stream block.
     */
    @Test
    void attentionFluxSize() {
        int b = 1, h = 24, d = 128;
        long l = 1536, hd = (long) h * d;
        Both q = randn(BF16, 1, b, l, hd), k = randn(BF16, 1, b, l, hd), v = randn(BF16, 1, b, l, hd), dout = randn(BF16, 1, b * l, hd + 4096).cols(0, hd);
        Tensor cat = own(gpu.empty(BF16, b * l, hd + 12288));
        gpu.fill(cat, Double.NaN);
        CudaTensor out = CudaBackend.cu(cat.cols(0, hd)), lse = CudaBackend.cu(own(gpu.empty(F32, b, h, l)));
        OwnAttention.forward(gpu, out, lse, CudaBackend.cu(q.g), CudaBackend.cu(k.g), CudaBackend.cu(v.g), b, l, l, h, d);
        double[] qd = gpu.toDoubles(q.g), kd = gpu.toDoubles(k.g), vd = gpu.toDoubles(v.g), od = gpu.toDoubles(out), ld = gpu.toDoubles(lse);
        for (double x : od) if (!Double.isFinite(x)) fail("own attention FLUX size left non-finite output (unwritten rows?)");
        // sampled rows against fp64
        double scale = 1 / Math.sqrt(d);
        double num = 0, den = 0;
        for (int sample = 0; sample < 24; sample++) {
            int hh = rnd.nextInt(h);
            int i = sample < 2 ? (sample == 0 ? 0 : (int) l - 1) : rnd.nextInt((int) l);
            double[] s = new double[(int) l];
            double mx = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < l; j++) {
                double acc = 0;
                for (int c = 0; c < d; c++) acc += qd[(int) (i * hd + hh * d + c)] * kd[(int) (j * hd + hh * d + c)];
                s[j] = acc * scale;
                mx = Math.max(mx, s[j]);
            }
            double sum = 0;
            for (int j = 0; j < l; j++) sum += (s[j] = Math.exp(s[j] - mx));
            double lseRef = mx + Math.log(sum);
            if (Math.abs(ld[hh * (int) l + i] - lseRef) > 2e-2) fail("own attention FLUX lse (head " + hh + ", row " + i + "): " + ld[hh * (int) l + i] + " vs " + lseRef);
            for (int c = 0; c < d; c++) {
                double acc = 0;
                for (int j = 0; j < l; j++) acc += s[j] * vd[(int) (j * hd + hh * d + c)];
                double ref = acc / sum, got = od[(int) (i * hd + hh * d + c)];
                num += (got - ref) * (got - ref);
                den += ref * ref;
            }
        }
        assertTrue(Math.sqrt(num / den) < 1e-2, "own attention FLUX sampled rows: relative L2 " + Math.sqrt(num / den));

        // backward: one head in fp64
        Tensor dcat = own(gpu.empty(BF16, b * l, 3 * hd));
        gpu.fill(dcat, Double.NaN);
        CudaTensor dq = CudaBackend.cu(dcat.cols(0, hd)), dk = CudaBackend.cu(dcat.cols(hd, 2 * hd)), dv = CudaBackend.cu(dcat.cols(2 * hd, 3 * hd));
        OwnAttention.backward(gpu, dq, dk, dv, CudaBackend.cu(dout.g), CudaBackend.cu(q.g), CudaBackend.cu(k.g), CudaBackend.cu(v.g), out, lse, b, l, l, h, d);
        double[] gd = gpu.toDoubles(dout.g), dqd = gpu.toDoubles(dq), dkd = gpu.toDoubles(dk), dvd = gpu.toDoubles(dv);
        for (double[] arr : new double[][] {dqd, dkd, dvd}) for (double x : arr) if (!Double.isFinite(x)) fail("own attention backward FLUX size left non-finite gradients");
        int hh = 7;
        double[][] ref = headBackward(qd, kd, vd, gd, (int) l, d, (int) hd, hh * d, scale);
        String[] names = {"dq", "dk", "dv"};
        double[][] got = {dqd, dkd, dvd};
        for (int g = 0; g < 3; g++) {
            double[] gg = new double[(int) l * d];
            for (int i = 0; i < l; i++) for (int c = 0; c < d; c++) gg[i * d + c] = got[g][(int) (i * hd + hh * d + c)];
            assertClose("own attention backward FLUX head " + hh + " " + names[g], gg, ref[g], d, 1e-2);
        }

        // against libtorch's cuDNN / flash path, when present
        if (gpu.context().torch() != null) {
            Both out2 = poisoned(BF16, b, l, hd), lse2 = poisoned(F32, b, h, l);
            gpu.attention(out2.g, lse2.g, q.g, k.g, v.g, h);
            String path = gpu.attentionImplementation();
            assertClose("own vs " + path + " attention out (FLUX size)", gpu.toDoubles(out), gpu.toDoubles(out2.g), hd, 1e-2);
            assertAbs("own vs " + path + " lse (FLUX size)", ld, gpu.toDoubles(lse2.g), 2e-2);
            Both dq2 = poisoned(BF16, b, l, hd), dk2 = poisoned(BF16, b, l, hd), dv2 = poisoned(BF16, b, l, hd);
            gpu.attentionBackward(dq2.g, dk2.g, dv2.g, dout.g, q.g, k.g, v.g, out2.g, lse2.g, h);
            assertClose("own vs " + path + " dq (FLUX size)", dqd, gpu.toDoubles(dq2.g), hd, 1e-2);
            assertClose("own vs " + path + " dk (FLUX size)", dkd, gpu.toDoubles(dk2.g), hd, 1e-2);
            assertClose("own vs " + path + " dv (FLUX size)", dvd, gpu.toDoubles(dv2.g), hd, 1e-2);
        }
    }

    /** dq, dk, dv [L, D] of one head (columns off.. of [L, hd] rows) in fp64. */
    static double[][] headBackward(double[] q, double[] k, double[] v, double[] g, int l, int d, int hd, int off, double scale) {
        double[][] p = new double[l][];
        double[] delta = new double[l];
        IntStream.range(0, l).parallel().forEach(i -> {
            double[] s = new double[l];
            double mx = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < l; j++) {
                double acc = 0;
                for (int c = 0; c < d; c++) acc += q[i * hd + off + c] * k[j * hd + off + c];
                s[j] = acc * scale;
                mx = Math.max(mx, s[j]);
            }
            double sum = 0;
            for (int j = 0; j < l; j++) sum += (s[j] = Math.exp(s[j] - mx));
            for (int j = 0; j < l; j++) s[j] /= sum;
            p[i] = s;
            double dl = 0; // delta_i = sum_c dout . out
            for (int c = 0; c < d; c++) {
                double o = 0;
                for (int j = 0; j < l; j++) o += s[j] * v[j * hd + off + c];
                dl += o * g[i * hd + off + c];
            }
            delta[i] = dl;
        });
        double[][] ds = new double[l][];
        IntStream.range(0, l).parallel().forEach(i -> {
            double[] r = new double[l];
            for (int j = 0; j < l; j++) {
                double dp = 0;
                for (int c = 0; c < d; c++) dp += g[i * hd + off + c] * v[j * hd + off + c];
                r[j] = p[i][j] * (dp - delta[i]) * scale;
            }
            ds[i] = r;
        });
        double[] dq = new double[l * d], dk = new double[l * d], dv = new double[l * d];
        IntStream.range(0, l).parallel().forEach(i -> {
            for (int j = 0; j < l; j++) {
                double w = ds[i][j];
                for (int c = 0; c < d; c++) dq[i * d + c] += w * k[j * hd + off + c];
            }
        });
        IntStream.range(0, l).parallel().forEach(j -> {
            for (int i = 0; i < l; i++) {
                double w = ds[i][j], pw = p[i][j];
                for (int c = 0; c < d; c++) {
                    dk[j * d + c] += w * q[i * hd + off + c];
                    dv[j * d + c] += pw * g[i * hd + off + c];
                }
            }
        });
        return new double[][] {dq, dk, dv};
    }
}
