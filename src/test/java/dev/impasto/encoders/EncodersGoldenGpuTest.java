package dev.impasto.encoders;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.cuda.Cuda;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cuda.CudaBackend;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The encoders on the GPU against the fp32 reference outputs. In F32 (convolutions through impasto's im2col + fp32
 * cuBLASLt, since cuDNN may use TF32) every output must be within 1e-4, which checks the kernels exactly. In BF16 the
 * bound is 2e-2: storing every activation in bf16 alone costs these models 5e-3 (CLIP) to 1.2e-2 (T5) relative L2,
 * measured with the CPU backend rounding each store to bf16 against the same run in fp32, so 2e-3 is out of reach for
 * any bf16 implementation (transformers' own bf16 run included).
 */
@Tag("gpu")
class EncodersGoldenGpuTest {
    @Test
    void gpuF32MatchesTheReferenceImplementations() throws Exception {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        Assumptions.assumeTrue(EncodersGolden.present(), "golden fixtures not generated yet (src/test/golden/encoders/README.md)");
        try (CudaBackend be = CudaBackend.open(0)) {
            dev.impasto.tensor.cuda.GpuTestHooks.forceOwnConvolution(true);
            try {
                Map<String, Double> err = EncodersGolden.compare(be, DType.F32);
                System.out.println("encoders golden (GPU f32, im2col conv) rel L2: " + err);
                for (var e : err.entrySet()) assertTrue(e.getValue() <= 1e-4, e.getKey() + " " + err);
            } finally {
                dev.impasto.tensor.cuda.GpuTestHooks.forceOwnConvolution(false);
            }
        }
    }

    @Test
    void gpuBf16MatchesTheReferenceImplementations() throws Exception {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        Assumptions.assumeTrue(EncodersGolden.present(), "golden fixtures not generated yet (src/test/golden/encoders/README.md)");
        try (CudaBackend be = CudaBackend.open(0)) {
            Map<String, Double> err = EncodersGolden.compare(be, DType.BF16);
            System.out.println("encoders golden (GPU bf16, conv " + dev.impasto.tensor.cuda.CudaEncoderOps.convImplementation() + ") rel L2: " + err);
            for (var e : err.entrySet()) assertTrue(e.getValue() <= 2e-2, e.getKey() + " " + err);
        }
    }
}
