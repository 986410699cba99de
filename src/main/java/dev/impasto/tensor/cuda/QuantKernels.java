package dev.impasto.tensor.cuda;

import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;

/**
 * Launches the dequantization and dequantizing-GEMV kernels (kernels/quant.cu) for each quantized weight format. The
 * layouts are those of {@code dev.impasto.quant}; the dequantized values are bit-identical to
 * {@code WeightQuantizer.dequantize}.
 */
final class QuantKernels {
    private QuantKernels() {}

    static final int BLOCK = CudaBackend.BLOCK;
    /** Output rows per warp in the GEMV kernels (GEMV_R in quant.cu). */
    static final int GEMV_ROWS_PER_WARP = 4;

    /** Rows of x one GEMV launch takes (the largest compile-time bucket); more rows take several launches. */
    static final int GEMV_BUCKET_MAX = 4;

    /**
     * Whether the weight's format has a dequantizing GEMV: NF4 (plain and double-quantized), int8, int4, and the GGUF
     * block types the GPU reads (Q8_0, Q4_0, Q4_K) when the rows are whole blocks.
     */
    static boolean hasGemv(LinearWeight w) {
        if (w instanceof LinearWeight.Gguf g) {
            GgufKind kind = GgufKind.find(g.ggmlType());
            return kind != null && g.inFeatures() % kind.blockElements == 0;
        }
        return w instanceof LinearWeight.Nf4 || w instanceof LinearWeight.Int8 || w instanceof LinearWeight.Int4;
    }

    /** Whether linear(out, x, w) with rows of x runs the GEMV: a GEMV format, F32 or BF16 output, at most maxRows rows. */
    static boolean gemvApplies(LinearWeight w, DType outType, long rows, long maxRows) {
        return hasGemv(w) && rows >= 1 && rows <= maxRows && (outType == DType.F32 || outType == DType.BF16);
    }

    /** The compile-time row bucket of the GEMV kernels (1, 2 or 4) for m rows of x. */
    static int gemvBucket(long m) {
        if (m <= 1) return 1;
        if (m <= 2) return 2;
        if (m <= 4) return 4;
        throw new IllegalArgumentException("one quantized GEMV launch takes at most " + GEMV_BUCKET_MAX + " rows of x, got " + m);
    }

    private static int biasType(Tensor bias) {
        if (bias == null) return 0;
        return switch (bias.dtype()) {
            case F32 -> 1;
            case BF16 -> 2;
            case F16 -> 3;
            default -> throw new IllegalArgumentException("bias must be F32, BF16 or F16, got " + bias);
        };
    }

    /**
     * out[M, N] = x[M, K] W^T + bias + beta * out, reading the quantized weight directly (F32 or BF16 out); rows beyond
     * {@link #GEMV_BUCKET_MAX} take further launches of 4 rows each.
     */
    static void gemv(CudaBackend be, CudaTensor out, CudaTensor x, LinearWeight w, Tensor bias, double beta) {
        if (out.rows() != x.rows()) throw new IllegalArgumentException("linear: x " + x + " and out " + out + " differ in rows");
        for (long r0 = 0; r0 < x.rows(); r0 += GEMV_BUCKET_MAX) {
            long r1 = Math.min(x.rows(), r0 + GEMV_BUCKET_MAX);
            CudaTensor xs = x, os = out;
            if (r0 > 0 || r1 < x.rows()) {
                xs = CudaBackend.cu(x.matrix().rows(r0, r1));
                os = CudaBackend.cu(out.matrix().rows(r0, r1));
            }
            gemvLaunch(be, os, xs, w, bias, beta);
        }
    }

