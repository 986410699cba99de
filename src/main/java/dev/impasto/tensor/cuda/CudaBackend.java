package dev.impasto.tensor.cuda;

import dev.impasto.cuda.CublasLt;
import dev.impasto.cuda.CudaContext;
import dev.impasto.cuda.CudaException;
import dev.impasto.cuda.Kernel;
import dev.impasto.cuda.Memcpy;
import dev.impasto.cuda.TorchRuntime;
import dev.impasto.tensor.AdamWConfig;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.ElementCodec;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * The fast path: impasto's CUDA kernels (kernels/*.cu, ABI in kernels/ABI.md), cuBLASLt for matrix products and
 * libtorch's cuDNN/flash attention, all queued on one stream of one {@link CudaContext}. Activations are BF16 or F32
 * (F16 where noted); F64 is not supported on the GPU.
 *
 * <p>Not thread-safe: one backend serves one thread at a time (the context is made current on each entry).
 */
public final class CudaBackend implements Backend {
    static final int BLOCK = 256;

    final CudaContext ctx;
    private final String name;
    /** Which attention path works here: libtorch cuDNN, libtorch flash, or our own kernel. Decided at first use. */
    private AttentionPath attentionPath;
    /** Reused bf16/f32 buffer that quantized weights are dequantized into before a GEMM. */
    private Tensor dequantScratch;

    enum AttentionPath { CUDNN, FLASH, OWN }

    public CudaBackend(CudaContext ctx) {
        this.ctx = ctx;
        this.name = "cuda:" + ctx.ordinal();
    }

    public static CudaBackend open(int ordinal) {
        return new CudaBackend(CudaContext.open(ordinal));
    }

    public CudaContext context() {
        return ctx;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public boolean isGpu() {
        return true;
    }

    // ------------------------------------------------------------------ helpers

    static CudaTensor cu(Tensor t) {
        if (!(t instanceof CudaTensor c))
            throw new IllegalArgumentException("tensor " + t + " belongs to backend " + t.backend().name() + ", not cuda");
        c.checkLive();
        return c;
    }

    static long addr(Tensor t) {
        return t == null ? 0L : cu(t).address();
    }

    /** Kernel name suffix for a float dtype. */
    static String sfx(DType t) {
        return switch (t) {
            case F32 -> "f32";
            case BF16 -> "bf16";
            case F16 -> "f16";
            default -> throw new IllegalArgumentException("CUDA kernels take F32, BF16 or F16 tensors, not " + t);
        };
    }

    Kernel kernel(String name) {
        return ctx.kernels().get(name);
    }

    private void enter() {
        ctx.makeCurrent();
    }

    static void sameMatrix(Tensor a, Tensor b, String op) {
        if (a.rows() != b.rows() || a.cols() != b.cols())
            throw new IllegalArgumentException(op + ": " + a + " and " + b + " differ in shape (rows x cols "
                    + a.rows() + "x" + a.cols() + " vs " + b.rows() + "x" + b.cols() + ")");
    }

    static void sameType(String op, Tensor... ts) {
        DType t = null;
        for (Tensor x : ts) {
            if (x == null) continue;
            if (t == null) t = x.dtype();
            else if (x.dtype() != t) throw new IllegalArgumentException(op + ": tensors must share one dtype, got " + t + " and " + x.dtype());
        }
    }

    /** Grid for warp-per-row kernels (8 rows per 256-thread block); kernels loop over the rest. */
    static int warpGrid(long items) {
        return (int) Math.max(1, Math.min((items + 7) / 8, 65535L * 16));
    }

    /**
     * Grid for elementwise kernels over n elements of {@code t}: one 16-byte vector per thread, at most 32 blocks per
     * multiprocessor (the kernels' grid-stride loops take the rest).
     */
    int elemGrid(long n, DType t) {
        long vec = 16 / Math.max(1, t.byteSize());
        long blocks = (n + vec * BLOCK - 1) / (vec * BLOCK);
        return (int) Math.max(1, Math.min(blocks, 32L * ctx.info.multiprocessors()));
    }

    /** Grid for reductions that end in one atomic per block. */
    int reduceGrid(long n, DType t) {
        return Math.min(elemGrid(n, t), 4 * ctx.info.multiprocessors());
    }

    private final java.util.Set<String> sharedRaised = new java.util.HashSet<>();

    /** The kernel, with its dynamic shared-memory limit raised to {@code bytes} when that is over the 48 KiB default. */
    Kernel kernelWithShared(String name, int bytes) {
        Kernel k = kernel(name);
        if (bytes > 48 * 1024 && sharedRaised.add(name + "@" + bytes)) k.setMaxDynamicShared(bytes);
        return k;
    }

    /** Column-reduction split: enough (columns / 32) x batches x splits blocks for about 4 per multiprocessor. */
    int colsumSplits(long cols, long batches, long rowsPerBatch) {
        long xBlocks = Math.max(1, (cols + 31) / 32) * Math.max(1, batches);
        long want = Math.max(1, (4L * ctx.info.multiprocessors() + xBlocks - 1) / xBlocks);
        long maxByRows = Math.max(1, rowsPerBatch / 64); // at least 64 rows per split
        return (int) Math.min(Math.min(want, maxByRows), 65535);
    }

    // ------------------------------------------------------------------ memory

    @Override
    public Tensor empty(DType dtype, long... shape) {
        enter();
        if (dtype == DType.F64) throw new IllegalArgumentException("the CUDA backend does not hold F64 tensors; use F32");
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        long bytes = Math.max(1, n * dtype.byteSize());
        long base = ctx.allocator().allocate(bytes);
        return new CudaTensor(this, new CudaTensor.DeviceStorage(base, ctx.allocator()), true, dtype, 0, shape[shape.length - 1], shape);
    }

    @Override
    public Tensor fromDoubles(double[] values, DType dtype, long... shape) {
        CudaTensor t = (CudaTensor) empty(dtype, shape);
        if (values.length != t.numel())
            throw new IllegalArgumentException(values.length + " values for shape " + java.util.Arrays.toString(shape));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(Math.max(1, values.length * (long) dtype.byteSize()), 16);
            for (int i = 0; i < values.length; i++) ElementCodec.write(host, dtype, i, values[i]);
            Memcpy.hostToDevice(t.address(), host, values.length * (long) dtype.byteSize(), ctx.stream());
            ctx.synchronize(); // the host buffer dies with the arena
        }
        return t;
    }

    /** Bulk upload of floats: converted to the device dtype in one pass over a native buffer, then one copy. */
    @Override
    public Tensor fromFloats(float[] values, DType dtype, long... shape) {
        if (dtype != DType.F32 && dtype != DType.BF16) return Backend.super.fromFloats(values, dtype, shape);
        CudaTensor t = (CudaTensor) empty(dtype, shape);
        if (values.length != t.numel())
            throw new IllegalArgumentException(values.length + " values for shape " + java.util.Arrays.toString(shape));
        try (Arena a = Arena.ofConfined()) {
            long bytes = (long) values.length * dtype.byteSize();
            MemorySegment host = a.allocate(Math.max(1, bytes), 16);
            if (dtype == DType.F32) MemorySegment.copy(values, 0, host, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, values.length);
            else {
                short[] b = new short[values.length];
                for (int i = 0; i < b.length; i++) b[i] = DType.floatToBf16(values[i]);
                MemorySegment.copy(b, 0, host, ValueLayout.JAVA_SHORT_UNALIGNED, 0, b.length);
            }
            Memcpy.hostToDevice(t.address(), host, bytes, ctx.stream());
            ctx.synchronize();
        }
        return t;
    }

