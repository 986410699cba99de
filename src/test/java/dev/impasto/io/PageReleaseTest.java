package dev.impasto.io;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.tensor.DType;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading a mapped tensor makes its pages resident; releasing them takes them out of the process's RSS. */
class PageReleaseTest {
    static long rssFileKb() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status")))
            if (line.startsWith("RssFile:")) return Long.parseLong(line.replaceAll("\\D", ""));
        return -1;
    }

    @Test
    void releasedPagesLeaveTheResidentSet(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(Files.exists(Path.of("/proc/self/status")), "Linux only");
        Path f = dir.resolve("big.safetensors");
        int n = 64 << 20; // 64 Mi bytes
        byte[] bytes = new byte[n];
        for (int i = 0; i < n; i += 4096) bytes[i] = (byte) (i >>> 12);
        SafetensorsWriter.write(f, Map.of(), List.of(SafetensorsWriter.Tensor.ofBytes("w", DType.U8, new long[] {n}, bytes)));
        bytes = null;
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            var data = sf.tensor("w").data();
            long before = rssFileKb();
            long sum = 0;
            for (long i = 0; i < data.byteSize(); i += 4096) sum += data.get(ValueLayout.JAVA_BYTE, i);
            long touched = rssFileKb();
            assertTrue(PageRelease.release(data), "madvise failed");
            long after = rssFileKb();
            System.out.printf("RssFile: %d kB before, %d kB after reading 64 MiB, %d kB after release (checksum %d)%n", before, touched, after, sum);
            assertTrue(touched - before > 48 * 1024, "reading should have made ~64 MiB resident");
            assertTrue(touched - after > 48 * 1024, "release should have dropped ~64 MiB");
        }
    }
}
