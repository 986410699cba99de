package dev.impasto.model;

import dev.impasto.cuda.Cuda;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.MirrorBackend;
import dev.impasto.tensor.cuda.CudaBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The golden model's forward and backward on the GPU with every op mirrored on the CPU and compared (inputs
 * resynchronised before each op): names every op, shape and stride for which the GPU computes something else.
 */
@Tag("gpu")
class GoldenDebugGpuTest {
    @Test
    void everyOpOfTheModelMatchesTheCpu() throws Exception {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        List<String> problems = new ArrayList<>();
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            try (CudaBackend cuda = CudaBackend.open(0)) {
                List<MirrorBackend.Mismatch> mm = new ArrayList<>();
                Backend be = MirrorBackend.wrap(cuda, 1e-4, mm);
                Map<String, Double> err = GoldenFixture.compare(be, dt);
                System.out.println("[mirror] " + dt + " attention " + cuda.attentionImplementation() + ": golden " + err + "; " + mm.size() + " op mismatches");
                java.util.LinkedHashMap<String, MirrorBackend.Mismatch> distinct = new java.util.LinkedHashMap<>();
                for (MirrorBackend.Mismatch m : mm) distinct.putIfAbsent(m.op() + "#" + m.arg() + " " + m.tensor().replaceAll("offset \\d+", ""), m);
                for (MirrorBackend.Mismatch m : distinct.values()) {
                    String line = dt + " " + m.op() + " arg " + m.arg() + " " + m.tensor() + " rel err " + m.relErr();
                    System.out.println("[mirror]   " + line);
                    problems.add(line);
                }
            }
        }
        org.junit.jupiter.api.Assertions.assertTrue(problems.isEmpty(), String.join("\n", problems));
    }
}
