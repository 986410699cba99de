package dev.impasto.tensor.cuda;

import dev.impasto.tensor.Tensor;

/** impasto's own attention kernels: the fallback when libtorch is absent. */
final class OwnAttention {
    private OwnAttention() {}

    static void forward(CudaBackend be, CudaTensor out, Tensor lse, CudaTensor q, CudaTensor k, CudaTensor v, long batch, long lq, long lk,
                        int heads, int headDim) {
        throw new UnsupportedOperationException("own attention kernel not implemented yet");
    }

    static void backward(CudaBackend be, CudaTensor dq, CudaTensor dk, CudaTensor dv, CudaTensor dout, CudaTensor q, CudaTensor k,
                         CudaTensor v, CudaTensor out, CudaTensor lse, long batch, long lq, long lk, int heads, int headDim) {
        throw new UnsupportedOperationException("own attention kernel not implemented yet");
    }
}
