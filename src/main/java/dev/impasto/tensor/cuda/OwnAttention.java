package dev.impasto.tensor.cuda;

import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;

/**
 * impasto's own attention kernels (kernels/attention.cu): the fallback when libtorch is absent, and a cross-check of
 * the libtorch path in the tests.
 *
 * <p>BF16/F16 with head dim 64 or 128 and 16-byte aligned operands (row strides a multiple of 8 elements) run the
 * tensor-core kernels (FlashAttention-2 style, fp32 accumulation); anything else (F32, other head dims up to 256,
 * unaligned column views) runs the CUDA-core kernels, same algorithm, fp32 throughout.
 */
final class OwnAttention {
    private OwnAttention() {}

    static final int MAX_GENERIC_HEAD_DIM = 256;

    /** Whether the tensor-core kernels take these operands. */
    static boolean tensorCores(DType t, int headDim, CudaTensor... ts) {
        if (t != DType.BF16 && t != DType.F16) return false;
        if (headDim != 64 && headDim != 128) return false;
        for (CudaTensor c : ts) {
            if (c == null) continue;
            if (c.dtype() != t || c.address() % 16 != 0 || c.rowStride() % 8 != 0) return false;
        }
        return true;
    }

    private static void checkOperands(String op, long batch, long lq, long lk, int heads, int headDim, CudaTensor[] ts, long[] lens) {
        if (batch <= 0 || lq <= 0 || lk <= 0) throw new IllegalArgumentException(op + ": empty attention (batch " + batch + ", lq " + lq + ", lk " + lk + ")");
        if (batch > 65535 || heads > 65535) throw new IllegalArgumentException(op + ": batch " + batch + " or heads " + heads + " over 65535");
        for (int i = 0; i < ts.length; i++) {
            CudaTensor c = ts[i];
            if (c.cols() != (long) heads * headDim || c.rows() != batch * lens[i])
                throw new IllegalArgumentException(op + ": operand " + c + " is not [" + batch + " x " + lens[i] + ", " + heads + " x " + headDim + "]");
        }
        if (headDim > MAX_GENERIC_HEAD_DIM && !tensorCores(ts[0].dtype(), headDim, ts))
            throw new IllegalArgumentException(op + ": head dim " + headDim + " is over " + MAX_GENERIC_HEAD_DIM + " (own attention kernels)");
    }

    private static void checkLse(Tensor lse, long batch, int heads, long lq) {
        if (lse != null && (lse.dtype() != DType.F32 || lse.numel() != batch * heads * lq || !lse.isContiguous()))
            throw new IllegalArgumentException("attention: lse must be contiguous F32 [" + batch + ", " + heads + ", " + lq + "], got " + lse);
    }

    static void forward(CudaBackend be, CudaTensor out, Tensor lse, CudaTensor q, CudaTensor k, CudaTensor v, long batch, long lq, long lk,
                        int heads, int headDim) {
        checkOperands("attention", batch, lq, lk, heads, headDim, new CudaTensor[] {q, k, v, out}, new long[] {lq, lk, lk, lq});
        checkLse(lse, batch, heads, lq);
        String t = CudaBackend.sfx(q.dtype());
        float scale = (float) (1 / Math.sqrt(headDim));
        long lsePtr = CudaBackend.addr(lse);
        if (tensorCores(q.dtype(), headDim, q, k, v, out)) {
            int smem = (64 + 4 * 64) * headDim * 2;
            be.kernelWithShared("impasto_attn_fwd_mma_d" + headDim + "_" + t, smem).launch(be.ctx.stream(),
                    (int) ((lq + 63) / 64), heads, (int) batch, 128, 1, 1, smem,
                    out.address(), out.rowStride(), lsePtr, q.address(), q.rowStride(), k.address(), k.rowStride(), v.address(), v.rowStride(),
                    heads, lq, lk, scale);
        } else {
            int smem = (3 * 16 * (headDim + 1) + 16 * 17) * 4;
            be.kernelWithShared("impasto_attn_fwd_generic_" + t, smem).launch(be.ctx.stream(),
                    (int) ((lq + 15) / 16), heads, (int) batch, 256, 1, 1, smem,
                    out.address(), out.rowStride(), lsePtr, q.address(), q.rowStride(), k.address(), k.rowStride(), v.address(), v.rowStride(),
                    heads, lq, lk, headDim, scale);
        }
    }

