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
            // f32 on the GPU against the fp32 reference: the kernels' arithmetic
            Map<String, Double> f32 = GoldenFixture.compare(be, DType.F32);
            System.out.println("golden (GPU f32, attention " + be.attentionImplementation() + ") vs fp32 reference: " + f32);
            assertTrue(f32.get("out") <= 1e-3, "f32 forward " + f32);
            for (String k : new String[] {"d_img", "d_txt", "d_y", "lora_A.grad", "lora_B.grad"}) assertTrue(f32.get(k) <= 1e-2, k + " " + f32);
            // bf16 against the fp32 reference. Storing the weights in bf16 alone moves this 4-block model's output by
            // about 1.5e-2 and its gradients by about 4e-2 (measured: the same numbers through libtorch's, flash's and
            // impasto's own attention), so the bound is set there; the reference's own bf16 run is no tighter peer:
            // it also rounds the timesteps to bf16 before the x1000 embedding and lands ~0.47 from its fp32 output.
            Map<String, Double> err = GoldenFixture.compare(be, DType.BF16);
            System.out.println("golden (GPU bf16, attention " + be.attentionImplementation() + ") vs fp32 reference: " + err
                    + (GoldenFixture.hasBf16Reference() ? "; vs the reference in bf16: " + GoldenFixture.compare(be, DType.BF16, "bf16.") : ""));
            assertTrue(err.get("out") <= 3e-2, "forward " + err);
            for (String k : new String[] {"d_img", "d_txt", "d_y", "lora_A.grad", "lora_B.grad"}) assertTrue(err.get(k) <= 1e-1, k + " " + err);
        }
    }
}
