package dev.impasto.tensor.cuda;

/** Test access to CudaEncoderOps' convolution choice from other packages. */
public final class GpuTestHooks {
    private GpuTestHooks() {}

    public static void forceOwnConvolution(boolean own) {
        CudaEncoderOps.forceConv(own ? CudaEncoderOps.ConvPath.OWN : null);
    }
}
