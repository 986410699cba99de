package dev.impasto.tensor.cuda;

import static dev.impasto.bindings.torch.torch_shim_h.aoti_torch_cuda_convolution;

import dev.impasto.cuda.CublasLt;
import dev.impasto.cuda.CudaException;
import dev.impasto.cuda.TorchRuntime;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;

/**
 * CUDA implementations of the encoder ops of {@link dev.impasto.tensor.Backend} (kernels/encoders.cu), called from
 * one-line overrides in {@link CudaBackend}. Inference only.
 *
 * <p>Attention is GEMM-based: per batch element and chunk of queries, cuBLASLt computes the fp32 scores of all heads
 * in one strided-batched product, a kernel applies bias / causal mask and the softmax, and a second batched product
 * multiplies by v. It serves any head dimension (the autoencoder's single 512-wide head included) and T5's additive
 * bias; the score buffer is bounded by chunking the queries. Convolutions go through libtorch's cuDNN convolution
 * shim when libtorch is present, else through im2col + cuBLASLt in bounded chunks of output rows
 * ({@code IMPASTO_CONV=own|torch} forces one).
 */
public final class CudaEncoderOps {
    private CudaEncoderOps() {}

    /** Elements of the fp32 score buffer of one attention chunk (128 MiB). */
    static final long SCORE_ELEMENTS = 32L << 20;
    /** Elements of the im2col buffer of one convolution chunk. */
    static final long IM2COL_ELEMENTS = 32L << 20;

    enum ConvPath { TORCH, OWN }

    private static volatile ConvPath convPath;
    private static volatile boolean batchedGemmFails;

    /** Grid for the grid-stride elementwise kernels of this file (one element per thread per pass). */
    private static int grid(long n) {
        return (int) Math.max(1, Math.min((n + CudaBackend.BLOCK - 1) / CudaBackend.BLOCK, 65535L * 32));
    }

    /** One block per row, capped; the row kernels loop over the rest. */
    private static int rowGrid(long rows) {
        return (int) Math.max(1, Math.min(rows, 65535L * 16));
    }

    private static void enter(CudaBackend be) {
        be.ctx.makeCurrent();
    }

    private static void contiguous(String op, Tensor... ts) {
        for (Tensor t : ts) if (t != null && !t.isContiguous()) throw new IllegalArgumentException(op + ": " + t + " must be contiguous");
    }

    private static long[] nchw(Tensor t, String op) {
        if (t.rank() != 4) throw new IllegalArgumentException(op + ": " + t + " must be [B, C, H, W]");
        return t.shape();
    }

    // ------------------------------------------------------------------------------------------------ text encoders

    public static void embedding(CudaBackend be, Tensor out, Tensor ids, Tensor table) {
        enter(be);
        CudaTensor o = CudaBackend.cu(out), id = CudaBackend.cu(ids), tb = CudaBackend.cu(table);
        if (id.dtype() != DType.I32 || !id.isContiguous()) throw new IllegalArgumentException("embedding: ids must be contiguous I32, got " + ids);
        if (tb.rank() != 2 || o.rows() != id.numel() || o.cols() != tb.cols())
            throw new IllegalArgumentException("embedding: output " + out + " is not [" + id.numel() + ", " + tb.cols() + "] for table " + table);
        CudaBackend.sameType("embedding", o, tb);
        be.kernel("impasto_enc_embedding_" + CudaBackend.sfx(o.dtype())).launch(be.ctx.stream(), grid(o.numel()), 1, 1, CudaBackend.BLOCK, 1, 1, 0,
                o.address(), o.rowStride(), id.address(), tb.address(), tb.rowStride(), id.numel(), tb.cols(), tb.dim(0));
    }

