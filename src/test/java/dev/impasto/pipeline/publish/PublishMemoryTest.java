package dev.impasto.pipeline.publish;

import static org.junit.jupiter.api.Assertions.*;

import dev.impasto.pipeline.cli.PublishCommand;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** A LoRA twice the size of the heap uploads fine: hashing and every PUT stream from disk. */
class PublishMemoryTest {
    @TempDir Path dir;

    public static void main(String[] args) {
        System.exit(new CommandLine(new PublishCommand()).execute(args));
    }

    @Test
    void uploadsA48MegabyteLoraWithA24MegabyteHeap() throws Exception {
        Path run = dir.resolve("run");
        Files.createDirectories(run);
        RunFixtures.lora(run.resolve("lora.safetensors"), false, 48L << 20, true);
        RunFixtures.lora(run.resolve("lora_kohya.safetensors"), true, 8L << 20, true);
        try (FakeHub hub = new FakeHub("tok")) {
            hub.multipartOver = 32L << 20;
            hub.chunkSize = 16L << 20;
            Path tokenFile = dir.resolve("token");
            Files.writeString(tokenFile, "tok\n");
            String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            Process p = new ProcessBuilder(List.of(javaBin, "-Xmx24m", "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"),
                    PublishMemoryTest.class.getName(), "--run", run.toString(), "--repo", "me/big", "--trigger", "tok", "--hub-url", hub.hub.url(),
                    "--token-file", tokenFile.toString())).redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile()).start();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "child finished");
            String log = Files.readString(dir.resolve("child.log"));
            assertEquals(0, p.exitValue(), log);
            hub.assertClean();
            assertEquals(1, hub.commits.size());
            assertEquals(2, hub.objects.size());
            assertEquals(4, hub.parts.values().iterator().next().size(), "48 MiB + header in 16 MiB parts");
            assertFalse(log.contains("tok\n") && log.contains("Bearer"), log);
        }
    }
}
