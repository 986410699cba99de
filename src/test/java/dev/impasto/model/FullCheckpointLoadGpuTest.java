package dev.impasto.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.cuda.Cuda;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cuda.CudaBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Loading a full-size FLUX.1-dev file (23.8 GB, bf16) onto the GPU as NF4 streams it: the host's peak resident set
 * grows by far less than the file, because each tensor's mapped pages are released once it is on the device. Runs
 * when IMPASTO_FLUX_CHECKPOINT names such a file (bench/write_random_flux.py writes one with random values).
 */
@Tag("gpu")
class FullCheckpointLoadGpuTest {
    static long statusKb(String field) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status")))
            if (line.startsWith(field + ":")) return Long.parseLong(line.replaceAll("\\D", ""));
        return -1;
    }

    @Test
    void nf4LoadOfAFullCheckpointKeepsTheHostFootprintSmall() throws Exception {
        String file = System.getenv("IMPASTO_FLUX_CHECKPOINT");
        Assumptions.assumeTrue(Cuda.available() && file != null && Files.isRegularFile(Path.of(file)), "needs a GPU and IMPASTO_FLUX_CHECKPOINT");
        long fileBytes = Files.size(Path.of(file));
        try { // reset the peak to the current RSS, so that earlier tests in this JVM do not hide the load's own peak
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (java.io.IOException e) {
            System.out.println("could not reset VmHWM (" + e.getMessage() + "): the peak below includes earlier work in this JVM");
        }
        long hwm0 = statusKb("VmHWM"), rss0 = statusKb("VmRSS");
        long t0 = System.nanoTime();
        try (CudaBackend be = CudaBackend.open(0); FluxCheckpoint ck = FluxCheckpoint.open(Path.of(file))) {
            ck.requireComplete();
            try (FluxModel m = FluxModel.build(FluxConfig.dev(), be, DType.BF16, new CheckpointWeights(ck, be, DType.BF16, BaseFormat.NF4, false, null))) {
                be.synchronize();
                double secs = (System.nanoTime() - t0) / 1e9;
                long hwm = statusKb("VmHWM"), rss = statusKb("VmRSS"), rssFile = statusKb("RssFile");
                System.out.printf(Locale.ROOT, "full checkpoint %.1f GB -> NF4 on the GPU (%.2f GiB base) in %.1f s (%.2f GB/s); host VmHWM %.2f -> %.2f GiB "
                                + "(+%.2f), VmRSS %.2f -> %.2f GiB, RssFile %.2f GiB after%n", fileBytes / 1e9, m.baseBytes() / 1073741824.0, secs,
                        fileBytes / 1e9 / secs, hwm0 / 1048576.0, hwm / 1048576.0, (hwm - hwm0) / 1048576.0, rss0 / 1048576.0, rss / 1048576.0,
                        rssFile / 1048576.0);
                assertTrue((hwm - hwm0) * 1024L < fileBytes / 4, "peak resident set grew by " + (hwm - hwm0) / 1048576.0 + " GiB for a "
                        + fileBytes / 1e9 + " GB file: the load is not streaming");
            }
        }
    }
}