    public static void rmsNorm(CudaBackend be, Tensor out, Tensor x, Tensor weight, double eps) {
        enter(be);
        CudaTensor o = CudaBackend.cu(out), xi = CudaBackend.cu(x), w = CudaBackend.cu(weight);
        CudaBackend.sameMatrix(o, xi, "rmsNorm");
        CudaBackend.sameType("rmsNorm", o, xi, w);
        if (w.numel() != xi.cols() || !w.isContiguous()) throw new IllegalArgumentException("rmsNorm: weight " + weight + " must have " + xi.cols() + " elements");
        be.kernel("impasto_enc_rmsnorm_" + CudaBackend.sfx(o.dtype())).launch(be.ctx.stream(), rowGrid(xi.rows()), 1, 1, CudaBackend.BLOCK, 1, 1, 0,
                o.address(), o.rowStride(), xi.address(), xi.rowStride(), w.address(), xi.rows(), xi.cols(), (float) eps);
    }

    public static void layerNorm(CudaBackend be, Tensor out, Tensor x, Tensor weight, Tensor bias, double eps) {
        enter(be);
        CudaTensor o = CudaBackend.cu(out), xi = CudaBackend.cu(x), w = CudaBackend.cu(weight);
        CudaBackend.sameMatrix(o, xi, "layerNorm");
        CudaBackend.sameType("layerNorm", o, xi, w, bias);
        if (w.numel() != xi.cols() || (bias != null && bias.numel() != xi.cols()))
            throw new IllegalArgumentException("layerNorm: weight/bias must have " + xi.cols() + " elements");
        be.kernel("impasto_enc_layernorm_" + CudaBackend.sfx(o.dtype())).launch(be.ctx.stream(), rowGrid(xi.rows()), 1, 1, CudaBackend.BLOCK, 1, 1, 0,
                o.address(), o.rowStride(), xi.address(), xi.rowStride(), w.address(), CudaBackend.addr(bias), xi.rows(), xi.cols(), (float) eps);
    }

    public static void quickGelu(CudaBackend be, Tensor out, Tensor x) {
        enter(be);
        CudaTensor o = CudaBackend.cu(out), xi = CudaBackend.cu(x);
        CudaBackend.sameMatrix(o, xi, "quickGelu");
        CudaBackend.sameType("quickGelu", o, xi);
        be.kernel("impasto_enc_quick_gelu_" + CudaBackend.sfx(o.dtype())).launch(be.ctx.stream(), grid(o.numel()), 1, 1, CudaBackend.BLOCK, 1, 1, 0,
                o.address(), o.rowStride(), xi.address(), xi.rowStride(), o.rows(), o.cols());
    }

