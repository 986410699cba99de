package dev.impasto.tensor.cpu;

import dev.impasto.tensor.AdamWConfig;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.ElementCodec;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Philox;
import dev.impasto.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;

/**
 * The reference backend: plain Java, every op computed in double and rounded to the output's dtype on store. It is
 * the oracle the CUDA backend is tested against and what GPU-less users and CI run tiny models on. Loops are written
 * for clarity first; rows are processed in parallel where each output element is still computed by one thread in a
 * fixed order, so results are deterministic.
 */
public final class CpuBackend implements Backend {
    static final double LN_EPS = 1e-6;
    static final double RMS_EPS = 1e-6;

    private final AtomicLong inUse = new AtomicLong();
    private final AtomicLong peak = new AtomicLong();
    private final CpuDequantizer dequantizer = new CpuDequantizer();

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public boolean isGpu() {
        return false;
    }

    // ------------------------------------------------------------------ memory

    @Override
    public Tensor empty(DType dtype, long... shape) {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        if (n > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException("tensor of " + n + " elements is too large for the CPU backend (max 2^31); use a GPU");
        long bytes = n * dtype.byteSize();
        var data = new CpuTensor.Data(this, (int) n, bytes);
        peak.accumulateAndGet(inUse.addAndGet(bytes), Math::max);
        return new CpuTensor(this, data, true, dtype, 0, shape[shape.length - 1], shape);
    }

    void released(long bytes) {
        inUse.addAndGet(-bytes);
    }

    @Override
    public Tensor fromDoubles(double[] values, DType dtype, long... shape) {
        CpuTensor t = (CpuTensor) empty(dtype, shape);
        if (values.length != t.numel())
            throw new IllegalArgumentException(values.length + " values for shape " + java.util.Arrays.toString(shape));
        double[] d = t.data();
        for (int i = 0; i < values.length; i++) d[i] = dtype.round(values[i]);
        return t;
    }

    @Override
    public Tensor fromBytes(MemorySegment src, DType srcType, DType dtype, long... shape) {
        CpuTensor t = (CpuTensor) empty(dtype, shape);
        long n = t.numel();
        if (src.byteSize() < n * srcType.byteSize())
            throw new IllegalArgumentException("source has " + src.byteSize() + " bytes, " + n + " " + srcType + " elements need " + n * srcType.byteSize());
        double[] d = t.data();
        for (int i = 0; i < n; i++) d[i] = dtype.round(ElementCodec.read(src, srcType, i));
        return t;
    }

    @Override
    public double[] toDoubles(Tensor t) {
        CpuTensor c = cpu(t);
        int rows = (int) c.rows(), cols = (int) c.cols();
        double[] out = new double[rows * cols];
        double[] d = c.data();
        for (int r = 0; r < rows; r++) System.arraycopy(d, c.base(r), out, r * cols, cols);
        return out;
    }

    @Override
    public byte[] toBytes(Tensor t) {
        double[] v = toDoubles(t);
        int bs = t.dtype().byteSize();
        byte[] out = new byte[v.length * bs];
        MemorySegment s = MemorySegment.ofArray(out);
        for (int i = 0; i < v.length; i++) ElementCodec.write(s, t.dtype(), i, v[i]);
        return out;
    }

    @Override
    public void copy(Tensor dst, Tensor src) {
        CpuTensor d = cpu(dst), s = cpu(src);
        sameMatrix(d, s, "copy");
        int rows = (int) d.rows(), cols = (int) d.cols();
        double[] dd = d.data(), sd = s.data();
        DType dt = d.dtype();
        for (int r = 0; r < rows; r++) {
            int bd = d.base(r), bs = s.base(r);
            for (int c = 0; c < cols; c++) dd[bd + c] = dt.round(sd[bs + c]);
        }
    }

    @Override
    public void fill(Tensor t, double value) {
        CpuTensor c = cpu(t);
        double v = c.dtype().round(value);
        double[] d = c.data();
        for (int r = 0; r < c.rows(); r++) java.util.Arrays.fill(d, c.base(r), c.base(r) + (int) c.cols(), v);
    }

    @Override
    public void randn(Tensor out, long seed) {
        double[] v = new double[(int) out.numel()];
        Philox.normals(v, seed);
        store(cpu(out), v);
    }

    @Override
    public void rand(Tensor out, long seed) {
        double[] v = new double[(int) out.numel()];
        Philox.uniforms(v, seed);
        store(cpu(out), v);
    }

    @Override
    public void dropout(Tensor out, Tensor x, double p, long seed) {
        if (p < 0 || p >= 1) throw new IllegalArgumentException("dropout probability must be in [0, 1), got " + p);
        double[] u = new double[(int) x.numel()];
        Philox.uniforms(u, seed);
        double[] xv = toDoubles(x);
        for (int i = 0; i < u.length; i++) u[i] = u[i] >= p ? xv[i] / (1 - p) : 0;
        store(cpu(out), u);
    }

    private static void store(CpuTensor t, double[] rowMajor) {
        int cols = (int) t.cols();
        double[] d = t.data();
        DType dt = t.dtype();
        for (int r = 0; r < t.rows(); r++) {
            int b = t.base(r);
            for (int c = 0; c < cols; c++) d[b + c] = dt.round(rowMajor[r * cols + c]);
        }
    }

    @Override
    public void synchronize() {}

    @Override
    public long bytesInUse() {
        return inUse.get();
    }

    @Override
    public long peakBytes() {
        return peak.get();
    }

    @Override
    public void resetPeak() {
        peak.set(inUse.get());
    }

    // ------------------------------------------------------------------ matrix products

    @Override
    public void gemm(Tensor out, Tensor a, boolean transA, Tensor b, boolean transB, double alpha, double beta) {
        CpuTensor o = cpu(out);
        gemmInto(o, matrix(cpu(a), transA), matrix(cpu(b), transB), null, alpha, beta, "gemm");
    }

    /**
     * out = alpha * A B + bias + beta * out with A [M][K] and B [K][N] materialised. Each output row is built as a
     * sum of scaled rows of B (an axpy the JIT vectorises), one row per task: deterministic and parallel.
     */
    private static void gemmInto(CpuTensor o, double[][] am, double[][] bm, double[] bias, double alpha, double beta, String op) {
        int m = am.length, k = bm.length, n = k == 0 ? (int) o.cols() : bm[0].length;
        if (o.rows() != m || o.cols() != n)
            throw new IllegalArgumentException(op + ": output " + o + " is not [" + m + ", " + n + "]");
        if (m > 0 && am[0].length != k)
            throw new IllegalArgumentException(op + ": inner dimensions differ (" + am[0].length + " vs " + k + ")");
        double[] od = o.data();
        DType dt = o.dtype();
        IntStream.range(0, m).parallel().forEach(i -> {
            double[] ai = am[i];
            double[] acc = new double[n];
            for (int kk = 0; kk < k; kk++) {
                double a = ai[kk];
                if (a == 0) continue;
                double[] bk = bm[kk];
                for (int j = 0; j < n; j++) acc[j] += a * bk[j];
            }
            int base = o.base(i);
            for (int j = 0; j < n; j++) {
                double v = alpha * acc[j] + (bias == null ? 0 : bias[j]);
                if (beta != 0) v += beta * od[base + j];
                od[base + j] = dt.round(v);
            }
        });
    }

    static double[][] transpose(double[][] m) {
        int r = m.length, c = r == 0 ? 0 : m[0].length;
        double[][] t = new double[c][r];
        for (int i = 0; i < r; i++) for (int j = 0; j < c; j++) t[j][i] = m[i][j];
        return t;
    }

    /** The tensor as double[rows][cols], or its transpose. */
    static double[][] matrix(CpuTensor t, boolean transpose) {
        int rows = (int) t.rows(), cols = (int) t.cols();
        double[] d = t.data();
        double[][] m = transpose ? new double[cols][rows] : new double[rows][cols];
        for (int r = 0; r < rows; r++) {
            int b = t.base(r);
            for (int c = 0; c < cols; c++) {
                if (transpose) m[c][r] = d[b + c];
                else m[r][c] = d[b + c];
            }
        }
        return m;
    }

    @Override
    public void linear(Tensor out, Tensor x, LinearWeight w, Tensor bias, double beta) {
        double[][] wt = transpose(dequantizer.dense(this, w));  // [K][N]
        double[] bv = bias == null ? null : toDoubles(bias);
        gemmInto(cpu(out), matrix(cpu(x), false), wt, bv, 1, beta, "linear");
    }

    @Override
    public void linearInputGrad(Tensor dx, Tensor dy, LinearWeight w, double beta) {
        double[][] wm = dequantizer.dense(this, w);  // [N][K]: dx = dy W
        gemmInto(cpu(dx), matrix(cpu(dy), false), wm, null, 1, beta, "linearInputGrad");
    }

    @Override
    public void dequantize(Tensor out, LinearWeight w) {
        double[][] wm = dequantizer.dense(this, w);
        CpuTensor o = cpu(out);
        if (o.rows() != wm.length || (wm.length > 0 && o.cols() != wm[0].length))
            throw new IllegalArgumentException("dequantize: output " + o + " does not match weight [" + w.outFeatures() + ", " + w.inFeatures() + "]");
        double[] d = o.data();
        for (int r = 0; r < wm.length; r++) {
            int b = o.base(r);
            for (int c = 0; c < wm[r].length; c++) d[b + c] = o.dtype().round(wm[r][c]);
        }
    }

    // ------------------------------------------------------------------ elementwise

    @FunctionalInterface
    private interface Binary {
        double apply(double a, double b);
    }

    /** out[r, c] = f(a[r, c], b[r, c]) (+ beta * out); all same rows x cols. */
    private static void zip(Tensor out, Tensor a, Tensor b, double beta, Binary f) {
        CpuTensor o = cpu(out), x = cpu(a), y = b == null ? null : cpu(b);
        sameMatrix(o, x, "elementwise op");
        if (y != null) sameMatrix(o, y, "elementwise op");
        int rows = (int) o.rows(), cols = (int) o.cols();
        double[] od = o.data(), xd = x.data(), yd = y == null ? null : y.data();
        DType dt = o.dtype();
        for (int r = 0; r < rows; r++) {
            int bo = o.base(r), bx = x.base(r), by = y == null ? 0 : y.base(r);
            for (int c = 0; c < cols; c++) {
                double v = f.apply(xd[bx + c], yd == null ? 0 : yd[by + c]);
                if (beta != 0) v += beta * od[bo + c];
                od[bo + c] = dt.round(v);
            }
        }
    }

    @Override
    public void add(Tensor out, Tensor a, Tensor b) {
        zip(out, a, b, 0, Double::sum);
    }

    @Override
    public void axpby(Tensor y, double alpha, Tensor x, double beta) {
        zip(y, x, null, beta, (xv, unused) -> alpha * xv);
    }

    @Override
    public void mul(Tensor out, Tensor x, Tensor y) {
        zip(out, x, y, 0, (a, b) -> a * b);
    }

    static final double GELU_C = Math.sqrt(2 / Math.PI);

    static double gelu(double x) {
        return 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
    }

    static double geluGrad(double x) {
        double u = GELU_C * (x + 0.044715 * x * x * x);
        double th = Math.tanh(u);
        return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * GELU_C * (1 + 3 * 0.044715 * x * x);
    }

    static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    @Override
    public void gelu(Tensor out, Tensor x) {
        zip(out, x, null, 0, (v, u) -> gelu(v));
    }

    @Override
    public void geluBackward(Tensor dx, Tensor dy, Tensor x, double beta) {
        zip(dx, dy, x, beta, (g, v) -> g * geluGrad(v));
    }

    @Override
    public void silu(Tensor out, Tensor x) {
        zip(out, x, null, 0, (v, u) -> v * sigmoid(v));
    }

    @Override
    public void siluBackward(Tensor dx, Tensor dy, Tensor x, double beta) {
        zip(dx, dy, x, beta, (g, v) -> {
            double s = sigmoid(v);
            return g * (s + v * s * (1 - s));
        });
    }

    // ------------------------------------------------------------------ normalisation and modulation

    /** Rows of x per batch element, given the per-sample tensor's row count. */
    private static int rowsPerBatch(Tensor x, Tensor perSample, String op) {
        long b = perSample.rows();
        if (b == 0 || x.rows() % b != 0)
            throw new IllegalArgumentException(op + ": " + x.rows() + " rows don't split evenly into " + b + " batch elements");
        if (perSample.cols() != x.cols())
            throw new IllegalArgumentException(op + ": per-sample tensor " + perSample + " has " + perSample.cols() + " columns, x has " + x.cols());
        return (int) (x.rows() / b);
    }

    @Override
    public void layerNormModulate(Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor shift, Tensor scale) {
        CpuTensor o = cpu(out), xi = cpu(x);
        sameMatrix(o, xi, "layerNormModulate");
        CpuTensor sh = shift == null ? null : cpu(shift), sc = scale == null ? null : cpu(scale);
        int per = sc == null ? (int) xi.rows() : rowsPerBatch(xi, sc, "layerNormModulate");
        int rows = (int) xi.rows(), d = (int) xi.cols();
        double[] od = o.data(), xd = xi.data();
        double[] md = mean == null ? null : cpu(mean).data(), rd = rstd == null ? null : cpu(rstd).data();
        for (int r = 0; r < rows; r++) {
            int bx = xi.base(r), bo = o.base(r);
            double mu = 0;
            for (int c = 0; c < d; c++) mu += xd[bx + c];
            mu /= d;
            double var = 0;
            for (int c = 0; c < d; c++) var += (xd[bx + c] - mu) * (xd[bx + c] - mu);
            var /= d;
            double rs = 1 / Math.sqrt(var + LN_EPS);
            if (md != null) md[cpu(mean).base(0) + r] = mean.dtype().round(mu);
            if (rd != null) rd[cpu(rstd).base(0) + r] = rstd.dtype().round(rs);
            int b = r / per;
            for (int c = 0; c < d; c++) {
                double n = (xd[bx + c] - mu) * rs;
                double v = sc == null ? n : (1 + sc.data()[sc.base(b) + c]) * n + (sh == null ? 0 : sh.data()[sh.base(b) + c]);
                od[bo + c] = o.dtype().round(v);
            }
        }
    }

    @Override
    public void layerNormModulateBackward(Tensor dx, Tensor dshift, Tensor dscale, Tensor dy, Tensor x, Tensor mean,
                                          Tensor rstd, Tensor scale, double beta) {
        CpuTensor g = cpu(dy), xi = cpu(x), dxi = cpu(dx);
        sameMatrix(g, xi, "layerNormModulateBackward");
        sameMatrix(dxi, xi, "layerNormModulateBackward");
        CpuTensor sc = scale == null ? null : cpu(scale);
        int per = sc == null ? (int) xi.rows() : rowsPerBatch(xi, sc, "layerNormModulateBackward");
        int rows = (int) xi.rows(), d = (int) xi.cols();
        int batches = rows / per;
        double[][] dsh = new double[batches][d], dsc = new double[batches][d];
        double[] md = toDoubles(mean), rd = toDoubles(rstd);
        double[] gd = g.data(), xd = xi.data(), dd = dxi.data();
        double[] gs = new double[d], n = new double[d];
        for (int r = 0; r < rows; r++) {
            int b = r / per, bg = g.base(r), bx = xi.base(r), bd = dxi.base(r);
            double mgs = 0, mgn = 0;
            for (int c = 0; c < d; c++) {
                n[c] = (xd[bx + c] - md[r]) * rd[r];
                double s = sc == null ? 1 : 1 + sc.data()[sc.base(b) + c];
                gs[c] = gd[bg + c] * s;
                mgs += gs[c];
                mgn += gs[c] * n[c];
                dsh[b][c] += gd[bg + c];
                dsc[b][c] += gd[bg + c] * n[c];
            }
            mgs /= d;
            mgn /= d;
            for (int c = 0; c < d; c++) {
                double v = rd[r] * (gs[c] - mgs - n[c] * mgn);
                if (beta != 0) v += beta * dd[bd + c];
                dd[bd + c] = dxi.dtype().round(v);
            }
        }
        if (dshift != null) storeRows(cpu(dshift), dsh);
        if (dscale != null) storeRows(cpu(dscale), dsc);
    }

    private static void storeRows(CpuTensor t, double[][] v) {
        if (t.rows() != v.length || t.cols() != v[0].length)
            throw new IllegalArgumentException("output " + t + " is not [" + v.length + ", " + v[0].length + "]");
        double[] d = t.data();
        for (int r = 0; r < v.length; r++) for (int c = 0; c < v[r].length; c++) d[t.base(r) + c] = t.dtype().round(v[r][c]);
    }

    @Override
    public void gatedResidual(Tensor x, Tensor gate, Tensor y) {
        CpuTensor xi = cpu(x), gi = cpu(gate), yi = cpu(y);
        sameMatrix(xi, yi, "gatedResidual");
        int per = rowsPerBatch(xi, gi, "gatedResidual");
        double[] xd = xi.data(), gd = gi.data(), yd = yi.data();
        for (int r = 0; r < xi.rows(); r++) {
            int bx = xi.base(r), by = yi.base(r), bg = gi.base(r / per);
            for (int c = 0; c < xi.cols(); c++) xd[bx + c] = xi.dtype().round(xd[bx + c] + gd[bg + c] * yd[by + c]);
        }
    }

    @Override
    public void gatedResidualBackward(Tensor dy, Tensor dgate, Tensor dx, Tensor gate, Tensor y, double betaDy) {
        CpuTensor dyi = cpu(dy), dxi = cpu(dx), gi = cpu(gate), yi = cpu(y);
        sameMatrix(dxi, yi, "gatedResidualBackward");
        sameMatrix(dxi, dyi, "gatedResidualBackward");
        int per = rowsPerBatch(dxi, gi, "gatedResidualBackward");
        int rows = (int) dxi.rows(), d = (int) dxi.cols();
        double[][] dg = new double[rows / per][d];
        double[] dyd = dyi.data(), dxd = dxi.data(), gd = gi.data(), yd = yi.data();
        for (int r = 0; r < rows; r++) {
            int b = r / per, bdy = dyi.base(r), bdx = dxi.base(r), by = yi.base(r), bg = gi.base(b);
            for (int c = 0; c < d; c++) {
                double g = dxd[bdx + c];
                double v = gd[bg + c] * g;
                if (betaDy != 0) v += betaDy * dyd[bdy + c];
                dyd[bdy + c] = dyi.dtype().round(v);
                dg[b][c] += g * yd[by + c];
            }
        }
        if (dgate != null) storeRows(cpu(dgate), dg);
    }

    // ------------------------------------------------------------------ QK norm + RoPE

    /** Shape bookkeeping shared by qkNormRope and its backward. */
    private record QkvGeometry(int batch, int len, int ltot, int heads, int headDim) {
        static QkvGeometry of(Tensor q, Tensor qkv, Tensor pe, int heads, long seqOffset) {
            int hd = (int) q.cols();
            if (hd % heads != 0) throw new IllegalArgumentException("q width " + hd + " is not a multiple of " + heads + " heads");
            int dh = hd / heads;
            if (qkv.cols() != 3L * hd) throw new IllegalArgumentException("qkv " + qkv + " must have 3 * " + hd + " columns");
            int ltot = (int) pe.dim(0);
            if (pe.rank() != 3 || pe.dim(1) != dh / 2 || pe.dim(2) != 2)
                throw new IllegalArgumentException("pe " + pe + " must be [" + ltot + ", " + dh / 2 + ", 2]");
            if (q.rows() % ltot != 0) throw new IllegalArgumentException("q rows " + q.rows() + " not a multiple of pe length " + ltot);
            int batch = (int) (q.rows() / ltot);
            int len = (int) (qkv.rows() / batch);
            if ((long) len * batch != qkv.rows() || seqOffset + len > ltot)
                throw new IllegalArgumentException("qkv " + qkv + " does not fit rows [" + seqOffset + ", +" + len + ") of " + ltot);
            return new QkvGeometry(batch, len, ltot, heads, dh);
        }
    }

    @Override
    public void qkNormRope(Tensor q, Tensor k, Tensor v, Tensor qRstd, Tensor kRstd, Tensor qkv, Tensor qScale,
                           Tensor kScale, Tensor pe, int heads, long seqOffset) {
        QkvGeometry g = QkvGeometry.of(q, qkv, pe, heads, seqOffset);
        CpuTensor in = cpu(qkv);
        double[] pd = toDoubles(pe), qs = toDoubles(qScale), ks = toDoubles(kScale);
        int hd = g.heads * g.headDim;
        CpuTensor[] outs = {cpu(q), cpu(k), cpu(v)};
        CpuTensor[] rstds = {qRstd == null ? null : cpu(qRstd), kRstd == null ? null : cpu(kRstd)};
        double[] x = new double[g.headDim];
        for (int b = 0; b < g.batch; b++) {
            for (int l = 0; l < g.len; l++) {
                int inBase = in.base((long) b * g.len + l);
                long pos = seqOffset + l;
                for (int part = 0; part < 3; part++) {
                    CpuTensor o = outs[part];
                    int outBase = o.base((long) b * g.ltot + pos);
                    for (int h = 0; h < g.heads; h++) {
                        int src = inBase + part * hd + h * g.headDim;
                        if (part == 2) {
                            for (int d = 0; d < g.headDim; d++) o.data()[outBase + h * g.headDim + d] = o.dtype().round(in.data()[src + d]);
                            continue;
                        }
                        double ss = 0;
                        for (int d = 0; d < g.headDim; d++) {
                            x[d] = in.data()[src + d];
                            ss += x[d] * x[d];
                        }
                        double rs = 1 / Math.sqrt(ss / g.headDim + RMS_EPS);
                        if (rstds[part] != null)
                            rstds[part].data()[rstds[part].base(0) + ((b * g.heads + h) * g.len + l)] = rs;
                        double[] scale = part == 0 ? qs : ks;
                        for (int d = 0; d < g.headDim; d++) x[d] = x[d] * rs * scale[d];
                        for (int j = 0; j < g.headDim / 2; j++) {
                            double cos = pd[(int) ((pos * (g.headDim / 2) + j) * 2)], sin = pd[(int) ((pos * (g.headDim / 2) + j) * 2 + 1)];
                            double x0 = x[2 * j], x1 = x[2 * j + 1];
                            o.data()[outBase + h * g.headDim + 2 * j] = o.dtype().round(cos * x0 - sin * x1);
                            o.data()[outBase + h * g.headDim + 2 * j + 1] = o.dtype().round(sin * x0 + cos * x1);
                        }
                    }
                }
            }
        }
    }

    @Override
    public void qkNormRopeBackward(Tensor dqkv, Tensor dq, Tensor dk, Tensor dv, Tensor qkv, Tensor qScale,
                                   Tensor kScale, Tensor pe, int heads, long seqOffset) {
        QkvGeometry g = QkvGeometry.of(dq, qkv, pe, heads, seqOffset);
        CpuTensor in = cpu(qkv), out = cpu(dqkv);
        sameMatrix(out, in, "qkNormRopeBackward");
        double[] pd = toDoubles(pe), qs = toDoubles(qScale), ks = toDoubles(kScale);
        int hd = g.heads * g.headDim, dh = g.headDim;
        CpuTensor[] grads = {cpu(dq), cpu(dk), cpu(dv)};
        double[] x = new double[dh], gn = new double[dh];
        for (int b = 0; b < g.batch; b++) {
            for (int l = 0; l < g.len; l++) {
                int inBase = in.base((long) b * g.len + l), outBase = out.base((long) b * g.len + l);
                long pos = seqOffset + l;
                for (int part = 0; part < 3; part++) {
                    CpuTensor gr = grads[part];
                    int gBase = gr.base((long) b * g.ltot + pos);
                    for (int h = 0; h < g.heads; h++) {
                        int src = inBase + part * hd + h * dh, dst = outBase + part * hd + h * dh, gsrc = gBase + h * dh;
                        if (part == 2) {
                            for (int d = 0; d < dh; d++) out.data()[dst + d] = out.dtype().round(gr.data()[gsrc + d]);
                            continue;
                        }
                        // undo the rotation: gradient w.r.t. the normalised-and-scaled vector
                        for (int j = 0; j < dh / 2; j++) {
                            double cos = pd[(int) ((pos * (dh / 2) + j) * 2)], sin = pd[(int) ((pos * (dh / 2) + j) * 2 + 1)];
                            double g0 = gr.data()[gsrc + 2 * j], g1 = gr.data()[gsrc + 2 * j + 1];
                            gn[2 * j] = cos * g0 + sin * g1;
                            gn[2 * j + 1] = -sin * g0 + cos * g1;
                        }
                        double[] scale = part == 0 ? qs : ks;
                        double ss = 0, dot = 0;
                        for (int d = 0; d < dh; d++) {
                            x[d] = in.data()[src + d];
                            ss += x[d] * x[d];
                            gn[d] *= scale[d];
                            dot += gn[d] * x[d];
                        }
                        double rs = 1 / Math.sqrt(ss / dh + RMS_EPS);
                        for (int d = 0; d < dh; d++)
                            out.data()[dst + d] = out.dtype().round(rs * gn[d] - rs * rs * rs * x[d] * dot / dh);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ attention

    @Override
    public void attention(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int heads) {
        CpuTensor o = cpu(out), qi = cpu(q), ki = cpu(k), vi = cpu(v);
        int dh = (int) (qi.cols() / heads);
        int batch = attnBatch(qi, lse, heads);
        int len = (int) (qi.rows() / batch), lk = (int) (ki.rows() / batch);
        double scale = 1 / Math.sqrt(dh);
        CpuTensor ls = lse == null ? null : cpu(lse);
        IntStream.range(0, batch * heads).parallel().forEach(bh -> {
            int b = bh / heads, h = bh % heads;
            double[] s = new double[lk];
            for (int i = 0; i < len; i++) {
                int qb = qi.base((long) b * len + i) + h * dh;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < lk; j++) {
                    int kb = ki.base((long) b * lk + j) + h * dh;
                    double acc = 0;
                    for (int d = 0; d < dh; d++) acc += qi.data()[qb + d] * ki.data()[kb + d];
                    s[j] = acc * scale;
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j < lk; j++) sum += (s[j] = Math.exp(s[j] - max));
                if (ls != null) ls.data()[ls.base(0) + (bh * len + i)] = ls.dtype().round(max + Math.log(sum));
                int ob = o.base((long) b * len + i) + h * dh;
                for (int d = 0; d < dh; d++) {
                    double acc = 0;
                    for (int j = 0; j < lk; j++) acc += s[j] * vi.data()[vi.base((long) b * lk + j) + h * dh + d];
                    o.data()[ob + d] = o.dtype().round(acc / sum);
                }
            }
        });
    }

    private static int attnBatch(Tensor q, Tensor lse, int heads) {
        if (q.cols() % heads != 0) throw new IllegalArgumentException("q width " + q.cols() + " not divisible by " + heads + " heads");
        if (q.rank() == 3) return (int) q.dim(0);
        if (lse != null && lse.rank() == 3) return (int) lse.dim(0);
        return 1;
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                                  Tensor out, Tensor lse, int heads) {
        CpuTensor qi = cpu(q), ki = cpu(k), vi = cpu(v), oi = cpu(out), go = cpu(dout);
        CpuTensor gq = cpu(dq), gk = cpu(dk), gv = cpu(dv);
        int dh = (int) (qi.cols() / heads);
        int batch = attnBatch(qi, lse, heads);
        int len = (int) (qi.rows() / batch), lk = (int) (ki.rows() / batch);
        double scale = 1 / Math.sqrt(dh);
        double[] lsed = toDoubles(lse);
        IntStream.range(0, batch * heads).parallel().forEach(bh -> {
            int b = bh / heads, h = bh % heads;
            double[][] gkAcc = new double[lk][dh], gvAcc = new double[lk][dh];
            double[] p = new double[lk], dp = new double[lk];
            for (int i = 0; i < len; i++) {
                int qb = qi.base((long) b * len + i) + h * dh, ob = oi.base((long) b * len + i) + h * dh;
                int gob = go.base((long) b * len + i) + h * dh;
                double l = lsed[bh * len + i];
                double rowDot = 0;
                for (int d = 0; d < dh; d++) rowDot += go.data()[gob + d] * oi.data()[ob + d];
                for (int j = 0; j < lk; j++) {
                    int kb = ki.base((long) b * lk + j) + h * dh, vb = vi.base((long) b * lk + j) + h * dh;
                    double s = 0, g = 0;
                    for (int d = 0; d < dh; d++) {
                        s += qi.data()[qb + d] * ki.data()[kb + d];
                        g += go.data()[gob + d] * vi.data()[vb + d];
                    }
                    p[j] = Math.exp(s * scale - l);
                    dp[j] = g;
                }
                int gqb = gq.base((long) b * len + i) + h * dh;
                double[] dqRow = new double[dh];
                for (int j = 0; j < lk; j++) {
                    double ds = p[j] * (dp[j] - rowDot) * scale;
                    int kb = ki.base((long) b * lk + j) + h * dh;
                    for (int d = 0; d < dh; d++) {
                        dqRow[d] += ds * ki.data()[kb + d];
                        gkAcc[j][d] += ds * qi.data()[qb + d];
                        gvAcc[j][d] += p[j] * go.data()[gob + d];
                    }
                }
                for (int d = 0; d < dh; d++) gq.data()[gqb + d] = gq.dtype().round(dqRow[d]);
            }
            for (int j = 0; j < lk; j++) {
                int gkb = gk.base((long) b * lk + j) + h * dh, gvb = gv.base((long) b * lk + j) + h * dh;
                for (int d = 0; d < dh; d++) {
                    gk.data()[gkb + d] = gk.dtype().round(gkAcc[j][d]);
                    gv.data()[gvb + d] = gv.dtype().round(gvAcc[j][d]);
                }
            }
        });
    }

    // ------------------------------------------------------------------ embeddings and sequence

    @Override
    public void timestepEmbedding(Tensor out, Tensor t, double timeFactor, double maxPeriod) {
        CpuTensor o = cpu(out);
        double[] ts = toDoubles(t);
        int dim = (int) o.cols(), half = dim / 2;
        if (o.rows() != ts.length) throw new IllegalArgumentException("timestepEmbedding: " + ts.length + " timesteps for " + o);
        for (int b = 0; b < ts.length; b++) {
            int base = o.base(b);
            // FLUX computes the frequencies and arguments in fp32; so do we, then cos/sin in double
            float tf = (float) (timeFactor * ts[b]);
            for (int i = 0; i < half; i++) {
                float freq = (float) Math.exp(-Math.log(maxPeriod) * i / half);
                float arg = tf * freq;
                o.data()[base + i] = o.dtype().round(Math.cos(arg));
                o.data()[base + half + i] = o.dtype().round(Math.sin(arg));
            }
            if (dim % 2 == 1) o.data()[base + dim - 1] = 0;
        }
    }

    @Override
    public void concatSeq(Tensor out, Tensor a, Tensor b, int batch) {
        seqCopy(cpu(out), cpu(a), cpu(b), batch, true);
    }

    @Override
    public void splitSeq(Tensor a, Tensor b, Tensor in, int batch) {
        seqCopy(cpu(in), cpu(a), cpu(b), batch, false);
    }

    private static void seqCopy(CpuTensor whole, CpuTensor a, CpuTensor b, int batch, boolean gather) {
        if (a.cols() != whole.cols() || b.cols() != whole.cols() || a.rows() + b.rows() != whole.rows()
                || a.rows() % batch != 0 || b.rows() % batch != 0)
            throw new IllegalArgumentException("sequence concat/split: " + a + " + " + b + " vs " + whole + " with batch " + batch);
        int la = (int) (a.rows() / batch), lb = (int) (b.rows() / batch), d = (int) whole.cols();
        for (int bi = 0; bi < batch; bi++) {
            for (int r = 0; r < la + lb; r++) {
                CpuTensor part = r < la ? a : b;
                int pr = bi * (r < la ? la : lb) + (r < la ? r : r - la);
                int wb = whole.base((long) bi * (la + lb) + r), pb = part.base(pr);
                for (int c = 0; c < d; c++) {
                    if (gather) whole.data()[wb + c] = whole.dtype().round(part.data()[pb + c]);
                    else part.data()[pb + c] = part.dtype().round(whole.data()[wb + c]);
                }
            }
        }
    }

    // ------------------------------------------------------------------ training

    @Override
    public void flowMatchMix(Tensor xt, Tensor target, Tensor x0, Tensor noise, Tensor t) {
        CpuTensor o = cpu(xt), tg = cpu(target), x = cpu(x0), n = cpu(noise);
        sameMatrix(o, x, "flowMatchMix");
        sameMatrix(tg, x, "flowMatchMix");
        sameMatrix(n, x, "flowMatchMix");
        double[] ts = toDoubles(t);
        int per = (int) (x.rows() / ts.length);
        for (int r = 0; r < x.rows(); r++) {
            double tb = ts[r / per];
            for (int c = 0; c < x.cols(); c++) {
                double xv = x.data()[x.base(r) + c], nv = n.data()[n.base(r) + c];
                o.data()[o.base(r) + c] = o.dtype().round((1 - tb) * xv + tb * nv);
                tg.data()[tg.base(r) + c] = tg.dtype().round(nv - xv);
            }
        }
    }

    @Override
    public void mseLoss(Tensor loss, Tensor grad, Tensor pred, Tensor target, double gradScale) {
        CpuTensor p = cpu(pred), tg = cpu(target);
        sameMatrix(p, tg, "mseLoss");
        long n = p.numel();
        double sum = 0;
        for (int r = 0; r < p.rows(); r++) {
            for (int c = 0; c < p.cols(); c++) {
                double diff = p.data()[p.base(r) + c] - tg.data()[tg.base(r) + c];
                sum += diff * diff;
                if (grad != null) {
                    CpuTensor g = cpu(grad);
                    g.data()[g.base(r) + c] = g.dtype().round(gradScale * 2 * diff / n);
                }
            }
        }
        CpuTensor l = cpu(loss);
        l.data()[l.base(0)] = l.dtype().round(sum / n);
    }

    @Override
    public void sumOfSquares(Tensor out, List<Tensor> tensors) {
        double s = 0;
        for (Tensor t : tensors) for (double v : toDoubles(t)) s += v * v;
        CpuTensor o = cpu(out);
        o.data()[o.base(0)] = o.dtype().round(s);
    }

    @Override
    public void adamw(List<Tensor> params, List<Tensor> grads, List<Tensor> m, List<Tensor> v, AdamWConfig cfg,
                      long step, double lr, Tensor gradNormSq, double gradScale) {
        if (params.size() != grads.size() || params.size() != m.size() || params.size() != v.size())
            throw new IllegalArgumentException("adamw: params, grads and moments lists differ in length");
        double clip = 1;
        if (gradNormSq != null && cfg.maxGradNorm() > 0) {
            double norm = Math.sqrt(toDoubles(gradNormSq)[0]) * gradScale;
            if (norm > cfg.maxGradNorm()) clip = cfg.maxGradNorm() / (norm + 1e-6);
        }
        double bc1 = 1 - Math.pow(cfg.beta1(), step), bc2 = 1 - Math.pow(cfg.beta2(), step);
        double gmul = clip * gradScale;
        for (int i = 0; i < params.size(); i++) {
            CpuTensor p = cpu(params.get(i)), g = cpu(grads.get(i)), mi = cpu(m.get(i)), vi = cpu(v.get(i));
            sameMatrix(p, g, "adamw");
            for (int r = 0; r < p.rows(); r++) {
                for (int c = 0; c < p.cols(); c++) {
                    int pi = p.base(r) + c;
                    double gv = g.data()[g.base(r) + c] * gmul;
                    int mIdx = mi.base(r) + c, vIdx = vi.base(r) + c;
                    double mv = mi.dtype().round(cfg.beta1() * mi.data()[mIdx] + (1 - cfg.beta1()) * gv);
                    double vv = vi.dtype().round(cfg.beta2() * vi.data()[vIdx] + (1 - cfg.beta2()) * gv * gv);
                    mi.data()[mIdx] = mv;
                    vi.data()[vIdx] = vv;
                    double pv = p.data()[pi] * (1 - lr * cfg.weightDecay());
                    pv -= lr / bc1 * mv / (Math.sqrt(vv) / Math.sqrt(bc2) + cfg.eps());
                    p.data()[pi] = p.dtype().round(pv);
                }
            }
        }
    }

    @Override
    public boolean hasNonFinite(List<Tensor> tensors) {
        for (Tensor t : tensors) for (double v : toDoubles(t)) if (!Double.isFinite(v)) return true;
        return false;
    }

    // ------------------------------------------------------------------ text encoders and autoencoder (inference)

    /** Index of element 0 of a tensor whose elements must be one contiguous run (image ops, embedding tables). */
    private static int contiguousBase(CpuTensor t, String op) {
        if (!t.isContiguous()) throw new IllegalArgumentException(op + ": " + t + " must be contiguous");
        return t.base(0);
    }

    private static int[] nchw(Tensor t, String op, String what) {
        if (t.rank() != 4) throw new IllegalArgumentException(op + ": " + what + " must be [B, C, H, W], got " + t);
        return new int[] {(int) t.dim(0), (int) t.dim(1), (int) t.dim(2), (int) t.dim(3)};
    }

    @Override
    public void embedding(Tensor out, Tensor ids, Tensor table) {
        CpuTensor o = cpu(out), tb = cpu(table);
        double[] id = toDoubles(ids);
        if (tb.rank() != 2) throw new IllegalArgumentException("embedding: table must be [V, D], got " + table);
        int vocab = (int) tb.dim(0), d = (int) tb.cols();
        if (o.rows() != id.length || o.cols() != d)
            throw new IllegalArgumentException("embedding: output " + out + " is not [" + id.length + ", " + d + "]");
        for (int i = 0; i < id.length; i++) {
            int v = (int) id[i];
            if (v < 0 || v >= vocab) throw new IllegalArgumentException("embedding: id " + v + " at position " + i + " is outside the vocabulary [0, " + vocab + ")");
            int bo = o.base(i), bt = tb.base(v);
            for (int c = 0; c < d; c++) o.data()[bo + c] = o.dtype().round(tb.data()[bt + c]);
        }
    }

    @Override
    public void rmsNorm(Tensor out, Tensor x, Tensor weight, double eps) {
        CpuTensor o = cpu(out), xi = cpu(x);
        sameMatrix(o, xi, "rmsNorm");
        double[] w = toDoubles(weight);
        if (w.length != xi.cols()) throw new IllegalArgumentException("rmsNorm: weight " + weight + " does not match " + xi.cols() + " columns");
        int d = (int) xi.cols();
        IntStream.range(0, (int) xi.rows()).parallel().forEach(r -> {
            int bx = xi.base(r), bo = o.base(r);
            double ss = 0;
            for (int c = 0; c < d; c++) ss += xi.data()[bx + c] * xi.data()[bx + c];
            double rs = 1 / Math.sqrt(ss / d + eps);
            for (int c = 0; c < d; c++) o.data()[bo + c] = o.dtype().round(w[c] * (xi.data()[bx + c] * rs));
        });
    }

    @Override
    public void layerNorm(Tensor out, Tensor x, Tensor weight, Tensor bias, double eps) {
        CpuTensor o = cpu(out), xi = cpu(x);
        sameMatrix(o, xi, "layerNorm");
        double[] w = toDoubles(weight), b = bias == null ? null : toDoubles(bias);
        int d = (int) xi.cols();
        if (w.length != d || (b != null && b.length != d))
            throw new IllegalArgumentException("layerNorm: weight/bias do not match " + d + " columns");
        IntStream.range(0, (int) xi.rows()).parallel().forEach(r -> {
            int bx = xi.base(r), bo = o.base(r);
            double mu = 0;
            for (int c = 0; c < d; c++) mu += xi.data()[bx + c];
            mu /= d;
            double var = 0;
            for (int c = 0; c < d; c++) var += (xi.data()[bx + c] - mu) * (xi.data()[bx + c] - mu);
            double rs = 1 / Math.sqrt(var / d + eps);
            for (int c = 0; c < d; c++)
                o.data()[bo + c] = o.dtype().round((xi.data()[bx + c] - mu) * rs * w[c] + (b == null ? 0 : b[c]));
        });
    }

    @Override
    public void quickGelu(Tensor out, Tensor x) {
        zip(out, x, null, 0, (v, u) -> v * sigmoid(1.702 * v));
    }

    @Override
    public void attentionInference(Tensor out, Tensor q, Tensor k, Tensor v, int batch, int heads, double scale, Tensor bias,
                                   boolean causal) {
        CpuTensor o = cpu(out), qi = cpu(q), ki = cpu(k), vi = cpu(v);
        if (qi.cols() % heads != 0 || ki.cols() != qi.cols() || vi.cols() != qi.cols() || o.cols() != qi.cols())
            throw new IllegalArgumentException("attentionInference: q/k/v/out widths must be equal multiples of " + heads + " heads");
        if (qi.rows() % batch != 0 || ki.rows() % batch != 0 || vi.rows() != ki.rows() || o.rows() != qi.rows())
            throw new IllegalArgumentException("attentionInference: rows of q " + q + ", k " + k + ", v " + v + ", out " + out + " don't fit batch " + batch);
        int dh = (int) (qi.cols() / heads), lq = (int) (qi.rows() / batch), lk = (int) (ki.rows() / batch);
        double[] bs = null;
        if (bias != null) {
            if (bias.numel() != (long) heads * lq * lk)
                throw new IllegalArgumentException("attentionInference: bias " + bias + " is not [" + heads + ", " + lq + ", " + lk + "]");
            bs = toDoubles(bias);
        }
        double[] bias0 = bs;
        IntStream.range(0, batch * heads).parallel().forEach(bh -> {
            int b = bh / heads, h = bh % heads;
            double[] s = new double[lk];
            for (int i = 0; i < lq; i++) {
                int qb = qi.base((long) b * lq + i) + h * dh;
                double max = Double.NEGATIVE_INFINITY;
                int kmax = causal ? Math.min(lk, i + 1) : lk;
                for (int j = 0; j < kmax; j++) {
                    int kb = ki.base((long) b * lk + j) + h * dh;
                    double acc = 0;
                    for (int d = 0; d < dh; d++) acc += qi.data()[qb + d] * ki.data()[kb + d];
                    s[j] = acc * scale + (bias0 == null ? 0 : bias0[(h * lq + i) * lk + j]);
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j < kmax; j++) sum += (s[j] = Math.exp(s[j] - max));
                int ob = o.base((long) b * lq + i) + h * dh;
                double[] acc = new double[dh];
                for (int j = 0; j < kmax; j++) {
                    int vb = vi.base((long) b * lk + j) + h * dh;
                    double p = s[j] / sum;
                    for (int d = 0; d < dh; d++) acc[d] += p * vi.data()[vb + d];
                }
                for (int d = 0; d < dh; d++) o.data()[ob + d] = o.dtype().round(acc[d]);
            }
        });
    }

    @Override
    public void conv2d(Tensor out, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        CpuTensor o = cpu(out), xi = cpu(x), wt = cpu(weight);
        int[] xs = nchw(xi, "conv2d", "x"), os = nchw(o, "conv2d", "out"), ws = nchw(wt, "conv2d", "weight");
        int batch = xs[0], cin = xs[1], h = xs[2], w = xs[3], cout = ws[0], kh = ws[2], kw = ws[3];
        if (ws[1] != cin) throw new IllegalArgumentException("conv2d: weight " + weight + " takes " + ws[1] + " input channels, x has " + cin);
        if (stride < 1 || padding < 0) throw new IllegalArgumentException("conv2d: stride " + stride + ", padding " + padding);
        int ho = (h + 2 * padding - kh) / stride + 1, wo = (w + 2 * padding - kw) / stride + 1;
        if (os[0] != batch || os[1] != cout || os[2] != ho || os[3] != wo)
            throw new IllegalArgumentException("conv2d: output " + out + " is not [" + batch + ", " + cout + ", " + ho + ", " + wo + "]");
        double[] bv = bias == null ? null : toDoubles(bias);
        if (bv != null && bv.length != cout) throw new IllegalArgumentException("conv2d: bias " + bias + " is not [" + cout + "]");
        int xb = contiguousBase(xi, "conv2d"), wb = contiguousBase(wt, "conv2d"), ob = contiguousBase(o, "conv2d");
        double[] xd = xi.data(), wd = wt.data(), od = o.data();
        DType dt = o.dtype();
        IntStream.range(0, batch * cout).parallel().forEach(bc -> {
            int b = bc / cout, co = bc % cout;
            double[] acc = new double[ho * wo];
            for (int ci = 0; ci < cin; ci++) {
                int xc = xb + (b * cin + ci) * h * w;
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        double wv = wd[wb + ((co * cin + ci) * kh + ky) * kw + kx];
                        if (wv == 0) continue;
                        for (int oy = 0; oy < ho; oy++) {
                            int iy = oy * stride - padding + ky;
                            if (iy < 0 || iy >= h) continue;
                            int row = xc + iy * w, arow = oy * wo;
                            for (int ox = 0; ox < wo; ox++) {
                                int ix = ox * stride - padding + kx;
                                if (ix >= 0 && ix < w) acc[arow + ox] += wv * xd[row + ix];
                            }
                        }
                    }
            }
            int base = ob + (b * cout + co) * ho * wo;
            double bb = bv == null ? 0 : bv[co];
            for (int i = 0; i < ho * wo; i++) od[base + i] = dt.round(acc[i] + bb);
        });
    }

    @Override
    public void groupNorm(Tensor out, Tensor x, int groups, Tensor weight, Tensor bias, double eps, boolean silu) {
        CpuTensor o = cpu(out), xi = cpu(x);
        if (xi.rank() < 2 || o.numel() != xi.numel()) throw new IllegalArgumentException("groupNorm: x " + x + " and out " + out + " must be [B, C, ...] of one size");
        int batch = (int) xi.dim(0), ch = (int) xi.dim(1);
        if (groups < 1 || ch % groups != 0) throw new IllegalArgumentException("groupNorm: " + ch + " channels don't split into " + groups + " groups");
        int spatial = (int) (xi.numel() / ((long) batch * ch)), cpg = ch / groups, n = cpg * spatial;
        double[] w = toDoubles(weight), bv = bias == null ? null : toDoubles(bias);
        if (w.length != ch || (bv != null && bv.length != ch)) throw new IllegalArgumentException("groupNorm: weight/bias must have " + ch + " elements");
        int xb = contiguousBase(xi, "groupNorm"), obase = contiguousBase(o, "groupNorm");
        double[] xd = xi.data(), od = o.data();
        DType dt = o.dtype();
        IntStream.range(0, batch * groups).parallel().forEach(bg -> {
            int start = bg * n;
            double mu = 0;
            for (int i = 0; i < n; i++) mu += xd[xb + start + i];
            mu /= n;
            double var = 0;
            for (int i = 0; i < n; i++) var += (xd[xb + start + i] - mu) * (xd[xb + start + i] - mu);
            double rs = 1 / Math.sqrt(var / n + eps);
            int g = bg % groups;
            for (int i = 0; i < n; i++) {
                int c = g * cpg + i / spatial;
                double v = (xd[xb + start + i] - mu) * rs * w[c] + (bv == null ? 0 : bv[c]);
                if (silu) v = v * sigmoid(v);
                od[obase + start + i] = dt.round(v);
            }
        });
    }

    @Override
    public void upsampleNearest2x(Tensor out, Tensor x) {
        CpuTensor o = cpu(out), xi = cpu(x);
        int[] xs = nchw(xi, "upsampleNearest2x", "x"), os = nchw(o, "upsampleNearest2x", "out");
        if (os[0] != xs[0] || os[1] != xs[1] || os[2] != 2 * xs[2] || os[3] != 2 * xs[3])
            throw new IllegalArgumentException("upsampleNearest2x: output " + out + " is not twice " + x);
        int h = xs[2], w = xs[3], planes = xs[0] * xs[1];
        int xb = contiguousBase(xi, "upsampleNearest2x"), ob = contiguousBase(o, "upsampleNearest2x");
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < 2 * h; y++)
                for (int xx = 0; xx < 2 * w; xx++)
                    o.data()[ob + (p * 2 * h + y) * 2 * w + xx] = o.dtype().round(xi.data()[xb + (p * h + y / 2) * w + xx / 2]);
    }

    @Override
    public void pad2d(Tensor out, Tensor x, int top, int bottom, int left, int right) {
        CpuTensor o = cpu(out), xi = cpu(x);
        int[] xs = nchw(xi, "pad2d", "x"), os = nchw(o, "pad2d", "out");
        if (top < 0 || bottom < 0 || left < 0 || right < 0) throw new IllegalArgumentException("pad2d: negative padding");
        if (os[0] != xs[0] || os[1] != xs[1] || os[2] != xs[2] + top + bottom || os[3] != xs[3] + left + right)
            throw new IllegalArgumentException("pad2d: output " + out + " does not fit " + x + " padded by (" + top + ", " + bottom + ", " + left + ", " + right + ")");
        int h = xs[2], w = xs[3], ho = os[2], wo = os[3], planes = xs[0] * xs[1];
        int xb = contiguousBase(xi, "pad2d"), ob = contiguousBase(o, "pad2d");
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < ho; y++)
                for (int xx = 0; xx < wo; xx++) {
                    int iy = y - top, ix = xx - left;
                    double v = iy >= 0 && iy < h && ix >= 0 && ix < w ? xi.data()[xb + (p * h + iy) * w + ix] : 0;
                    o.data()[ob + (p * ho + y) * wo + xx] = o.dtype().round(v);
                }
    }

    @Override
    public void transpose(Tensor out, Tensor x) {
        CpuTensor o = cpu(out), xi = cpu(x);
        if (xi.rank() < 2 || o.rank() != xi.rank()) throw new IllegalArgumentException("transpose: " + x + " -> " + out);
        int m = (int) xi.dim(-2), n = (int) xi.dim(-1), batch = (int) (xi.numel() / ((long) m * n));
        if (o.dim(-2) != n || o.dim(-1) != m || o.numel() != xi.numel())
            throw new IllegalArgumentException("transpose: output " + out + " is not the transpose of " + x);
        int xb = contiguousBase(xi, "transpose"), ob = contiguousBase(o, "transpose");
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                    o.data()[ob + (b * n + j) * m + i] = o.dtype().round(xi.data()[xb + (b * m + i) * n + j]);
    }

    @Override
    public void close() {}

    // ------------------------------------------------------------------ helpers

    static CpuTensor cpu(Tensor t) {
        if (!(t instanceof CpuTensor c))
            throw new IllegalArgumentException("tensor " + t + " belongs to backend " + t.backend().name() + ", not cpu");
        c.checkLive();
        return c;
    }

    private static void sameMatrix(Tensor a, Tensor b, String op) {
        if (a.rows() != b.rows() || a.cols() != b.cols())
            throw new IllegalArgumentException(op + ": " + a + " and " + b + " differ in shape (rows x cols "
                    + a.rows() + "x" + a.cols() + " vs " + b.rows() + "x" + b.cols() + ")");
    }
}
