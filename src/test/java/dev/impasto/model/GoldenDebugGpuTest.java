package dev.impasto.model;

import dev.impasto.cuda.Cuda;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.FiniteCheckingBackend;
import dev.impasto.tensor.cuda.CudaBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Runs the golden model on the GPU in f32 and bf16 with every op checked for NaN/Inf, to name the op that makes one. */
@Tag("gpu")
class GoldenDebugGpuTest {
    @Test
    void everyOpStaysFinite() throws Exception {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        List<String> problems = new ArrayList<>();
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            try (CudaBackend cuda = CudaBackend.open(0)) {
                List<String> log = new ArrayList<>();
                Backend be = FiniteCheckingBackend.wrap(cuda, log);
                try {
                    Map<String, Double> err = GoldenFixture.compare(be, dt);
                    System.out.println("[debug] golden on GPU " + dt + " (attention " + cuda.attentionImplementation() + "): " + err);
                } catch (RuntimeException e) {
                    problems.add(dt + ": " + e.getMessage());
                    System.out.println("[debug] " + dt + ": " + e.getMessage());
                }
            }
        }
        org.junit.jupiter.api.Assertions.assertTrue(problems.isEmpty(), String.join("\n", problems));
    }
}
