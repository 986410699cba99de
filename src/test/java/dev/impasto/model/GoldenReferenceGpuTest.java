package dev.impasto.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.cuda.Cuda;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cuda.CudaBackend;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The engine in bf16 on the GPU against the same reference fixtures: forward ≤ 2e-3, gradients ≤ 1e-2. */
@Tag("gpu")
class GoldenReferenceGpuTest {
    @Test
    void gpuBf16MatchesTheReference() throws Exception {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        try (CudaBackend be = CudaBackend.open(0)) {
            Map<String, Double> err = GoldenFixture.compare(be, DType.BF16);
            System.out.println("golden (GPU bf16, attention " + be.attentionImplementation() + ") rel L2 errors: " + err);
            assertTrue(err.get("out") <= 2e-3, "forward " + err);
            for (String k : new String[] {"d_img", "d_txt", "d_y", "lora_A.grad", "lora_B.grad"}) assertTrue(err.get(k) <= 1e-2, k + " " + err);
        }
    }
}
