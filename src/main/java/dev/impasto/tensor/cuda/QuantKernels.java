package dev.impasto.tensor.cuda;

import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;

/** Launches the dequantization and dequantizing-GEMV kernels for each quantized weight format. */
final class QuantKernels {
    private QuantKernels() {}

    static boolean hasGemv(LinearWeight w) {
        return false;
    }

    static void gemv(CudaBackend be, CudaTensor out, CudaTensor x, LinearWeight w, Tensor bias, double beta) {
        throw new UnsupportedOperationException("quantized GEMV not implemented yet");
    }

    static void dequantize(CudaBackend be, CudaTensor out, LinearWeight w) {
        throw new UnsupportedOperationException("GPU dequantization of " + w.format() + " not implemented yet");
    }
}
