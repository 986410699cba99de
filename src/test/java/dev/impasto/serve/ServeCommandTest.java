package dev.impasto.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.eval.ToyEvalFixtures;
import dev.impasto.serve.cli.ServeCommand;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ServeCommandTest {

    @Test
    void defaultsAreTheToyModelOnLoopbackPort7860() {
        ServeCommand c = new ServeCommand();
        CommandLine cl = new CommandLine(c);
        cl.parseArgs();
        assertEquals("127.0.0.1", cl.getCommandSpec().findOption("--host").getValue());
        assertEquals(7860, (int) cl.getCommandSpec().findOption("--port").getValue());
        assertEquals(4, (int) cl.getCommandSpec().findOption("--queue").getValue());
        assertEquals("toy", cl.getCommandSpec().findOption("--model").getValue());
    }

    @Test
    void servesTheToyModelUntilShutdown(@TempDir Path runs) throws Exception {
        ToyEvalFixtures.baseFile();
        ServeCommand c = new ServeCommand();
        CommandLine cl = new CommandLine(c);
        StringWriter out = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        AtomicInteger rc = new AtomicInteger(-1);
        Thread t = Thread.ofPlatform().start(() -> rc.set(cl.execute("--port", "0", "--toy-base", ToyEvalFixtures.BASE_DIR.toString(), "--loras-from", runs.toString())));
        for (int i = 0; i < 300 && c.uri() == null; i++) Thread.sleep(20);
        JsonNode info = new ObjectMapper().readTree(HttpClient.newHttpClient().send(HttpRequest.newBuilder(c.uri().resolve("/api/info")).build(),
                HttpResponse.BodyHandlers.ofString()).body());
        assertTrue(info.path("model").asText().startsWith("flux-toy"), info.toString());
        assertEquals(0, info.path("loras").size());
        c.shutdown();
        t.join(10_000);
        assertFalse(t.isAlive());
        assertEquals(0, rc.get());
        assertTrue(out.toString().contains("serving flux-toy") && out.toString().contains("http://127.0.0.1:"), out.toString());
    }

    @Test
    void aCheckpointWithoutItsEncodersIsRefusedWithTheReason() {
        StringWriter err = new StringWriter();
        CommandLine cl = new CommandLine(new ServeCommand());
        cl.setErr(new PrintWriter(err, true));
        assertEquals(2, cl.execute("--model", "flux1-dev.safetensors", "--port", "0"));
        assertTrue(err.toString().contains("needs --encoders DIR"), err.toString());
        assertEquals(2, cl.execute("--queue", "0", "--port", "0"));
        assertTrue(err.toString().contains("queue capacity must be >= 1"), err.toString());
    }
}