    private static void gemvLaunch(CudaBackend be, CudaTensor out, CudaTensor x, LinearWeight w, Tensor bias, double beta) {
        if (out.dtype() != DType.F32 && out.dtype() != DType.BF16)
            throw new IllegalArgumentException("the quantized GEMV writes F32 or BF16, not " + out.dtype());
        long m = x.rows(), n = w.outFeatures(), k = w.inFeatures();
        if (bias != null && (bias.numel() != n || !bias.isContiguous()))
            throw new IllegalArgumentException("linear: bias " + bias + " must be a contiguous vector of " + n);
        CudaTensor xin = x;
        Tensor tmp = null;
        try {
            if (x.dtype() != out.dtype()) { // the kernels read x in the output's type
                tmp = be.empty(out.dtype(), x.rows(), x.cols());
                be.copy(tmp, x);
                xin = CudaBackend.cu(tmp);
            }
            int bucket = gemvBucket(m);
            long rowGroups = (n + GEMV_ROWS_PER_WARP - 1) / GEMV_ROWS_PER_WARP;
            int grid = (int) Math.max(1, Math.min((rowGroups + 7) / 8, 65535L * 16));
            String t = CudaBackend.sfx(out.dtype());
            long biasPtr = CudaBackend.addr(bias);
            int bt = biasType(bias);
            switch (w) {
                case LinearWeight.Nf4 q -> {
                    checkNf4(q);
                    be.kernel("impasto_gemv_nf4_m" + bucket + "_" + t).launch(be.ctx.stream(), grid, 1, 1, BLOCK, 1, 1, 0,
                            out.address(), out.rowStride(), xin.address(), xin.rowStride(), (int) m, n, k,
                            CudaBackend.addr(q.packed()), CudaBackend.addr(q.absmax()), CudaBackend.addr(q.nestedAbsmax()),
                            CudaBackend.addr(q.nestedCode()), q.nestedOffset(), q.blocksize(), Math.max(1, q.nestedBlocksize()),
                            biasPtr, bt, (float) beta);
                }
                case LinearWeight.Int8 q -> {
                    checkInt8(q);
                    be.kernel("impasto_gemv_int8_m" + bucket + "_" + t).launch(be.ctx.stream(), grid, 1, 1, BLOCK, 1, 1, 0,
                            out.address(), out.rowStride(), xin.address(), xin.rowStride(), (int) m, n, k,
                            CudaBackend.addr(q.q()), CudaBackend.addr(q.scale()), biasPtr, bt, (float) beta);
                }
                case LinearWeight.Int4 q -> {
                    checkInt4(q);
                    be.kernel("impasto_gemv_int4_m" + bucket + "_" + t).launch(be.ctx.stream(), grid, 1, 1, BLOCK, 1, 1, 0,
                            out.address(), out.rowStride(), xin.address(), xin.rowStride(), (int) m, n, k,
                            CudaBackend.addr(q.packed()), CudaBackend.addr(q.scale()), CudaBackend.addr(q.min()), q.groupSize(),
                            biasPtr, bt, (float) beta);
                }
                case LinearWeight.Gguf q -> {
                    GgufKind kind = checkGguf(q);
                    be.kernel("impasto_gemv_" + kind.kernel + "_m" + bucket + "_" + t).launch(be.ctx.stream(), grid, 1, 1, BLOCK, 1, 1, 0,
                            out.address(), out.rowStride(), xin.address(), xin.rowStride(), (int) m, n, k, CudaBackend.addr(q.blocks()),
                            biasPtr, bt, (float) beta);
                }
                default -> throw new IllegalArgumentException("no quantized GEMV for " + w.format() + " weights");
            }
        } finally {
            if (tmp != null) tmp.close();
        }
    }

    /** Whether {@link #dequantize} writes {@code w} into rows of a wider matrix (a row stride above K). */
    static boolean dequantizesStrided(LinearWeight w) {
        return w instanceof LinearWeight.Nf4 || w instanceof LinearWeight.Int8 || w instanceof LinearWeight.Int4;
    }

