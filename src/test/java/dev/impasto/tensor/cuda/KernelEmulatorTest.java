package dev.impasto.tensor.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The CUDA kernels executed on the CPU by the host emulator (kernels/emu: every CUDA thread a std::thread, warp
 * shuffles, ldmatrix and mma.sync emulated with the PTX fragment layouts) against fp64 references, so a kernel change
 * that breaks indexing, a fragment layout or the arithmetic fails without a GPU. Needs g++ 12+ and the CUDA headers;
 * skipped when they are absent. About 30 seconds on two cores.
 */
class KernelEmulatorTest {

    @Test
    void kernelsMatchFp64ReferencesOnTheHostEmulator() throws IOException, InterruptedException {
        Path script = Path.of("kernels", "emu", "run.sh").toAbsolutePath();
        assumeTrue(Files.isRegularFile(script), "kernels/emu/run.sh not found from " + Path.of("").toAbsolutePath());
        String cudaHome = System.getenv().getOrDefault("CUDA_HOME", "/usr/local/cuda");
        assumeTrue(Files.isRegularFile(Path.of(cudaHome, "include", "cuda_bf16.h")), "CUDA headers not found under " + cudaHome + "/include");
        assumeTrue(onPath("g++"), "g++ not on PATH");
        Process p = new ProcessBuilder("bash", script.toString()).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(10, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            fail("kernel emulator did not finish in 10 minutes");
        }
        String log = new String(out, StandardCharsets.UTF_8);
        StringBuilder failed = new StringBuilder();
        for (String line : log.split("\n")) if (line.startsWith("FAIL") || line.startsWith("  worst") || line.contains("error")) failed.append(line).append('\n');
        assertEquals(0, p.exitValue(), "kernel emulator checks failed (exit " + p.exitValue() + "):\n" + failed + "\n--- last output ---\n"
                + log.substring(Math.max(0, log.length() - 3000)));
    }

    private static boolean onPath(String exe) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":"))
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, exe))) return true;
        return false;
    }
}