    @Override
    public Tensor fromBytes(MemorySegment src, DType srcType, DType dtype, long... shape) {
        CudaTensor t = (CudaTensor) empty(dtype, shape);
        long n = t.numel();
        if (src.byteSize() < n * srcType.byteSize())
            throw new IllegalArgumentException("source has " + src.byteSize() + " bytes, " + n + " " + srcType + " elements need " + n * srcType.byteSize());
        if (srcType == dtype) {
            upload(t.address(), src, n * dtype.byteSize());
            return t;
        }
        // convert on the host (load time only): decode to double, encode to the device type
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(Math.max(1, n * dtype.byteSize()), 16);
            for (long i = 0; i < n; i++) ElementCodec.write(host, dtype, i, ElementCodec.read(src, srcType, i));
            Memcpy.hostToDevice(t.address(), host, n * dtype.byteSize(), ctx.stream());
            ctx.synchronize();
        }
        return t;
    }

    /** Host-to-device copy from any segment (heap segments are staged through native memory). */
    private void upload(long dst, MemorySegment src, long bytes) {
        enter();
        if (src.isNative()) {
            Memcpy.hostToDevice(dst, src, bytes, ctx.stream());
            ctx.synchronize();
            return;
        }
        long chunk = 64L << 20;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment stage = a.allocate(Math.min(chunk, Math.max(1, bytes)), 16);
            for (long off = 0; off < bytes; off += chunk) {
                long len = Math.min(chunk, bytes - off);
                stage.copyFrom(src.asSlice(off, len));
                Memcpy.hostToDevice(dst + off, stage, len, ctx.stream());
                ctx.synchronize();
            }
        }
    }

    /** The tensor's elements, row-major, as raw bytes of its dtype (strided views gathered on the device first). */
    private MemorySegment download(Tensor t, Arena a) {
        enter();
        CudaTensor c = cu(t);
        long bytes = c.numel() * c.dtype().byteSize();
        MemorySegment host = a.allocate(Math.max(1, bytes), 16);
        if (c.isContiguous()) {
            Memcpy.deviceToHost(host, c.address(), bytes, ctx.stream());
        } else {
            try (Tensor tmp = empty(c.dtype(), c.rows(), c.cols())) {
                copy(tmp, c);
                Memcpy.deviceToHost(host, cu(tmp).address(), bytes, ctx.stream());
                ctx.synchronize();
            }
        }
        ctx.synchronize();
        return host;
    }

    @Override
    public double[] toDoubles(Tensor t) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = download(t, a);
            int n = Math.toIntExact(t.numel());
            double[] out = new double[n];
            for (int i = 0; i < n; i++) out[i] = ElementCodec.read(host, t.dtype(), i);
            return out;
        }
    }

    @Override
    public byte[] toBytes(Tensor t) {
        try (Arena a = Arena.ofConfined()) {
            return download(t, a).asSlice(0, t.numel() * t.dtype().byteSize()).toArray(ValueLayout.JAVA_BYTE);
        }
    }

    @Override
    public void copy(Tensor dst, Tensor src) {
        enter();
        CudaTensor d = cu(dst), s = cu(src);
        sameMatrix(d, s, "copy");
        if (d.dtype() == s.dtype() && d.isContiguous() && s.isContiguous()) {
            Memcpy.deviceToDevice(d.address(), s.address(), d.numel() * d.dtype().byteSize(), ctx.stream());
            return;
        }
        if (d.dtype() == s.dtype() && !d.dtype().isFloatingPoint()) {
            for (long r = 0; r < d.rows(); r++) // rare: strided integer views
                Memcpy.deviceToDevice(cu(d.rows(r, r + 1)).address(), cu(s.rows(r, r + 1)).address(), d.cols() * d.dtype().byteSize(), ctx.stream());
            return;
        }
        kernel("impasto_convert_" + sfx(s.dtype()) + "_" + sfx(d.dtype())).launch(ctx.stream(), elemGrid(d.numel(), DType.BF16), 1, 1, BLOCK, 1, 1, 0,
                d.address(), d.rowStride(), s.address(), s.rowStride(), d.rows(), d.cols());
    }

    @Override
    public void fill(Tensor t, double value) {
        enter();
        CudaTensor c = cu(t);
        if (value == 0 && c.isContiguous()) {
            Memcpy.memsetD8(c.address(), (byte) 0, c.numel() * c.dtype().byteSize(), ctx.stream());
            return;
        }
        if (!c.dtype().isFloatingPoint()) {
            if (!c.isContiguous() || c.dtype().byteSize() != 1) throw new IllegalArgumentException("fill of " + c + " with " + value);
            Memcpy.memsetD8(c.address(), (byte) (int) value, c.numel(), ctx.stream());
            return;
        }
        kernel("impasto_fill_" + sfx(c.dtype())).launch(ctx.stream(), elemGrid(c.numel(), c.dtype()), 1, 1, BLOCK, 1, 1, 0,
                c.address(), c.rowStride(), c.rows(), c.cols(), (float) value);
    }

    @Override
    public void randn(Tensor out, long seed) {
        enter();
        CudaTensor c = cu(out);
        kernel("impasto_randn_" + sfx(c.dtype())).launch(ctx.stream(), elemGrid(c.numel(), DType.F32), 1, 1, BLOCK, 1, 1, 0,
                c.address(), c.rowStride(), c.rows(), c.cols(), seed);
    }

    @Override
    public void rand(Tensor out, long seed) {
        enter();
        CudaTensor c = cu(out);
        kernel("impasto_rand_" + sfx(c.dtype())).launch(ctx.stream(), elemGrid(c.numel(), DType.F32), 1, 1, BLOCK, 1, 1, 0,
                c.address(), c.rowStride(), c.rows(), c.cols(), seed);
    }

    @Override
    public void dropout(Tensor out, Tensor x, double p, long seed) {
        if (p < 0 || p >= 1) throw new IllegalArgumentException("dropout probability must be in [0, 1), got " + p);
        enter();
        CudaTensor o = cu(out), xi = cu(x);
        sameMatrix(o, xi, "dropout");
        sameType("dropout", o, xi);
        // keep = (top 24 bits of the uniform) >= ceil(p 2^24): exactly u >= p for the uniforms u = bits 2^-24
        int threshold = (int) Math.ceil(p * 0x1p24);
        kernel("impasto_dropout_" + sfx(o.dtype())).launch(ctx.stream(), elemGrid(o.numel(), DType.F32), 1, 1, BLOCK, 1, 1, 0,
                o.address(), o.rowStride(), xi.address(), xi.rowStride(), o.rows(), o.cols(), threshold, (float) (1 / (1 - p)), seed);
    }

    @Override
    public void synchronize() {
        enter();
        ctx.synchronize();
    }

    @Override
    public long bytesInUse() {
        return ctx.allocator().bytesInUse();
    }

    @Override
    public long peakBytes() {
        return ctx.allocator().peakBytes();
    }

    @Override
    public void releaseCachedMemory() {
        synchronize();
        ctx.allocator().emptyCache();
    }

    @Override
    public void resetPeak() {
        ctx.allocator().resetPeak();
    }

    // ------------------------------------------------------------------ matrix products

    static CublasLt.Type blasType(DType t) {
        return switch (t) {
            case F32 -> CublasLt.Type.F32;
            case BF16 -> CublasLt.Type.BF16;
            case F16 -> CublasLt.Type.F16;
            default -> throw new IllegalArgumentException("cuBLASLt products take F32, BF16 or F16, not " + t);
        };
    }

    @Override
    public void gemm(Tensor out, Tensor a, boolean transA, Tensor b, boolean transB, double alpha, double beta) {
        enter();
        CudaTensor o = cu(out);
        CudaTensor am = cu(a), bm = cu(b);
        long m = transA ? am.cols() : am.rows(), k = transA ? am.rows() : am.cols();
        long n = transB ? bm.rows() : bm.cols(), kb = transB ? bm.cols() : bm.rows();
        if (k != kb) throw new IllegalArgumentException("gemm: inner dimensions differ: " + a + (transA ? "^T" : "") + " x " + b + (transB ? "^T" : ""));
        if (o.rows() != m || o.cols() != n) throw new IllegalArgumentException("gemm: output " + o + " is not [" + m + ", " + n + "]");
        List<Tensor> temps = new java.util.ArrayList<>();
        try {
            // cuBLASLt wants one input type (the F32 side is converted down) and 16-byte aligned rows (odd views are staged)
            DType in = am.dtype() == bm.dtype() ? am.dtype() : am.dtype() == DType.F32 ? bm.dtype() : am.dtype();
            am = blasOperand(am, in, temps);
            bm = blasOperand(bm, in, temps);
            CudaTensor od = blasOutput(o, beta, temps);
            ctx.blas().matmul(CublasLt.Gemm.of(m, n, k, transA, transB, blasType(am.dtype()), am.address(), am.rowStride(),
                    bm.address(), bm.rowStride(), blasType(od.dtype()), od.address(), od.rowStride(), (float) alpha, (float) beta), ctx.stream());
            if (od != o) copy(o, od);
        } finally {
            for (Tensor t : temps) t.close();
        }
    }

    /** Whether cuBLASLt takes t as it is: 16-byte aligned start and row stride. */
    static boolean blasAligned(CudaTensor t) {
        return t.address() % 16 == 0 && (t.rows() <= 1 || (t.rowStride() * t.dtype().byteSize()) % 16 == 0);
    }

    /** An uninitialised [rows, cols] view whose rows start on 16-byte boundaries (its parent goes into temps). */
    private CudaTensor alignedEmpty(DType type, long rows, long cols, List<Tensor> temps) {
        long per = 16 / type.byteSize();
        long ld = Math.max(per, (cols + per - 1) / per * per);
        Tensor p = empty(type, Math.max(1, rows), ld);
        temps.add(p);
        return cu(p.rows(0, rows).cols(0, cols));
    }

    /** t, or an aligned copy of it in the given type. */
    private CudaTensor blasOperand(CudaTensor t, DType type, List<Tensor> temps) {
        if (t.dtype() == type && blasAligned(t)) return t;
        CudaTensor c = alignedEmpty(type, t.rows(), t.cols(), temps);
        copy(c, t);
        return c;
    }

    /** o, or an aligned stand-in (holding o's values when beta reads them) that the caller copies back. */
    private CudaTensor blasOutput(CudaTensor o, double beta, List<Tensor> temps) {
        if (blasAligned(o)) return o;
        CudaTensor c = alignedEmpty(o.dtype(), o.rows(), o.cols(), temps);
        if (beta != 0) copy(c, o);
        return c;
    }

    /** Rows of x at or under which a quantized weight is applied by a dequantizing GEMV instead of a GEMM. */
    static final long GEMV_MAX_ROWS = 8;

    @Override
    public void linear(Tensor out, Tensor x, LinearWeight w, Tensor bias, double beta) {
        enter();
        CudaTensor o = cu(out), xi = cu(x);
        if (xi.cols() != w.inFeatures() || o.cols() != w.outFeatures() || o.rows() != xi.rows())
            throw new IllegalArgumentException("linear: x " + x + " -> out " + out + " does not fit weight [" + w.outFeatures() + ", " + w.inFeatures() + "]");
        switch (w) {
            case LinearWeight.Dense d -> denseLinear(o, xi, cu(d.w()), bias, beta);
            case LinearWeight.Stacked s -> {
                long row = 0;
                for (LinearWeight p : s.parts()) {
                    long r1 = row + p.outFeatures();
                    linear(o.cols(row, r1), xi, p, bias == null ? null : bias.reshape(-1).cols(row, r1), beta);
                    row = r1;
                }
            }
            default -> {
                if (QuantKernels.gemvApplies(w, o.dtype(), xi.rows(), GEMV_MAX_ROWS)) {
                    QuantKernels.gemv(this, o, xi, w, bias, beta);
                } else {
                    Tensor dense = dequantScratch(xi.dtype(), w.outFeatures(), w.inFeatures());
                    dequantize(dense, w);
                    denseLinear(o, xi, cu(dense), bias, beta);
                }
            }
        }
    }

    private void denseLinear(CudaTensor o, CudaTensor x, CudaTensor w, Tensor bias, double beta) {
        List<Tensor> temps = new java.util.ArrayList<>();
        try {
            CudaTensor xin = blasOperand(x, w.dtype(), temps);
            CudaTensor wm = blasOperand(w, w.dtype(), temps);
            CudaTensor od = blasOutput(o, beta, temps);
            CublasLt.Gemm g = CublasLt.Gemm.of(xin.rows(), wm.rows(), wm.cols(), false, true, blasType(wm.dtype()), xin.address(), xin.rowStride(),
                    wm.address(), wm.rowStride(), blasType(od.dtype()), od.address(), od.rowStride(), 1f, (float) beta);
            if (bias != null) {
                if (bias.numel() != o.cols() || !bias.isContiguous())
                    throw new IllegalArgumentException("linear: bias " + bias + " must be a contiguous vector of " + o.cols());
                // the bias epilogue is given the output's type at a 16-byte aligned address (what torch does too)
                CudaTensor bi = cu(bias);
                if (bi.dtype() != od.dtype() || bi.address() % 16 != 0) {
                    CudaTensor staged = alignedEmpty(od.dtype(), 1, bias.numel(), temps);
                    copy(staged, bi.reshape(1, bias.numel()));
                    bi = staged;
                }
                g = g.withBias(bi.address(), blasType(bi.dtype()));
            }
            ctx.blas().matmul(g, ctx.stream());
            if (od != o) copy(o, od);
        } finally {
            for (Tensor t : temps) t.close();
        }
    }

    /** A [rows, cols] view of the reused dequantization buffer (grown as needed). */
    Tensor dequantScratch(DType t, long rows, long cols) {
        long need = rows * cols;
        if (dequantScratch == null || dequantScratch.dtype() != t || dequantScratch.numel() < need) {
            if (dequantScratch != null) dequantScratch.close();
            dequantScratch = empty(t, need);
        }
        return dequantScratch.reshape(-1).cols(0, need).reshape(rows, cols);
    }

    @Override
    public void linearInputGrad(Tensor dx, Tensor dy, LinearWeight w, double beta) {
        enter();
        CudaTensor g = cu(dx), d = cu(dy);
        if (d.cols() != w.outFeatures() || g.cols() != w.inFeatures() || g.rows() != d.rows())
            throw new IllegalArgumentException("linearInputGrad: dy " + dy + " -> dx " + dx + " does not fit weight [" + w.outFeatures() + ", " + w.inFeatures() + "]");
        switch (w) {
            case LinearWeight.Dense dw -> gemm(g, d, false, dw.w(), false, 1, beta);
            case LinearWeight.Stacked s -> {
                long row = 0;
                double b = beta;
                for (LinearWeight p : s.parts()) {
                    long r1 = row + p.outFeatures();
                    linearInputGrad(g, d.cols(row, r1), p, b);
                    b = 1;
                    row = r1;
                }
            }
            default -> {
                Tensor dense = dequantScratch(d.dtype(), w.outFeatures(), w.inFeatures());
                dequantize(dense, w);
                gemm(g, d, false, dense, false, 1, beta);
            }
        }
    }

    /** On the device (kernels/quant.cu impasto_quant_nf4_*): the bf16 file bytes go up as they are, the codes come out. */
    @Override
    public LinearWeight quantizeNf4(Tensor w, boolean doubleQuant) {
        enter();
        CudaTensor x = cu(w);
        if (!x.isContiguous() || x.rank() != 2 || (x.dtype() != DType.BF16 && x.dtype() != DType.F16 && x.dtype() != DType.F32))
            return Backend.super.quantizeNf4(w, doubleQuant);
        long n = x.numel(), blocks = (n + 63) / 64;
        Tensor packed = empty(DType.U8, (n + 1) / 2), absmax = empty(DType.F32, blocks);
        try {
            try (Tensor bad = fromBytes(MemorySegment.ofArray(new byte[] {-1, -1, -1, -1, -1, -1, -1, -1}), DType.I64, DType.I64, 1)) {
                int grid = (int) Math.max(1, Math.min((blocks + 7) / 8, 65535L * 16)); // a warp per block of 64, 8 warps per CTA
                kernel("impasto_quant_nf4_" + sfx(x.dtype())).launch(ctx.stream(), grid, 1, 1, 256, 1, 1, 0,
                        cu(packed).address(), cu(absmax).address(), cu(bad).address(), x.address(), n);
                long first = (long) toDoubles(bad)[0];
                if (first != -1)
                    throw new IllegalArgumentException("weight element " + first + " is not finite (NaN or infinite); NF4 can only hold finite values (is the checkpoint corrupt?)");
            }
            if (!doubleQuant) return new LinearWeight.Nf4(packed, absmax, null, null, 0, 64, 0, x.rows(), x.cols());
            dev.impasto.quant.NestedAbsmax nest = dev.impasto.quant.Nf4.compressAbsmax(toFloats(absmax)); // small: 1/64 of the weight
            absmax.close();
            return dev.impasto.quant.WeightQuantizer.nf4Nested(this, packed, nest, 64, x.rows(), x.cols());
        } catch (RuntimeException e) {
            packed.close();
            absmax.close();
            throw e;
        }
    }

    @Override
    public void dequantize(Tensor out, LinearWeight w) {
        enter();
        CudaTensor o = cu(out);
        // contiguous with N * K elements, or an [N, K] view with wider rows (the left part of [W | s B], see Linear)
        boolean shaped = o.rows() == w.outFeatures() && o.cols() == w.inFeatures();
        if (!shaped && (o.rows() * o.cols() != w.outFeatures() * w.inFeatures() || !o.isContiguous()))
            throw new IllegalArgumentException("dequantize: output " + out + " must be a contiguous [" + w.outFeatures() + ", " + w.inFeatures()
                    + "] or an [" + w.outFeatures() + ", " + w.inFeatures() + "] view of wider rows");
        switch (w) {
            case LinearWeight.Dense d -> copy(shaped ? o : o.reshape(w.outFeatures(), w.inFeatures()), d.w());
            case LinearWeight.Stacked s -> {
                long row = 0;
                Tensor m = shaped ? o : o.reshape(w.outFeatures(), w.inFeatures());
                for (LinearWeight p : s.parts()) {
                    dequantize(m.rows(row, row + p.outFeatures()), p);
                    row += p.outFeatures();
                }
            }
            default -> {
                if (o.isContiguous() || QuantKernels.dequantizesStrided(w)) {
                    QuantKernels.dequantize(this, o, w);
                } else {
                    try (Tensor dense = empty(o.dtype(), w.outFeatures(), w.inFeatures())) {
                        QuantKernels.dequantize(this, cu(dense), w);
                        copy(o, dense);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ elementwise

    private void zip(String op, Tensor out, Tensor a, Tensor b) {
        enter();
        CudaTensor o = cu(out), x = cu(a), y = cu(b);
        sameMatrix(o, x, op);
        sameMatrix(o, y, op);
        sameType(op, o, x, y);
        kernel("impasto_" + op + "_" + sfx(o.dtype())).launch(ctx.stream(), elemGrid(o.numel(), o.dtype()), 1, 1, BLOCK, 1, 1, 0,
                o.address(), o.rowStride(), x.address(), x.rowStride(), y.address(), y.rowStride(), o.rows(), o.cols());
    }

    @Override
    public void add(Tensor out, Tensor a, Tensor b) {
        zip("add", out, a, b);
    }

    @Override
    public void mul(Tensor out, Tensor x, Tensor y) {
        zip("mul", out, x, y);
    }

    @Override
    public void axpby(Tensor y, double alpha, Tensor x, double beta) {
        enter();
        CudaTensor yi = cu(y), xi = cu(x);
        sameMatrix(yi, xi, "axpby");
        sameType("axpby", yi, xi);
        kernel("impasto_axpby_" + sfx(yi.dtype())).launch(ctx.stream(), elemGrid(yi.numel(), yi.dtype()), 1, 1, BLOCK, 1, 1, 0,
                yi.address(), yi.rowStride(), xi.address(), xi.rowStride(), yi.rows(), yi.cols(), (float) alpha, (float) beta);
    }

    private void unary(String op, Tensor out, Tensor x) {
        enter();
        CudaTensor o = cu(out), xi = cu(x);
        sameMatrix(o, xi, op);
        sameType(op, o, xi);
        kernel("impasto_" + op + "_" + sfx(o.dtype())).launch(ctx.stream(), elemGrid(o.numel(), o.dtype()), 1, 1, BLOCK, 1, 1, 0,
                o.address(), o.rowStride(), xi.address(), xi.rowStride(), o.rows(), o.cols());
    }

    private void unaryBackward(String op, Tensor dx, Tensor dy, Tensor x, double beta) {
        enter();
        CudaTensor g = cu(dx), d = cu(dy), xi = cu(x);
        sameMatrix(g, d, op);
        sameMatrix(g, xi, op);
        sameType(op, g, d, xi);
        kernel("impasto_" + op + "_" + sfx(g.dtype())).launch(ctx.stream(), elemGrid(g.numel(), g.dtype()), 1, 1, BLOCK, 1, 1, 0,
                g.address(), g.rowStride(), d.address(), d.rowStride(), xi.address(), xi.rowStride(), g.rows(), g.cols(), (float) beta);
    }

    @Override
    public void gelu(Tensor out, Tensor x) {
        unary("gelu", out, x);
    }

    @Override
    public void geluBackward(Tensor dx, Tensor dy, Tensor x, double beta) {
        unaryBackward("gelu_bwd", dx, dy, x, beta);
    }

    @Override
    public void silu(Tensor out, Tensor x) {
        unary("silu", out, x);
    }

    @Override
    public void siluBackward(Tensor dx, Tensor dy, Tensor x, double beta) {
        unaryBackward("silu_bwd", dx, dy, x, beta);
    }

    // ------------------------------------------------------------------ normalisation and modulation

    static long rowsPerBatch(Tensor x, Tensor perSample, String op) {
        if (perSample == null) return x.rows();
        long b = perSample.rows();
        if (b == 0 || x.rows() % b != 0)
            throw new IllegalArgumentException(op + ": " + x.rows() + " rows don't split evenly into " + b + " batch elements");
        if (perSample.cols() != x.cols())
            throw new IllegalArgumentException(op + ": per-sample tensor " + perSample + " has " + perSample.cols() + " columns, x has " + x.cols());
        return x.rows() / b;
    }

    static long ld(Tensor t) {
        return t == null ? 0 : t.rowStride();
    }

    @Override
    public void layerNormModulate(Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor shift, Tensor scale) {
        enter();
        CudaTensor o = cu(out), xi = cu(x);
        sameMatrix(o, xi, "layerNormModulate");
        sameType("layerNormModulate", o, xi, shift, scale);
        checkStats("layerNormModulate", xi.rows(), mean, rstd);
        long per = rowsPerBatch(xi, scale != null ? scale : shift, "layerNormModulate");
        kernel("impasto_ln_mod_" + sfx(o.dtype())).launch(ctx.stream(), warpGrid(xi.rows()), 1, 1, BLOCK, 1, 1, 0,
                o.address(), o.rowStride(), addr(mean), addr(rstd), xi.address(), xi.rowStride(),
                addr(shift), ld(shift), addr(scale), ld(scale), xi.rows(), xi.cols(), per);
    }

    private static void checkStats(String op, long rows, Tensor... stats) {
        for (Tensor s : stats)
            if (s != null && (s.dtype() != DType.F32 || s.numel() != rows || !s.isContiguous()))
                throw new IllegalArgumentException(op + ": row statistics must be contiguous F32 with " + rows + " elements, got " + s);
    }

    @Override
    public void layerNormModulateBackward(Tensor dx, Tensor dshift, Tensor dscale, Tensor dy, Tensor x, Tensor mean,
                                          Tensor rstd, Tensor scale, double beta) {
        enter();
        CudaTensor g = cu(dx), d = cu(dy), xi = cu(x);
        sameMatrix(g, xi, "layerNormModulateBackward");
        sameMatrix(d, xi, "layerNormModulateBackward");
        sameType("layerNormModulateBackward", g, d, xi, scale, dshift, dscale);
        if (mean == null || rstd == null)
            throw new IllegalArgumentException("layerNormModulateBackward needs the mean and rstd that layerNormModulate saved (got null)");
        checkStats("layerNormModulateBackward", xi.rows(), mean, rstd);
        long per = rowsPerBatch(xi, scale, "layerNormModulateBackward");
        long batches = xi.rows() / per;
        for (Tensor p : new Tensor[] {dshift, dscale})
            if (p != null && (p.rows() != batches || p.cols() != xi.cols()))
                throw new IllegalArgumentException("layerNormModulateBackward: parameter gradient " + p + " is not [" + batches + ", " + xi.cols() + "]");
        kernel("impasto_ln_mod_bwd_" + sfx(g.dtype())).launch(ctx.stream(), warpGrid(xi.rows()), 1, 1, BLOCK, 1, 1, 0,
                g.address(), g.rowStride(), d.address(), d.rowStride(), xi.address(), xi.rowStride(), addr(mean), addr(rstd),
                addr(scale), ld(scale), xi.rows(), xi.cols(), per, (float) beta);
        if (dshift != null || dscale != null) {
            int splits = colsumSplits(xi.cols(), batches, per);
            long chunk = (per + splits - 1) / splits;
            try (Tensor partial = empty(DType.F32, 2L * splits * batches, Math.max(1, xi.cols()))) {
                kernel("impasto_ln_mod_bwd_params_" + sfx(g.dtype())).launch(ctx.stream(), (int) ((xi.cols() + 31) / 32), (int) batches, splits,
                        32, 8, 1, 0, addr(partial), d.address(), d.rowStride(), xi.address(), xi.rowStride(), addr(mean), addr(rstd),
                        xi.cols(), per, chunk);
                colsumFinish(g.dtype(), dshift, dscale, partial, splits, batches, xi.cols());
            }
        }
    }

    @Override
    public void gatedResidual(Tensor x, Tensor gate, Tensor y) {
        enter();
        CudaTensor xi = cu(x), gi = cu(gate), yi = cu(y);
        sameMatrix(xi, yi, "gatedResidual");
        sameType("gatedResidual", xi, gi, yi);
        long per = rowsPerBatch(xi, gi, "gatedResidual");
        kernel("impasto_gated_residual_" + sfx(xi.dtype())).launch(ctx.stream(), elemGrid(xi.numel(), xi.dtype()), 1, 1, BLOCK, 1, 1, 0,
                xi.address(), xi.rowStride(), gi.address(), gi.rowStride(), yi.address(), yi.rowStride(), xi.rows(), xi.cols(), per);
    }

    @Override
    public void gatedResidualBackward(Tensor dy, Tensor dgate, Tensor dx, Tensor gate, Tensor y, double betaDy) {
        enter();
        CudaTensor dyi = cu(dy), dxi = cu(dx), gi = cu(gate), yi = cu(y);
        sameMatrix(dxi, yi, "gatedResidualBackward");
        sameMatrix(dxi, dyi, "gatedResidualBackward");
        sameType("gatedResidualBackward", dyi, dxi, gi, yi, dgate);
        long per = rowsPerBatch(dxi, gi, "gatedResidualBackward");
        kernel("impasto_gated_residual_bwd_" + sfx(dxi.dtype())).launch(ctx.stream(), elemGrid(dxi.numel(), dxi.dtype()), 1, 1, BLOCK, 1, 1, 0,
                dyi.address(), dyi.rowStride(), dxi.address(), dxi.rowStride(), gi.address(), gi.rowStride(), dxi.rows(), dxi.cols(), per, (float) betaDy);
        if (dgate != null) {
            long batches = dxi.rows() / per;
            if (dgate.rows() != batches || dgate.cols() != dxi.cols())
                throw new IllegalArgumentException("gatedResidualBackward: dgate " + dgate + " is not [" + batches + ", " + dxi.cols() + "]");
            int splits = colsumSplits(dxi.cols(), batches, per);
            long chunk = (per + splits - 1) / splits;
            try (Tensor partial = empty(DType.F32, (long) splits * batches, Math.max(1, dxi.cols()))) {
                kernel("impasto_colsum_product_" + sfx(dxi.dtype())).launch(ctx.stream(), (int) ((dxi.cols() + 31) / 32), (int) batches, splits,
                        32, 8, 1, 0, addr(partial), dxi.address(), dxi.rowStride(), yi.address(), yi.rowStride(), dxi.cols(), per, chunk);
                colsumFinish(dxi.dtype(), dgate, null, partial, splits, batches, dxi.cols());
            }
        }
    }

    /** Pass 2 of the column sums: out0/out1 [batches, cols] (either may be null) from the F32 partials. */
    private void colsumFinish(DType t, Tensor out0, Tensor out1, Tensor partial, int splits, long batches, long cols) {
        long n = batches * cols;
        kernel("impasto_colsum_finish_" + sfx(t)).launch(ctx.stream(), (int) Math.max(1, Math.min((n + BLOCK - 1) / BLOCK, 65535L)), 1, 1,
                BLOCK, 1, 1, 0, addr(out0), ld(out0), addr(out1), ld(out1), addr(partial), (long) splits, batches, cols);
    }

    // ------------------------------------------------------------------ QK norm + RoPE

    private record QkvGeometry(long batch, long len, long ltot, int heads, int headDim) {
        static QkvGeometry of(Tensor q, Tensor qkv, Tensor pe, int heads, long seqOffset) {
            long hd = q.cols();
            if (hd % heads != 0) throw new IllegalArgumentException("q width " + hd + " is not a multiple of " + heads + " heads");
            int dh = (int) (hd / heads);
            if (qkv.cols() != 3 * hd) throw new IllegalArgumentException("qkv " + qkv + " must have 3 * " + hd + " columns");
            long ltot = pe.dim(0);
            if (pe.rank() != 3 || pe.dim(1) != dh / 2 || pe.dim(2) != 2 || pe.dtype() != DType.F32)
                throw new IllegalArgumentException("pe " + pe + " must be F32 [" + ltot + ", " + dh / 2 + ", 2]");
            if (q.rows() % ltot != 0) throw new IllegalArgumentException("q rows " + q.rows() + " not a multiple of pe length " + ltot);
            long batch = q.rows() / ltot;
            long len = qkv.rows() / batch;
            if (len * batch != qkv.rows() || seqOffset + len > ltot)
                throw new IllegalArgumentException("qkv " + qkv + " does not fit rows [" + seqOffset + ", +" + len + ") of " + ltot);
            if (!q.isContiguous()) throw new IllegalArgumentException("q/k/v must be contiguous, got " + q);
            if (dh % 2 != 0 || dh > 512)
                throw new IllegalArgumentException("qkNormRope: head dim " + dh + " must be even (RoPE rotates pairs) and at most 512");
            if (cu(pe).address() % 8 != 0) throw new IllegalArgumentException("qkNormRope: pe " + pe + " must start on an (cos, sin) pair");
            return new QkvGeometry(batch, len, ltot, heads, dh);
        }
    }

    private static void checkScales(Tensor qScale, Tensor kScale, int headDim) {
        for (Tensor s : new Tensor[] {qScale, kScale})
            if (s.numel() != headDim || !s.isContiguous())
                throw new IllegalArgumentException("qkNormRope: the norm scales must be contiguous [" + headDim + "], got " + s);
    }

    @Override
    public void qkNormRope(Tensor q, Tensor k, Tensor v, Tensor qRstd, Tensor kRstd, Tensor qkv, Tensor qScale, Tensor kScale,
                           Tensor pe, int heads, long seqOffset) {
        enter();
        QkvGeometry g = QkvGeometry.of(q, qkv, pe, heads, seqOffset);
        sameType("qkNormRope", q, k, v, qkv, qScale, kScale);
        sameMatrix(k, q, "qkNormRope");
        sameMatrix(v, q, "qkNormRope");
        if (!k.isContiguous() || !v.isContiguous()) throw new IllegalArgumentException("qkNormRope: k and v must be contiguous, got " + k + ", " + v);
        checkScales(qScale, kScale, g.headDim);
        for (Tensor r : new Tensor[] {qRstd, kRstd})
            if (r != null && (r.dtype() != DType.F32 || r.numel() != g.batch * heads * g.len || !r.isContiguous()))
                throw new IllegalArgumentException("qkNormRope: rstd must be contiguous F32 [" + g.batch + ", " + heads + ", " + g.len + "], got " + r);
        kernel("impasto_qk_norm_rope_" + sfx(q.dtype())).launch(ctx.stream(), warpGrid(g.batch * g.len * heads), 1, 1, BLOCK, 1, 1, 0,
                addr(q), addr(k), addr(v), addr(qRstd), addr(kRstd), addr(qkv), qkv.rowStride(), addr(qScale), addr(kScale), addr(pe),
                g.batch, g.len, g.ltot, heads, g.headDim, seqOffset);
    }

    @Override
    public void qkNormRopeBackward(Tensor dqkv, Tensor dq, Tensor dk, Tensor dv, Tensor qkv, Tensor qScale, Tensor kScale,
                                   Tensor pe, int heads, long seqOffset) {
        enter();
        QkvGeometry g = QkvGeometry.of(dq, qkv, pe, heads, seqOffset);
        sameMatrix(dqkv, qkv, "qkNormRopeBackward");
        sameType("qkNormRopeBackward", dqkv, dq, dk, dv, qkv, qScale, kScale);
        sameMatrix(dk, dq, "qkNormRopeBackward");
        sameMatrix(dv, dq, "qkNormRopeBackward");
        if (!dk.isContiguous() || !dv.isContiguous()) throw new IllegalArgumentException("qkNormRopeBackward: dk and dv must be contiguous");
        checkScales(qScale, kScale, g.headDim);
        kernel("impasto_qk_norm_rope_bwd_" + sfx(dq.dtype())).launch(ctx.stream(), warpGrid(g.batch * g.len * heads), 1, 1, BLOCK, 1, 1, 0,
                addr(dqkv), dqkv.rowStride(), addr(dq), addr(dk), addr(dv), addr(qkv), qkv.rowStride(), addr(qScale), addr(kScale), addr(pe),
                g.batch, g.len, g.ltot, heads, g.headDim, seqOffset);
    }

    // ------------------------------------------------------------------ attention

    private static long attnBatch(Tensor q, Tensor lse) {
        if (q.rank() == 3) return q.dim(0);
        if (lse != null && lse.rank() == 3) return lse.dim(0);
        return 1;
    }

    /** [B, H, L, D] strides of a [B, L, H*D] buffer with row stride ld. */
    private static long[] bhldStrides(long len, long ld, long dh) {
        return new long[] {len * ld, dh, ld, 1};
    }

    @Override
    public void attention(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int heads) {
        enter();
        sameType("attention", out, q, k, v);
        long batch = attnBatch(q, lse);
        long lq = q.rows() / batch, lk = k.rows() / batch, dh = q.cols() / heads;
        if (lse != null && (lse.dtype() != DType.F32 || lse.numel() != batch * heads * lq || !lse.isContiguous()))
            throw new IllegalArgumentException("attention: lse must be contiguous F32 [" + batch + ", " + heads + ", " + lq + "], got " + lse);
        for (AttentionPath path : attentionPaths(q.dtype())) {
            try {
                if (path == AttentionPath.OWN) {
                    OwnAttention.forward(this, cu(out), lse, cu(q), cu(k), cu(v), batch, lq, lk, heads, (int) dh);
                } else {
                    torchAttentionForward(path, cu(out), lse, cu(q), cu(k), cu(v), batch, lq, lk, heads, dh);
                }
                if (q.dtype() != DType.F32) attentionPath = path;
                return;
            } catch (CudaException e) {
                if (attentionPath != null || path == AttentionPath.OWN) throw e;
                System.err.println("[impasto] attention through " + path + " failed (" + e.getMessage() + "); trying the next implementation");
            }
        }
    }

    /** The paths to try, in order; F32 always takes our own kernels (libtorch's fused kernels take 16-bit inputs only). */
    private List<AttentionPath> attentionPaths(DType t) {
        if (t == DType.F32) return List.of(AttentionPath.OWN);
        if (attentionPath != null) return List.of(attentionPath);
        String forced = System.getenv("IMPASTO_ATTENTION");
        if (forced != null && !forced.isBlank()) return List.of(AttentionPath.valueOf(forced.toUpperCase(java.util.Locale.ROOT)));
        return ctx.torch() == null ? List.of(AttentionPath.OWN) : List.of(AttentionPath.CUDNN, AttentionPath.FLASH, AttentionPath.OWN);
    }

    /**
     * Pins the attention implementation for 16-bit inputs: "CUDNN" or "FLASH" (libtorch's, which must be present) or
     * "OWN" (impasto's kernels). F32 attention always runs impasto's kernels.
     */
    public void useAttention(String implementation) {
        AttentionPath p;
        try {
            p = AttentionPath.valueOf(implementation.toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("attention implementation must be CUDNN, FLASH or OWN, got " + implementation);
        }
        if (p != AttentionPath.OWN && ctx.torch() == null)
            throw new IllegalArgumentException("attention implementation " + p + " needs libtorch, which was not found");
        attentionPath = p;
    }

    /** The attention implementation in use ("CUDNN", "FLASH", "OWN"), or null before the first call. */
    public String attentionImplementation() {
        return attentionPath == null ? null : attentionPath.name();
    }

    private void torchAttentionForward(AttentionPath path, CudaTensor out, Tensor lse, CudaTensor q, CudaTensor k, CudaTensor v,
                                       long batch, long lq, long lk, int heads, long dh) {
        TorchRuntime t = ctx.torch();
        TorchRuntime.AttentionKernel kind = path == AttentionPath.CUDNN ? TorchRuntime.AttentionKernel.CUDNN : TorchRuntime.AttentionKernel.FLASH;
        Tensor lseBuf = lse != null ? lse : empty(DType.F32, batch, heads, lq);
        MemorySegment tq = t.view(q.address(), q.dtype(), new long[] {batch, heads, lq, dh}, bhldStrides(lq, q.rowStride(), dh));
        MemorySegment tk = t.view(k.address(), k.dtype(), new long[] {batch, heads, lk, dh}, bhldStrides(lk, k.rowStride(), dh));
        MemorySegment tv = t.view(v.address(), v.dtype(), new long[] {batch, heads, lk, dh}, bhldStrides(lk, v.rowStride(), dh));
        MemorySegment to = t.view(out.address(), out.dtype(), new long[] {batch, heads, lq, dh}, bhldStrides(lq, out.rowStride(), dh));
        try {
            t.attentionForward(kind, tq, tk, tv, 1 / Math.sqrt(dh), to, addr(lseBuf), batch, heads, lq);
        } finally {
            for (MemorySegment h : new MemorySegment[] {tq, tk, tv, to}) t.delete(h);
            if (lse == null) lseBuf.close();
        }
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                                  Tensor lse, int heads) {
        enter();
        sameType("attentionBackward", dq, dk, dv, dout, q, k, v, out);
        long batch = attnBatch(q, lse);
        long lq = q.rows() / batch, lk = k.rows() / batch, dh = q.cols() / heads;
        if (lse == null) throw new IllegalArgumentException("attentionBackward needs the lse that attention saved (got null)");
        AttentionPath path = q.dtype() == DType.F32 ? AttentionPath.OWN : attentionPath != null ? attentionPath : attentionPaths(q.dtype()).getFirst();
        if (path == AttentionPath.OWN) {
            OwnAttention.backward(this, cu(dq), cu(dk), cu(dv), cu(dout), cu(q), cu(k), cu(v), cu(out), cu(lse), batch, lq, lk, heads, (int) dh);
            return;
        }
        TorchRuntime t = ctx.torch();
        TorchRuntime.AttentionKernel kind = path == AttentionPath.CUDNN ? TorchRuntime.AttentionKernel.CUDNN : TorchRuntime.AttentionKernel.FLASH;
        // cuDNN's backward computes wrong gradients when out/dout have a row stride other than H*D (measured on the
        // H100, libtorch 2.11: relative error ~1.4 against the CPU; flash and our kernels are right): give it
        // contiguous copies. The single-stream blocks' attention output is such a column view.
        List<Tensor> temps = new ArrayList<>();
        if (path == AttentionPath.CUDNN) {
            if (!dout.isContiguous()) {
                Tensor c = empty(dout.dtype(), dout.rows(), dout.cols());
                copy(c, dout);
                temps.add(dout = c);
            }
            if (!out.isContiguous()) {
                Tensor c = empty(out.dtype(), out.rows(), out.cols());
                copy(c, out);
                temps.add(out = c);
            }
        }
        CudaTensor[] ts = {cu(dout), cu(q), cu(k), cu(v), cu(out), cu(dq), cu(dk), cu(dv)};
        long[] lens = {lq, lq, lk, lk, lq, lq, lk, lk};
        MemorySegment[] views = new MemorySegment[9];
        try {
            for (int i = 0; i < ts.length; i++)
                views[i] = t.view(ts[i].address(), ts[i].dtype(), new long[] {batch, heads, lens[i], dh}, bhldStrides(lens[i], ts[i].rowStride(), dh));
            views[8] = t.lseView(kind, addr(lse), batch, heads, lq);
            t.attentionBackward(kind, views[0], views[1], views[2], views[3], views[4], views[8], lq, lk, 1 / Math.sqrt(dh),
                    views[5], views[6], views[7]);
        } finally {
            for (MemorySegment h : views) if (h != null) t.delete(h);
            temps.forEach(Tensor::close);
        }
    }

    // ------------------------------------------------------------------ embeddings and sequence

    @Override
    public void timestepEmbedding(Tensor out, Tensor t, double timeFactor, double maxPeriod) {
        enter();
        CudaTensor o = cu(out), ti = cu(t);
        if (ti.dtype() != DType.F32 || ti.numel() != o.rows()) throw new IllegalArgumentException("timestepEmbedding: t must be F32 [" + o.rows() + "], got " + t);
        kernel("impasto_timestep_embedding_" + sfx(o.dtype())).launch(ctx.stream(), (int) o.rows(), 1, 1, BLOCK, 1, 1, 0,
                o.address(), o.rowStride(), ti.address(), (int) o.rows(), (int) o.cols(), (float) timeFactor, (float) maxPeriod);
    }

    @Override
    public void concatSeq(Tensor out, Tensor a, Tensor b, int batch) {
        seqCopy("impasto_concat_seq_", cu(out), cu(a), cu(b), batch);
    }

    @Override
    public void splitSeq(Tensor a, Tensor b, Tensor in, int batch) {
        seqCopy("impasto_split_seq_", cu(in), cu(a), cu(b), batch);
    }

    private void seqCopy(String k, CudaTensor whole, CudaTensor a, CudaTensor b, int batch) {
        enter();
        if (a.cols() != whole.cols() || b.cols() != whole.cols() || a.rows() + b.rows() != whole.rows()
                || a.rows() % batch != 0 || b.rows() % batch != 0)
            throw new IllegalArgumentException("sequence concat/split: " + a + " + " + b + " vs " + whole + " with batch " + batch);
        sameType("concat/split", whole, a, b);
        kernel(k + sfx(whole.dtype())).launch(ctx.stream(), elemGrid(whole.numel(), whole.dtype()), 1, 1, BLOCK, 1, 1, 0,
                whole.address(), whole.rowStride(), a.address(), a.rowStride(), b.address(), b.rowStride(),
                (long) batch, a.rows() / batch, b.rows() / batch, whole.cols());
    }

    // ------------------------------------------------------------------ training

    @Override
    public void flowMatchMix(Tensor xt, Tensor target, Tensor x0, Tensor noise, Tensor t) {
        enter();
        CudaTensor o = cu(xt), tg = cu(target), x = cu(x0), n = cu(noise), ti = cu(t);
        sameMatrix(o, x, "flowMatchMix");
        sameMatrix(tg, x, "flowMatchMix");
        sameMatrix(n, x, "flowMatchMix");
        sameType("flowMatchMix", o, tg, x, n);
        if (ti.dtype() != DType.F32 || !ti.isContiguous()) throw new IllegalArgumentException("flowMatchMix: t must be contiguous F32, got " + t);
        if (ti.numel() == 0 || x.rows() % ti.numel() != 0)
            throw new IllegalArgumentException("flowMatchMix: " + x.rows() + " rows don't split evenly into " + ti.numel() + " timesteps");
        long per = x.rows() / ti.numel();
        kernel("impasto_flow_mix_" + sfx(o.dtype())).launch(ctx.stream(), elemGrid(x.numel(), x.dtype()), 1, 1, BLOCK, 1, 1, 0,
                o.address(), o.rowStride(), tg.address(), tg.rowStride(), x.address(), x.rowStride(), n.address(), n.rowStride(),
                ti.address(), x.rows(), x.cols(), per);
    }

    @Override
    public void mseLoss(Tensor loss, Tensor grad, Tensor pred, Tensor target, double gradScale) {
        enter();
        CudaTensor l = cu(loss), p = cu(pred), tg = cu(target);
        sameMatrix(p, tg, "mseLoss");
        sameType("mseLoss", p, tg, grad);
        if (l.dtype() != DType.F32 || l.numel() != 1) throw new IllegalArgumentException("mseLoss: loss must be F32 [1]");
        if (grad != null) sameMatrix(grad, p, "mseLoss");
        fill(l, 0);
        kernel("impasto_mse_" + sfx(p.dtype())).launch(ctx.stream(), reduceGrid(p.numel(), p.dtype()), 1, 1, BLOCK, 1, 1, 0,
                l.address(), addr(grad), ld(grad), p.address(), p.rowStride(), tg.address(), tg.rowStride(), p.rows(), p.cols(), (float) gradScale);
    }

    @Override
    public void sumOfSquares(Tensor out, List<Tensor> tensors) {
        enter();
        CudaTensor o = cu(out);
        if (o.dtype() != DType.F32 || o.numel() != 1) throw new IllegalArgumentException("sumOfSquares: out must be F32 [1]");
        fill(o, 0);
        for (Tensor t : tensors) {
            CudaTensor c = cu(t);
            kernel("impasto_sum_squares_" + sfx(c.dtype())).launch(ctx.stream(), reduceGrid(c.numel(), c.dtype()), 1, 1, BLOCK, 1, 1, 0,
                    o.address(), c.address(), c.rowStride(), c.rows(), c.cols());
        }
    }

    @Override
    public void adamw(List<Tensor> params, List<Tensor> grads, List<Tensor> m, List<Tensor> v, AdamWConfig cfg, long step, double lr,
                      Tensor gradNormSq, double gradScale) {
        enter();
        if (params.size() != grads.size() || params.size() != m.size() || params.size() != v.size())
            throw new IllegalArgumentException("adamw: params, grads and moments lists differ in length");
        double bc1 = 1 - Math.pow(cfg.beta1(), step), bc2 = 1 - Math.pow(cfg.beta2(), step);
        if (gradNormSq != null && (gradNormSq.dtype() != DType.F32 || gradNormSq.numel() < 1))
            throw new IllegalArgumentException("adamw: gradNormSq must be F32 [1], got " + gradNormSq);
        // one launch for all tensors: work items (p, g, m, v, begin, end) of at most ADAMW_ITEM elements in a device
        // table that is rebuilt only when the tensors change (the same LoRA tensors step after step)
        List<long[]> items = new java.util.ArrayList<>();
        for (int i = 0; i < params.size(); i++) {
            CudaTensor p = cu(params.get(i)), g = cu(grads.get(i)), mi = cu(m.get(i)), vi = cu(v.get(i));
            sameMatrix(p, g, "adamw");
            for (CudaTensor c : new CudaTensor[] {p, g, mi, vi})
                if (c.dtype() != DType.F32 || !c.isContiguous()) throw new IllegalArgumentException("adamw: tensors must be contiguous F32, got " + c);
            sameMatrix(p, mi, "adamw");
            sameMatrix(p, vi, "adamw");
            for (long b = 0; b < p.numel(); b += ADAMW_ITEM)
                items.add(new long[] {p.address(), g.address(), mi.address(), vi.address(), b, Math.min(p.numel(), b + ADAMW_ITEM)});
        }
        if (items.isEmpty()) return;
        long[] key = new long[items.size() * 6];
        for (int i = 0; i < items.size(); i++) System.arraycopy(items.get(i), 0, key, i * 6, 6);
        if (adamwTable == null || !java.util.Arrays.equals(key, adamwTableKey)) {
            if (adamwTable != null) {
                synchronize(); // the previous launch may still read it
                adamwTable.close();
            }
            adamwTable = fromBytes(MemorySegment.ofArray(key), DType.U8, DType.U8, key.length * 8L);
            adamwTableKey = key;
        }
        kernel("impasto_adamw_multi_f32").launch(ctx.stream(), Math.min(items.size(), 8192), 1, 1, BLOCK, 1, 1, 0,
                cu(adamwTable).address(), items.size(), lr, cfg.beta1(), cfg.beta2(), cfg.eps(), cfg.weightDecay(), bc1, bc2,
                addr(gradNormSq), cfg.maxGradNorm(), gradScale);
    }

    /** Elements per AdamW work item (kernels/elementwise.cu, AdamwWork). */
    static final long ADAMW_ITEM = 1 << 16;
    private Tensor adamwTable;
    private long[] adamwTableKey;

    @Override
    public boolean hasNonFinite(List<Tensor> tensors) {
        enter();
        try (Tensor flag = empty(DType.I32, 1)) {
            fill(flag, 0);
            for (Tensor t : tensors) {
                CudaTensor c = cu(t);
                kernel("impasto_nonfinite_" + sfx(c.dtype())).launch(ctx.stream(), reduceGrid(c.numel(), c.dtype()), 1, 1, BLOCK, 1, 1, 0,
                        cu(flag).address(), c.address(), c.rowStride(), c.rows(), c.cols());
            }
            return toDoubles(flag)[0] != 0;
        }
    }

    // ------------------------------------------------------------------ encoder ops (T5, CLIP, VAE): CudaEncoderOps

    @Override public void embedding(Tensor out, Tensor ids, Tensor table) { CudaEncoderOps.embedding(this, out, ids, table); }
    @Override public void rmsNorm(Tensor out, Tensor x, Tensor weight, double eps) { CudaEncoderOps.rmsNorm(this, out, x, weight, eps); }
    @Override public void layerNorm(Tensor out, Tensor x, Tensor weight, Tensor bias, double eps) { CudaEncoderOps.layerNorm(this, out, x, weight, bias, eps); }
    @Override public void quickGelu(Tensor out, Tensor x) { CudaEncoderOps.quickGelu(this, out, x); }
    @Override public void attentionInference(Tensor out, Tensor q, Tensor k, Tensor v, int batch, int heads, double scale, Tensor bias, boolean causal) {
        CudaEncoderOps.attentionInference(this, out, q, k, v, batch, heads, scale, bias, causal);
    }
    @Override public void conv2d(Tensor out, Tensor x, Tensor weight, Tensor bias, int stride, int padding) { CudaEncoderOps.conv2d(this, out, x, weight, bias, stride, padding); }
    @Override public void groupNorm(Tensor out, Tensor x, int groups, Tensor weight, Tensor bias, double eps, boolean silu) {
        CudaEncoderOps.groupNorm(this, out, x, groups, weight, bias, eps, silu);
    }
    @Override public void upsampleNearest2x(Tensor out, Tensor x) { CudaEncoderOps.upsampleNearest2x(this, out, x); }
    @Override public void pad2d(Tensor out, Tensor x, int top, int bottom, int left, int right) { CudaEncoderOps.pad2d(this, out, x, top, bottom, left, right); }
    @Override public void transpose(Tensor out, Tensor x) { CudaEncoderOps.transpose(this, out, x); }

    @Override
    /** Callable from any thread: from a virtual one the device memory is freed on impasto's device thread. */
    public void close() {
        dev.impasto.cuda.DeviceThread.call(() -> {
            if (dequantScratch != null) dequantScratch.close();
            dequantScratch = null;
            if (adamwTable != null) adamwTable.close();
            adamwTable = null;
            ctx.close();
            return null;
        });
    }
}