    static void backward(CudaBackend be, CudaTensor dq, CudaTensor dk, CudaTensor dv, CudaTensor dout, CudaTensor q, CudaTensor k,
                         CudaTensor v, CudaTensor out, CudaTensor lse, long batch, long lq, long lk, int heads, int headDim) {
        checkOperands("attentionBackward", batch, lq, lk, heads, headDim, new CudaTensor[] {q, k, v, out, dout, dq, dk, dv},
                new long[] {lq, lk, lk, lq, lq, lq, lk, lk});
        if (lse == null) throw new IllegalArgumentException("attentionBackward needs the lse of the forward");
        checkLse(lse, batch, heads, lq);
        String t = CudaBackend.sfx(q.dtype());
        float scale = (float) (1 / Math.sqrt(headDim));
        try (Tensor delta = be.empty(DType.F32, batch * heads * lq)) {
            long items = batch * lq * heads;
            be.kernel("impasto_attn_delta_" + t).launch(be.ctx.stream(), CudaBackend.warpGrid(items), 1, 1, 256, 1, 1, 0,
                    CudaBackend.addr(delta), dout.address(), dout.rowStride(), out.address(), out.rowStride(), batch, lq, heads, headDim);
            if (tensorCores(q.dtype(), headDim, q, k, v, out, dout, dq, dk, dv)) {
                int smemQ = (2 * 64 + 4 * 32) * headDim * 2;
                be.kernelWithShared("impasto_attn_bwd_dq_mma_d" + headDim + "_" + t, smemQ).launch(be.ctx.stream(),
                        (int) ((lq + 63) / 64), heads, (int) batch, 128, 1, 1, smemQ,
                        dq.address(), dq.rowStride(), q.address(), q.rowStride(), k.address(), k.rowStride(), v.address(), v.rowStride(),
                        dout.address(), dout.rowStride(), lse.address(), CudaBackend.addr(delta), heads, lq, lk, scale);
                int smemKV = (2 * 64 + 4 * 32) * headDim * 2 + 4 * 32 * 4;
                be.kernelWithShared("impasto_attn_bwd_dkdv_mma_d" + headDim + "_" + t, smemKV).launch(be.ctx.stream(),
                        (int) ((lk + 63) / 64), heads, (int) batch, 128, 1, 1, smemKV,
                        dk.address(), dk.rowStride(), dv.address(), dv.rowStride(), q.address(), q.rowStride(), k.address(), k.rowStride(),
                        v.address(), v.rowStride(), dout.address(), dout.rowStride(), lse.address(), CudaBackend.addr(delta), heads, lq, lk, scale);
            } else {
                int smemQ = (4 * 16 * (headDim + 1) + 16 * 17) * 4;
                be.kernelWithShared("impasto_attn_bwd_dq_generic_" + t, smemQ).launch(be.ctx.stream(),
                        (int) ((lq + 15) / 16), heads, (int) batch, 256, 1, 1, smemQ,
                        dq.address(), dq.rowStride(), q.address(), q.rowStride(), k.address(), k.rowStride(), v.address(), v.rowStride(),
                        dout.address(), dout.rowStride(), lse.address(), CudaBackend.addr(delta), heads, lq, lk, headDim, scale);
                int smemKV = (4 * 16 * (headDim + 1) + 2 * 16 * 17) * 4;
                be.kernelWithShared("impasto_attn_bwd_dkdv_generic_" + t, smemKV).launch(be.ctx.stream(),
                        (int) ((lk + 15) / 16), heads, (int) batch, 256, 1, 1, smemKV,
                        dk.address(), dk.rowStride(), dv.address(), dv.rowStride(), q.address(), q.rowStride(), k.address(), k.rowStride(),
                        v.address(), v.rowStride(), dout.address(), dout.rowStride(), lse.address(), CudaBackend.addr(delta), heads, lq, lk,
                        headDim, scale);
            }
        }
    }
}