    public static void attentionInference(CudaBackend be, Tensor out, Tensor q, Tensor k, Tensor v, int batch, int heads, double scale, Tensor bias,
                                          boolean causal) {
        enter(be);
        CudaTensor o = CudaBackend.cu(out), qi = CudaBackend.cu(q), ki = CudaBackend.cu(k), vi = CudaBackend.cu(v);
        CudaBackend.sameType("attentionInference", o, qi, ki, vi);
        if (qi.cols() % heads != 0 || ki.cols() != qi.cols() || vi.cols() != qi.cols() || o.cols() != qi.cols())
            throw new IllegalArgumentException("attentionInference: q/k/v/out widths must be equal multiples of " + heads + " heads");
        if (qi.rows() % batch != 0 || ki.rows() % batch != 0 || vi.rows() != ki.rows() || o.rows() != qi.rows())
            throw new IllegalArgumentException("attentionInference: rows of q " + q + ", k " + k + ", v " + v + ", out " + out + " don't fit batch " + batch);
        long dh = qi.cols() / heads, lq = qi.rows() / batch, lk = ki.rows() / batch;
        if (bias != null && (bias.dtype() != DType.F32 || !bias.isContiguous() || bias.numel() != heads * lq * lk))
            throw new IllegalArgumentException("attentionInference: bias must be contiguous F32 [" + heads + ", " + lq + ", " + lk + "], got " + bias);
        long chunk = Math.max(1, Math.min(lq, SCORE_ELEMENTS / Math.max(1, heads * lk)));
        CublasLt.Type ab = CudaBackend.blasType(qi.dtype());
        long es = qi.dtype().byteSize();
        try (Tensor s = be.empty(DType.F32, heads * chunk * lk); Tensor p = be.empty(vi.dtype(), heads * chunk * lk)) {
            CudaTensor sc = CudaBackend.cu(s), pc = CudaBackend.cu(p);
            for (long b = 0; b < batch; b++) {
                for (long i0 = 0; i0 < lq; i0 += chunk) {
                    long c = Math.min(chunk, lq - i0);
                    long qAddr = qi.address() + (b * lq + i0) * qi.rowStride() * es, kAddr = ki.address() + b * lk * ki.rowStride() * es;
                    // S_h [c, lk] = scale * Q_h K_h^T for every head h (heads interleaved in the rows: stride dh)
                    gemmHeads(be, heads, c, lk, dh, false, true, ab, qAddr, qi.rowStride(), dh, kAddr, ki.rowStride(), dh,
                            CublasLt.Type.F32, sc.address(), lk, c * lk, (float) scale, es, 4);
                    be.kernel("impasto_enc_softmax_" + CudaBackend.sfx(pc.dtype())).launch(be.ctx.stream(), rowGrid(heads * c), 1, 1,
                            CudaBackend.BLOCK, 1, 1, 0, pc.address(), sc.address(), CudaBackend.addr(bias), heads * c, lk, c, i0, lq, causal ? 1 : 0);
                    // O_h [c, dh] = P_h V_h
                    long vAddr = vi.address() + b * lk * vi.rowStride() * es, oAddr = o.address() + (b * lq + i0) * o.rowStride() * es;
                    gemmHeads(be, heads, c, dh, lk, false, false, ab, pc.address(), lk, c * lk, vAddr, vi.rowStride(), dh,
                            CudaBackend.blasType(o.dtype()), oAddr, o.rowStride(), dh, 1f, es, es);
                }
            }
        }
    }

    /** One product per head as a strided batch, or head by head where cuBLASLt refuses the batched layout. */
    private static void gemmHeads(CudaBackend be, int heads, long m, long n, long k, boolean ta, boolean tb, CublasLt.Type ab, long a, long lda,
                                  long strideA, long b, long ldb, long strideB, CublasLt.Type cd, long d, long ldd, long strideD, float alpha,
                                  long abBytes, long dBytes) {
        if (heads > 1 && !batchedGemmFails) {
            try {
                be.ctx.blas().matmul(CublasLt.Gemm.of(m, n, k, ta, tb, ab, a, lda, b, ldb, cd, d, ldd, alpha, 0f).batched(heads, strideA, strideB, strideD),
                        be.ctx.stream());
                return;
            } catch (CudaException e) {
                batchedGemmFails = true;
                System.err.println("[impasto] strided-batched attention products refused (" + e.getMessage() + "); computing head by head");
            }
        }
        for (int h = 0; h < heads; h++)
            be.ctx.blas().matmul(CublasLt.Gemm.of(m, n, k, ta, tb, ab, a + h * strideA * abBytes, lda, b + h * strideB * abBytes, ldb, cd,
                    d + h * strideD * dBytes, ldd, alpha, 0f), be.ctx.stream());
    }

    // ------------------------------------------------------------------------------------------------ images

