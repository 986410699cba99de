package dev.impasto.pipeline.caption;

import static dev.impasto.pipeline.caption.CaptionFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.LoopbackServer;
import dev.impasto.pipeline.LoopbackServer.Response;
import dev.impasto.pipeline.cli.CaptionCommand;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** kill -9 in the middle of captioning loses no answer that was journaled and never duplicates one. */
class CaptionKillTest {
    @TempDir Path dir;

    /** Entry point of the child JVM. */
    public static void main(String[] args) {
        System.exit(new CommandLine(new CaptionCommand()).execute(args));
    }

    @Test
    void killedMidRunThenResumedCaptionsEachImageExactlyOnce() throws Exception {
        int n = 16;
        Path ds = dataset(dir.resolve("ds"), n);
        try (LoopbackServer server = new LoopbackServer(req -> {
            int i = imageIndex(req.body());
            return Response.json(200, geminiAnswer("A harbour with " + i + " boats under a grey sky.")).delayed(120);
        })) {
            Path keyFile = dir.resolve("key");
            Files.writeString(keyFile, "secret-key\n");
            String[] args = {"--dataset", ds.toString(), "--backend", "gemini", "--model", "m", "--base-url", server.url(),
                    "--api-key-file", keyFile.toString(), "--rpm", "0", "--concurrency", "2"};
            String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            List<String> cmd = new java.util.ArrayList<>(List.of(javaBin, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp",
                    System.getProperty("java.class.path"), CaptionKillTest.class.getName()));
            cmd.addAll(List.of(args));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile()).start();
            Path journal = ds.resolve("captions.jsonl");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (System.nanoTime() < deadline && (!Files.exists(journal) || Files.readAllLines(journal).size() < 5)) Thread.sleep(20);
            p.destroyForcibly();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
            int before = Files.readAllLines(journal).size();
            assertTrue(before >= 5 && before < n, "killed mid-run: " + before + " of " + n + " journaled\n" + Files.readString(dir.resolve("child.log")));
            // a torn last line, as a kill during a write leaves it
            Files.writeString(journal, "{\"id\":\"img_015.jpg\",\"status\":\"o", StandardOpenOption.APPEND);
            int requestsBefore = server.requests.size();

            int rc = new CommandLine(new CaptionCommand()).execute(args);
            assertEquals(0, rc);
            Map<String, List<JsonNode>> j = journal(journal);
            for (int i = 0; i < n; i++) {
                String id = String.format("img_%03d.jpg", i);
                assertEquals(1, okCount(j.get(id)), id + " captioned exactly once: " + j.get(id));
            }
            int asked = server.requests.size() - requestsBefore;
            assertTrue(asked <= n - before, "the rerun asks only for images without a journaled answer: " + asked + " > " + (n - before));
            assertEquals(n, Files.readAllLines(journal).size());
            for (String line : Files.readAllLines(ds.resolve("train/metadata.jsonl"))) assertTrue(line.contains("\"text\":\"A harbour with"), line);
        }
    }
}
