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
 * The CLIP model on the GPU against transformers' fp32 outputs: in F32 within 1e-4 (the kernels exactly; the patch
 * embedding is a matrix product, no convolution), in BF16 within 2e-2, the bound EncodersGoldenGpuTest explains
 * (bf16 activations alone cost these tiny models 5e-3 to 1.2e-2).
 */
@Tag("gpu")
class ClipModelGoldenGpuTest {
    @Test
    void gpuF32MatchesTransformersClipModel() throws Exception {
        check(DType.F32, 1e-4);
    }

    @Test
    void gpuBf16MatchesTransformersClipModel() throws Exception {
        check(DType.BF16, 2e-2);
    }

    static void check(DType dt, double bound) throws Exception {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        Assumptions.assumeTrue(ClipModelGolden.present(), "CLIP model golden fixtures not generated yet (src/test/golden/encoders/README.md)");
        try (CudaBackend be = CudaBackend.open(0)) {
            Map<String, Double> err = ClipModelGolden.compare(be, dt);
            System.out.println("CLIP model golden (GPU " + dt.name().toLowerCase(java.util.Locale.ROOT) + ") rel L2: " + err);
            for (var e : err.entrySet()) assertTrue(e.getValue() <= bound, e.getKey() + " " + err);
        }
    }
}