    public static void groupNorm(CudaBackend be, Tensor out, Tensor x, int groups, Tensor weight, Tensor bias, double eps, boolean silu) {
        enter(be);
        CudaTensor o = CudaBackend.cu(out), xi = CudaBackend.cu(x), w = CudaBackend.cu(weight);
        contiguous("groupNorm", o, xi, w, bias);
        CudaBackend.sameType("groupNorm", o, xi, w, bias);
        if (xi.rank() < 2 || o.numel() != xi.numel()) throw new IllegalArgumentException("groupNorm: x " + x + " and out " + out + " must be [B, C, ...] of one size");
        long batch = xi.dim(0), ch = xi.dim(1);
        if (groups < 1 || ch % groups != 0) throw new IllegalArgumentException("groupNorm: " + ch + " channels don't split into " + groups + " groups");
        if (w.numel() != ch || (bias != null && bias.numel() != ch)) throw new IllegalArgumentException("groupNorm: weight/bias must have " + ch + " elements");
        long spatial = xi.numel() / (batch * ch), groupSize = (ch / groups) * spatial, chunk = 16384;
        String s = CudaBackend.sfx(o.dtype());
        try (Tensor stats = be.empty(DType.I64, batch * groups * 2)) { // 8-byte cells the kernels use as doubles (the backend holds no F64)
            be.fill(stats, 0);
            long chunks = (groupSize + chunk - 1) / chunk;
            be.kernel("impasto_enc_group_stats_" + s).launch(be.ctx.stream(), (int) chunks, (int) (batch * groups), 1, CudaBackend.BLOCK, 1, 1, 0,
                    CudaBackend.cu(stats).address(), xi.address(), groupSize, chunk);
            be.kernel("impasto_enc_group_apply_" + s).launch(be.ctx.stream(), grid(xi.numel()), 1, 1, CudaBackend.BLOCK, 1, 1, 0,
                    o.address(), xi.address(), CudaBackend.cu(stats).address(), w.address(), CudaBackend.addr(bias), xi.numel(), spatial, ch, groupSize,
                    (float) eps, silu ? 1 : 0);
        }
    }

    public static void upsampleNearest2x(CudaBackend be, Tensor out, Tensor x) {
        enter(be);
        long[] xs = nchw(x, "upsampleNearest2x"), os = nchw(out, "upsampleNearest2x");
        if (os[0] != xs[0] || os[1] != xs[1] || os[2] != 2 * xs[2] || os[3] != 2 * xs[3])
            throw new IllegalArgumentException("upsampleNearest2x: output " + out + " is not twice " + x);
        contiguous("upsampleNearest2x", out, x);
        CudaBackend.sameType("upsampleNearest2x", out, x);
        be.kernel("impasto_enc_upsample2x_" + CudaBackend.sfx(x.dtype())).launch(be.ctx.stream(), grid(out.numel()), 1, 1, CudaBackend.BLOCK, 1, 1, 0,
                CudaBackend.addr(out), CudaBackend.addr(x), xs[0] * xs[1], xs[2], xs[3]);
    }

    public static void pad2d(CudaBackend be, Tensor out, Tensor x, int top, int bottom, int left, int right) {
        enter(be);
        long[] xs = nchw(x, "pad2d"), os = nchw(out, "pad2d");
        if (top < 0 || bottom < 0 || left < 0 || right < 0) throw new IllegalArgumentException("pad2d: negative padding");
        if (os[0] != xs[0] || os[1] != xs[1] || os[2] != xs[2] + top + bottom || os[3] != xs[3] + left + right)
            throw new IllegalArgumentException("pad2d: output " + out + " does not fit " + x + " padded by (" + top + ", " + bottom + ", " + left + ", " + right + ")");
        contiguous("pad2d", out, x);
        CudaBackend.sameType("pad2d", out, x);
        be.kernel("impasto_enc_pad2d_" + CudaBackend.sfx(x.dtype())).launch(be.ctx.stream(), grid(out.numel()), 1, 1, CudaBackend.BLOCK, 1, 1, 0,
                CudaBackend.addr(out), CudaBackend.addr(x), xs[0] * xs[1], xs[2], xs[3], os[2], os[3], (long) top, (long) left);
    }