    /**
     * The dense weight [N, K] in out's dtype: out contiguous with N * K elements, or (NF4, int8, int4) an [N, K] view
     * whose rows lie further apart (the left K columns of a wider matrix).
     */
    static void dequantize(CudaBackend be, CudaTensor out, LinearWeight w) {
        long numel = w.outFeatures() * w.inFeatures(), k = w.inFeatures();
        boolean strided = !out.isContiguous();
        if (strided ? out.rows() != w.outFeatures() || out.cols() != k || !dequantizesStrided(w) : out.numel() != numel)
            throw new IllegalArgumentException("dequantize: output " + out + " must be contiguous with " + numel + " elements"
                    + (dequantizesStrided(w) ? " or an [" + w.outFeatures() + ", " + k + "] view" : ""));
        long ld = strided ? out.rowStride() : k;
        String t = CudaBackend.sfx(out.dtype());
        // fast paths give each thread groups of 8 elements, 4 groups per grid-stride step
        int grid = (int) Math.max(1, Math.min((numel / 8 + 4L * BLOCK - 1) / (4L * BLOCK), 65535L * 32));
        switch (w) {
            case LinearWeight.Nf4 q -> {
                checkNf4(q);
                be.kernel("impasto_dequant_nf4_" + t).launch(be.ctx.stream(), grid, 1, 1, BLOCK, 1, 1, 0,
                        out.address(), CudaBackend.addr(q.packed()), CudaBackend.addr(q.absmax()), CudaBackend.addr(q.nestedAbsmax()),
                        CudaBackend.addr(q.nestedCode()), q.nestedOffset(), q.blocksize(), Math.max(1, q.nestedBlocksize()), numel, k, ld);
            }
            case LinearWeight.Int8 q -> {
                checkInt8(q);
                be.kernel("impasto_dequant_int8_" + t).launch(be.ctx.stream(), grid, 1, 1, BLOCK, 1, 1, 0,
                        out.address(), CudaBackend.addr(q.q()), CudaBackend.addr(q.scale()), q.outFeatures(), q.inFeatures(), ld);
            }
            case LinearWeight.Int4 q -> {
                checkInt4(q);
                be.kernel("impasto_dequant_int4_" + t).launch(be.ctx.stream(), grid, 1, 1, BLOCK, 1, 1, 0,
                        out.address(), CudaBackend.addr(q.packed()), CudaBackend.addr(q.scale()), CudaBackend.addr(q.min()), q.groupSize(),
                        q.outFeatures(), q.inFeatures(), ld);
            }
            case LinearWeight.Gguf q -> {
                GgufKind kind = checkGguf(q);
                int g = (int) Math.max(1, Math.min((numel / 8 + BLOCK - 1) / BLOCK, 65535L * 32));
                be.kernel("impasto_dequant_" + kind.kernel + "_" + t).launch(be.ctx.stream(), g, 1, 1, BLOCK, 1, 1, 0,
                        out.address(), CudaBackend.addr(q.blocks()), numel);
            }
            default -> throw new IllegalArgumentException("no GPU dequantization for " + w.format() + " weights");
        }
    }

    /** The GGUF block types the GPU dequantizes. */
    enum GgufKind {
        Q8_0(8, "q8_0", 32, 34), Q4_0(2, "q4_0", 32, 18), Q4_K(12, "q4_k", 256, 144);

        final int ggmlType;
        final String kernel;
        final int blockElements, blockBytes;

        GgufKind(int ggmlType, String kernel, int blockElements, int blockBytes) {
            this.ggmlType = ggmlType;
            this.kernel = kernel;
            this.blockElements = blockElements;
            this.blockBytes = blockBytes;
        }

        static GgufKind find(int ggmlType) {
            for (GgufKind k : values()) if (k.ggmlType == ggmlType) return k;
            return null;
        }

        static GgufKind of(LinearWeight.Gguf q) {
            GgufKind k = find(q.ggmlType());
            if (k != null) return k;
            throw new UnsupportedOperationException("the GPU dequantizes GGUF Q8_0, Q4_0 and Q4_K weights, not " + q.typeName()
                    + " (ggml type " + q.ggmlType() + "); convert the checkpoint or load it as bf16");
        }
    }

