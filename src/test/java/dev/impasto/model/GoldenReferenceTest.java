package dev.impasto.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The engine in fp32 on the CPU equals the PyTorch reference implementation: forward ≤ 1e-4, gradients ≤ 1e-3. */
class GoldenReferenceTest {
    @Test
    void cpuFp32MatchesTheReference() throws Exception {
        org.junit.jupiter.api.Assertions.assertTrue(GoldenFixture.present(), "golden fixtures missing under " + GoldenFixture.DIR
                + ": run src/test/golden/flux/make_golden.py (see its header)");
        Map<String, Double> err = GoldenFixture.compare(new CpuBackend(), DType.F32);
        System.out.println("golden (CPU fp32) rel L2 errors: " + err);
        assertTrue(err.get("out") <= 1e-4, "forward " + err);
        for (String k : new String[] {"d_img", "d_txt", "d_y", "lora_A.grad", "lora_B.grad"}) assertTrue(err.get(k) <= 1e-3, k + " " + err);
    }
}
