package dev.impasto.encoders;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The CPU reference in fp32 against transformers' T5 and CLIP and BFL's autoencoder: every output within 1e-4. */
class EncodersGoldenTest {
    @Test
    void cpuMatchesTheReferenceImplementations() throws Exception {
        Assumptions.assumeTrue(EncodersGolden.present(), "golden fixtures not generated yet (src/test/golden/encoders/README.md)");
        Map<String, Double> err = EncodersGolden.compare(new CpuBackend(), DType.F32);
        System.out.println("encoders golden (CPU fp32) rel L2: " + err);
        for (var e : err.entrySet()) assertTrue(e.getValue() <= 1e-4, e.getKey() + " " + err);
    }

    @Test
    void t5BucketsEqualTransformersForEveryRelativePositionOfA512TokenPrompt() throws Exception {
        Assumptions.assumeTrue(EncodersGolden.present(), "golden fixtures not generated yet");
        var bad = EncodersGolden.bucketMismatches();
        assertTrue(bad.isEmpty(), "relative position -> {ours, transformers}: " + bad.entrySet().stream().limit(10).map(e -> e.getKey() + "->" + java.util.Arrays.toString(e.getValue())).toList());
    }
}