    /** The block type of a GGUF weight the GPU reads, after checking that rows are whole blocks and the bytes are all there. */
    private static GgufKind checkGguf(LinearWeight.Gguf q) {
        GgufKind kind = GgufKind.of(q);
        if (q.inFeatures() % kind.blockElements != 0)
            throw new IllegalArgumentException(q.typeName() + " rows must be whole blocks of " + kind.blockElements + " values, the layer has " + q.inFeatures());
        long need = q.outFeatures() * q.inFeatures() / kind.blockElements * kind.blockBytes;
        if (q.blocks().numel() * q.blocks().dtype().byteSize() < need)
            throw new IllegalArgumentException(q.typeName() + " weight [" + q.outFeatures() + ", " + q.inFeatures() + "] needs " + need
                    + " bytes of blocks, got " + q.blocks().numel() * q.blocks().dtype().byteSize());
        return kind;
    }

    private static void checkNf4(LinearWeight.Nf4 q) {
        long numel = q.outFeatures() * q.inFeatures();
        int bs = q.blocksize();
        if (bs < 32 || bs > 4096 || Integer.bitCount(bs) != 1)
            throw new IllegalArgumentException("NF4 blocksize must be a power of two in [32, 4096], got " + bs);
        long blocks = (numel + bs - 1) / bs;
        if (q.packed().numel() < (numel + 1) / 2)
            throw new IllegalArgumentException("NF4 weight [" + q.outFeatures() + ", " + q.inFeatures() + "] needs " + (numel + 1) / 2
                    + " packed bytes, got " + q.packed().numel());
        if (q.absmax().numel() < blocks)
            throw new IllegalArgumentException("NF4 weight needs " + blocks + " absmax values, got " + q.absmax().numel());
        if (q.doubleQuantized()) {
            if (q.absmax().dtype().byteSize() != 1) throw new IllegalArgumentException("double-quantized NF4 absmax must be U8 codes, got " + q.absmax());
            if (q.nestedBlocksize() <= 0) throw new IllegalArgumentException("nested blocksize " + q.nestedBlocksize());
            if (q.nestedCode() == null || q.nestedCode().numel() != 256 || q.nestedCode().dtype() != DType.F32)
                throw new IllegalArgumentException("double-quantized NF4 needs a F32 [256] nested code, got " + q.nestedCode());
            long groups = (blocks + q.nestedBlocksize() - 1) / q.nestedBlocksize();
            if (q.nestedAbsmax().numel() < groups || q.nestedAbsmax().dtype() != DType.F32)
                throw new IllegalArgumentException("double-quantized NF4 needs " + groups + " F32 nested absmax values, got " + q.nestedAbsmax());
        } else if (q.absmax().dtype() != DType.F32) {
            throw new IllegalArgumentException("NF4 absmax must be F32, got " + q.absmax());
        }
    }

    private static void checkInt8(LinearWeight.Int8 q) {
        if (q.q().numel() < q.outFeatures() * q.inFeatures() || q.q().dtype().byteSize() != 1)
            throw new IllegalArgumentException("int8 weight needs " + q.outFeatures() * q.inFeatures() + " I8 codes, got " + q.q());
        if (q.scale().numel() < q.outFeatures() || q.scale().dtype() != DType.F32)
            throw new IllegalArgumentException("int8 weight needs " + q.outFeatures() + " F32 scales, got " + q.scale());
    }

    private static void checkInt4(LinearWeight.Int4 q) {
        if (q.groupSize() <= 0) throw new IllegalArgumentException("int4 group size " + q.groupSize());
        long bytes = q.outFeatures() * ((q.inFeatures() + 1) / 2), groups = q.outFeatures() * q.groupsPerRow();
        if (q.packed().numel() < bytes) throw new IllegalArgumentException("int4 weight needs " + bytes + " packed bytes, got " + q.packed());
        if (q.scale().numel() < groups || q.min().numel() < groups || q.scale().dtype() != DType.F32 || q.min().dtype() != DType.F32)
            throw new IllegalArgumentException("int4 weight needs " + groups + " F32 scales and mins, got " + q.scale() + ", " + q.min());
    }
}
