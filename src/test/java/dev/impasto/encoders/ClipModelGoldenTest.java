package dev.impasto.encoders;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The CPU in fp32 against transformers' CLIPModel (both towers and projections: every output within 1e-4; measured
 * 2e-7 to 3e-7 against transformers 5.17) and CLIPImageProcessor (torchvision's resize in transformers 5, PIL's in 4:
 * within one of 255 levels anywhere, a tenth on average; measured 1 and 0.012 for both, since PIL and torchvision round
 * their fixed-point weights and this class computes in doubles).
 */
class ClipModelGoldenTest {
    @Test
    void cpuMatchesTransformersClipModel() throws Exception {
        Assumptions.assumeTrue(ClipModelGolden.present(), "CLIP model golden fixtures not generated yet (src/test/golden/encoders/README.md)");
        Map<String, Double> err = ClipModelGolden.compare(new CpuBackend(), DType.F32);
        System.out.println("CLIP model golden (CPU fp32) rel L2: " + err);
        for (var e : err.entrySet()) assertTrue(e.getValue() <= 1e-4, e.getKey() + " " + err);
    }

    @Test
    void preprocessingMatchesClipImageProcessor() throws Exception {
        Assumptions.assumeTrue(ClipModelGolden.present(), "CLIP model golden fixtures not generated yet (src/test/golden/encoders/README.md)");
        Map<String, double[]> err = ClipModelGolden.preprocessingErrors();
        err.forEach((k, v) -> System.out.println("CLIP preprocessing vs " + k + ": max " + v[0] + ", mean " + v[1] + " levels"));
        assertFalse(err.isEmpty());
        for (var e : err.entrySet())
            assertTrue(e.getValue()[0] <= 1.01 && e.getValue()[1] <= 0.1, e.getKey() + " " + Arrays.toString(e.getValue()));
    }
}
