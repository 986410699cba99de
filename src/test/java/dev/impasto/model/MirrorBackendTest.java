package dev.impasto.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.tensor.DType;
import dev.impasto.tensor.MirrorBackend;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The differential mirror itself: CPU against CPU finds nothing and leaves the results unchanged. */
class MirrorBackendTest {
    @Test
    void cpuMirroredOnCpuAgrees() throws Exception {
        List<MirrorBackend.Mismatch> mm = new ArrayList<>();
        Map<String, Double> err = GoldenFixture.compare(MirrorBackend.wrap(new CpuBackend(), 1e-9, mm), DType.F32);
        assertEquals(List.of(), mm);
        assertTrue(err.get("out") < 1e-4, err.toString());
    }
}