    public static void transpose(CudaBackend be, Tensor out, Tensor x) {
        enter(be);
        if (x.rank() < 2 || out.rank() != x.rank()) throw new IllegalArgumentException("transpose: " + x + " -> " + out);
        long m = x.dim(-2), n = x.dim(-1), batch = x.numel() / Math.max(1, m * n);
        if (out.dim(-2) != n || out.dim(-1) != m || out.numel() != x.numel())
            throw new IllegalArgumentException("transpose: output " + out + " is not the transpose of " + x);
        contiguous("transpose", out, x);
        CudaBackend.sameType("transpose", out, x);
        if (batch > 65535 || (m + 31) / 32 > 65535) throw new IllegalArgumentException("transpose: " + x + " is too large for one launch");
        be.kernel("impasto_enc_transpose_" + CudaBackend.sfx(x.dtype())).launch(be.ctx.stream(), (int) ((n + 31) / 32), (int) ((m + 31) / 32), (int) batch,
                32, 8, 1, 0, CudaBackend.addr(out), CudaBackend.addr(x), m, n);
    }

    public static void conv2d(CudaBackend be, Tensor out, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        enter(be);
        long[] xs = nchw(x, "conv2d"), os = nchw(out, "conv2d"), ws = nchw(weight, "conv2d");
        if (ws[1] != xs[1]) throw new IllegalArgumentException("conv2d: weight " + weight + " takes " + ws[1] + " input channels, x has " + xs[1]);
        if (stride < 1 || padding < 0) throw new IllegalArgumentException("conv2d: stride " + stride + ", padding " + padding);
        long ho = (xs[2] + 2L * padding - ws[2]) / stride + 1, wo = (xs[3] + 2L * padding - ws[3]) / stride + 1;
        if (os[0] != xs[0] || os[1] != ws[0] || os[2] != ho || os[3] != wo)
            throw new IllegalArgumentException("conv2d: output " + out + " is not [" + xs[0] + ", " + ws[0] + ", " + ho + ", " + wo + "]");
        if (bias != null && bias.numel() != ws[0]) throw new IllegalArgumentException("conv2d: bias " + bias + " is not [" + ws[0] + "]");
        contiguous("conv2d", out, x, weight, bias);
        CudaBackend.sameType("conv2d", out, x, weight, bias);
        ConvPath path = convPath;
        if (path == null) {
            String forced = System.getenv("IMPASTO_CONV");
            path = forced != null && !forced.isBlank() ? ConvPath.valueOf(forced.trim().toUpperCase(Locale.ROOT)) : be.ctx.torch() != null ? ConvPath.TORCH : ConvPath.OWN;
        }
        if (path == ConvPath.TORCH) {
            try {
                torchConv(be, out, x, weight, bias, stride, padding);
                convPath = ConvPath.TORCH;
                return;
            } catch (CudaException | UnsupportedOperationException | LinkageError e) {
                if (convPath == ConvPath.TORCH) throw e;
                System.err.println("[impasto] cuDNN convolution through libtorch failed (" + e.getMessage() + "); using impasto's im2col convolution");
            }
        }
        ownConv(be, out, x, weight, bias, stride, padding, xs, ws, ho, wo);
        convPath = ConvPath.OWN;
    }

    /** Tests: run every later convolution through this path (null: choose again at the next call). */
    static void forceConv(ConvPath p) {
        convPath = p;
    }

    /** The convolution implementation in use ("TORCH" or "OWN"), or null before the first call. */
    public static String convImplementation() {
        return convPath == null ? null : convPath.name();
    }

    private static long[] contiguousStrides(long[] shape) {
        long[] s = new long[shape.length];
        long acc = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            s[i] = acc;
            acc *= shape[i];
        }
        return s;
    }

    private static void torchConv(CudaBackend be, Tensor out, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        TorchRuntime t = be.ctx.torch();
        if (t == null) throw new UnsupportedOperationException("libtorch is not loaded");
        t.bind();
        MemorySegment tx = null, tw = null, tb = null;
        try (Arena a = Arena.ofConfined()) {
            tx = t.view(CudaBackend.addr(x), x.dtype(), x.shape(), contiguousStrides(x.shape()));
            tw = t.view(CudaBackend.addr(weight), weight.dtype(), weight.shape(), contiguousStrides(weight.shape()));
            MemorySegment biasRef = MemorySegment.NULL;
            if (bias != null) {
                tb = t.view(CudaBackend.addr(bias), bias.dtype(), new long[] {bias.numel()}, new long[] {1});
                biasRef = a.allocateFrom(ValueLayout.ADDRESS, tb);
            }
            MemorySegment strides = a.allocateFrom(ValueLayout.JAVA_LONG, stride, stride), pads = a.allocateFrom(ValueLayout.JAVA_LONG, padding, padding);
            MemorySegment dil = a.allocateFrom(ValueLayout.JAVA_LONG, 1, 1), outPad = a.allocateFrom(ValueLayout.JAVA_LONG, 0, 0);
            MemorySegment ret = a.allocate(ValueLayout.ADDRESS);
            int rc = aoti_torch_cuda_convolution(tx, tw, biasRef, strides, 2, pads, 2, dil, 2, 0, outPad, 2, 1, ret);
            if (rc != 0) throw new CudaException("aoti_torch_cuda_convolution", rc, "AOTI_TORCH_FAILURE", "libtorch printed the reason on stderr");
            MemorySegment result = ret.get(ValueLayout.ADDRESS, 0);
            MemorySegment to = null;
            try {
                to = t.view(CudaBackend.addr(out), out.dtype(), out.shape(), contiguousStrides(out.shape()));
                t.copy(to, result);
            } finally {
                if (to != null) t.delete(to);
                t.delete(result);
            }
        } finally {
            for (MemorySegment h : new MemorySegment[] {tx, tw, tb}) if (h != null) t.delete(h);
        }
    }

    /** im2col of a band of output rows into a bounded buffer, then W [Cout, Cin kh kw] x cols by cuBLASLt into the band. */
    private static void ownConv(CudaBackend be, Tensor out, Tensor x, Tensor weight, Tensor bias, int stride, int padding, long[] xs, long[] ws,
                                long ho, long wo) {
        long batch = xs[0], cin = xs[1], h = xs[2], w = xs[3], cout = ws[0], kh = ws[2], kw = ws[3], kk = cin * kh * kw;
        long rowsPerChunk = Math.max(1, Math.min(ho, IM2COL_ELEMENTS / Math.max(1, kk * wo)));
        DType dt = x.dtype();
        long es = dt.byteSize();
        String s = CudaBackend.sfx(dt);
        Tensor wm = weight.reshape(cout, kk);
        Tensor om = out.reshape(batch * cout, ho * wo);
        try (Tensor cols = be.empty(dt, kk * rowsPerChunk * wo)) {
            for (long b = 0; b < batch; b++) {
                long xAddr = CudaBackend.addr(x) + b * cin * h * w * es;
                for (long oy0 = 0; oy0 < ho; oy0 += rowsPerChunk) {
                    long r = Math.min(rowsPerChunk, ho - oy0);
                    Tensor cm = cols.reshape(-1).cols(0, kk * r * wo).reshape(kk, r * wo);
                    be.kernel("impasto_enc_im2col_" + s).launch(be.ctx.stream(), grid(kk * r * wo), 1, 1, CudaBackend.BLOCK, 1, 1, 0,
                            CudaBackend.addr(cm), xAddr, cin, h, w, (int) kh, (int) kw, stride, padding, wo, oy0, r);
                    be.gemm(om.rows(b * cout, (b + 1) * cout).cols(oy0 * wo, (oy0 + r) * wo), wm, false, cm, false, 1, 0);
                }
            }
        }
        if (bias != null)
            be.kernel("impasto_enc_channel_bias_" + s).launch(be.ctx.stream(), grid(out.numel()), 1, 1, CudaBackend.BLOCK, 1, 1, 0,
                    CudaBackend.addr(out), CudaBackend.addr(bias), out.numel(), ho * wo, cout);
    }
}
