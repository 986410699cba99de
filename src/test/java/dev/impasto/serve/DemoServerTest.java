package dev.impasto.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.eval.FakeGenerator;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The demo server's HTTP API on loopback, with a generator whose timing the test controls. */
class DemoServerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    final FakeGenerator gen = new FakeGenerator();
    DemoServer server;

    DemoServer start(DemoServer.Options o) throws Exception {
        server = new DemoServer(gen, o.withPort(0), QUIET).start();
        return server;
    }

    @AfterEach
    void stop() {
        if (server != null) server.close();
    }

    HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(server.uri().resolve(path)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> post(String json) throws Exception {
        return http.send(HttpRequest.newBuilder(server.uri().resolve("/api/generate")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
    }

    JsonNode waitDone(String id) throws Exception {
        for (int i = 0; i < 500; i++) {
            JsonNode j = JSON.readTree(get("/api/jobs/" + id).body());
            if (j.path("state").asText().equals("done") || j.path("state").asText().equals("failed")) return j;
            Thread.sleep(20);
        }
        throw new AssertionError("job " + id + " never finished");
    }

    /** Sends one raw request line (no client-side normalisation of the path) and returns status line + body. */
    String raw(String requestLine, String host) throws Exception {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), server.port())) {
            s.setSoTimeout(5000);
            s.getOutputStream().write((requestLine + "\r\nHost: " + host + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
            return new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
        }
    }

    @Test
    void bindsLoopbackAndServesThePage() throws Exception {
        assertEquals("127.0.0.1", DemoServer.Options.defaults().host());
        assertEquals(7860, DemoServer.Options.defaults().port());
        start(DemoServer.Options.defaults());
        assertEquals("127.0.0.1", server.uri().getHost());
        HttpResponse<String> page = get("/");
        assertEquals(200, page.statusCode());
        assertTrue(page.headers().firstValue("Content-Type").orElse("").startsWith("text/html"));
        assertTrue(page.headers().firstValue("Content-Security-Policy").orElse("").contains("default-src 'self'"));
        assertTrue(page.body().contains("<form id=\"form\"") && page.body().contains("/static/app.js"));
        assertEquals(200, get("/static/app.js").statusCode());
        assertEquals(200, get("/static/style.css").statusCode());
        JsonNode info = JSON.readTree(get("/api/info").body());
        assertEquals("fake (solid colours)", info.path("model").asText());
        assertEquals("pale", info.path("loras").get(0).asText());
        assertEquals(50, info.path("limits").path("maxSteps").asInt());
        assertEquals(4, info.path("limits").path("queueCapacity").asInt());
        assertEquals(64, info.path("defaults").path("width").asInt());
    }

    @Test
    void generatesWithProgressEventsAndServesThePng(@TempDir Path outputs) throws Exception {
        start(DemoServer.Options.defaults().withOutputs(outputs));
        HttpResponse<String> r = post("{\"prompt\": \"blue\", \"seed\": 7, \"steps\": 6, \"width\": 96, \"height\": 48, \"lora\": \"pale\", \"strength\": 1}");
        assertEquals(202, r.statusCode(), r.body());
        JsonNode job = JSON.readTree(r.body());
        String id = job.path("id").asText();
        assertTrue(id.matches("[0-9a-f]{16}"), id);
        // server-sent events: progress, then done with the picture's address
        HttpResponse<Stream<String>> ev = http.send(HttpRequest.newBuilder(server.uri().resolve(job.path("events").asText())).build(), HttpResponse.BodyHandlers.ofLines());
        assertEquals("text/event-stream; charset=utf-8", ev.headers().firstValue("Content-Type").orElse(""));
        List<String> events = new ArrayList<>();
        JsonNode last = null;
        String kind = null;
        for (String line : (Iterable<String>) ev.body()::iterator) {
            if (line.startsWith("event: ")) kind = line.substring(7);
            if (line.startsWith("data: ")) {
                events.add(kind);
                last = JSON.readTree(line.substring(6));
                if (!"progress".equals(kind)) break;
            }
        }
        assertEquals("done", events.getLast());
        assertEquals(6, last.path("step").asInt());
        assertEquals(7, last.path("request").path("seed").asLong());
        assertEquals("/images/" + id + ".png", last.path("image").asText());
        HttpResponse<byte[]> png = http.send(HttpRequest.newBuilder(server.uri().resolve(last.path("image").asText())).build(), HttpResponse.BodyHandlers.ofByteArray());
        assertEquals(200, png.statusCode());
        assertEquals("image/png", png.headers().firstValue("Content-Type").orElse(""));
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(png.body()));
        assertEquals(96, img.getWidth());
        assertEquals(48, img.getHeight());
        // blue (30,40,220) mixed halfway to white by the pale LoRA at strength 1
        assertEquals(0x8F94EE, img.getRGB(90, 40) & 0xFFFFFF);
        HttpResponse<byte[]> dl = http.send(HttpRequest.newBuilder(server.uri().resolve(last.path("download").asText())).build(), HttpResponse.BodyHandlers.ofByteArray());
        assertEquals("attachment; filename=\"impasto-7-" + id + ".png\"", dl.headers().firstValue("Content-Disposition").orElse(""));
        try (Stream<Path> files = Files.list(outputs)) {
            List<Path> saved = files.toList();
            assertEquals(1, saved.size());
            assertTrue(saved.getFirst().getFileName().toString().endsWith("-s7-" + id + ".png"));
            assertEquals("blue", dev.impasto.image.Png.readText(saved.getFirst()).get("prompt"));
        }
        // a failing prompt reaches the page as the job's error
        JsonNode failed = waitDone(JSON.readTree(post("{\"prompt\": \"purple\"}").body()).path("id").asText());
        assertEquals("failed", failed.path("state").asText());
        assertTrue(failed.path("error").asText().contains("knows only"), failed.toString());
    }

    @Test
    void validationErrorsAreJsonNamingTheField() throws Exception {
        start(DemoServer.Options.defaults());
        HttpResponse<String> r = post("{\"prompt\": \"red\", \"steps\": 500}");
        assertEquals(400, r.statusCode());
        JsonNode e = JSON.readTree(r.body());
        assertEquals("steps", e.path("field").asText());
        assertEquals("steps: an integer in 1..50, got 500", e.path("error").asText());
        assertEquals(400, post("{\"prompt\": \"red\", \"width\": 2048}").statusCode());
        assertTrue(JSON.readTree(post("{not json").body()).path("error").asText().startsWith("the body is not valid JSON"));
        HttpResponse<String> form = http.send(HttpRequest.newBuilder(server.uri().resolve("/api/generate")).header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString("prompt=red")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(415, form.statusCode());
        assertEquals(413, post("{\"prompt\": \"" + "x".repeat(DemoServer.MAX_BODY) + "\"}").statusCode());
        HttpResponse<String> wrongMethod = get("/api/generate");
        assertEquals(405, wrongMethod.statusCode());
        assertEquals("POST", wrongMethod.headers().firstValue("Allow").orElse(""));
        assertEquals(404, get("/api/jobs/0123456789abcdef").statusCode());
        HttpResponse<String> cross = http.send(HttpRequest.newBuilder(server.uri().resolve("/api/generate")).header("Content-Type", "application/json")
                .header("Origin", "http://evil.example").POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"red\"}")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(403, cross.statusCode());
        assertEquals(0, gen.started.get());
    }

    @Test
    void aFullQueueAnswers429() throws Exception {
        gen.gate = new CountDownLatch(1);
        start(DemoServer.Options.defaults().withQueueCapacity(2));
        List<String> ids = new ArrayList<>();
        ids.add(JSON.readTree(post("{\"prompt\": \"red\", \"seed\": 1}").body()).path("id").asText());
        for (int i = 0; i < 100 && gen.started.get() == 0; i++) Thread.sleep(10); // the first is running, the queue is empty
        for (int i = 2; i <= 3; i++) {
            HttpResponse<String> r = post("{\"prompt\": \"red\", \"seed\": " + i + "}");
            assertEquals(202, r.statusCode());
            assertEquals(i - 1, JSON.readTree(r.body()).path("position").asInt());
            ids.add(JSON.readTree(r.body()).path("id").asText());
        }
        HttpResponse<String> full = post("{\"prompt\": \"red\", \"seed\": 4}");
        assertEquals(429, full.statusCode());
        assertEquals("5", full.headers().firstValue("Retry-After").orElse(""));
        assertTrue(JSON.readTree(full.body()).path("error").asText().startsWith("the queue is full (2 requests are waiting"), full.body());
        JsonNode q = JSON.readTree(get("/api/queue").body());
        assertTrue(q.path("running").asBoolean());
        assertEquals(2, q.path("waiting").asInt());
        gen.gate.countDown();
        for (String id : ids) assertEquals("done", waitDone(id).path("state").asText());
        assertEquals(3, gen.finished.get());
        assertEquals(202, post("{\"prompt\": \"red\"}").statusCode());
    }

    @Test
    void noPathReachesTheFileSystem() throws Exception {
        start(DemoServer.Options.defaults());
        String id = JSON.readTree(post("{\"prompt\": \"red\"}").body()).path("id").asText();
        waitDone(id);
        String host = "127.0.0.1:" + server.port();
        for (String path : List.of("/static/../../../../etc/passwd", "/../../../../etc/passwd", "/images/..%2F..%2F..%2Fetc%2Fpasswd",
                "/static/%2e%2e/%2e%2e/pom.xml", "/static/..%5c..%5cpom.xml", "/images/" + id + ".png/../../../pom.xml", "//etc/passwd",
                "/static/app.js%00.png", "/images/" + id.toUpperCase() + ".png", "/static/", "/images/", "/static/index.html", "/dev/impasto/serve/static/app.js",
                "/images/" + id + ".png%2F..%2F..%2Fpom.xml", "/api/jobs/../../pom.xml")) {
            String resp = raw("GET " + path + " HTTP/1.1", host);
            String status = resp.lines().findFirst().orElse("");
            assertTrue(status.contains(" 404 ") || status.contains(" 400 "), path + " -> " + status);
            assertFalse(resp.contains("root:") || resp.contains("<project") || resp.contains("use strict"), path + " leaked: " + resp);
        }
        assertTrue(raw("GET /images/" + id + ".png HTTP/1.1", host).startsWith("HTTP/1.1 200"));
        // bound to loopback, it answers only loopback host names (no DNS rebinding)
        assertTrue(raw("GET /api/info HTTP/1.1", "evil.example:80").startsWith("HTTP/1.1 403"));
        assertTrue(raw("GET /api/info HTTP/1.1", "localhost:" + server.port()).startsWith("HTTP/1.1 200"));
        assertTrue(DemoServer.loopbackHost("[::1]:7860") && !DemoServer.loopbackHost("127.0.0.1.evil.example") && !DemoServer.loopbackHost(null));
    }

    @Test
    void shutdownLetsTheRunningPictureFinishAndFailsTheWaiting() throws Exception {
        gen.gate = new CountDownLatch(1);
        start(DemoServer.Options.defaults());
        post("{\"prompt\": \"red\"}");
        for (int i = 0; i < 100 && gen.started.get() == 0; i++) Thread.sleep(10);
        String waiting = JSON.readTree(post("{\"prompt\": \"blue\"}").body()).path("id").asText();
        HttpResponse<Stream<String>> ev = http.send(HttpRequest.newBuilder(server.uri().resolve("/api/jobs/" + waiting + "/events")).build(), HttpResponse.BodyHandlers.ofLines());
        Thread closer = Thread.ofPlatform().start(server::close);
        // the waiting request is told at once; new requests are refused while the running one drains
        String failedEvent = null;
        for (String line : (Iterable<String>) ev.body()::iterator) {
            if (line.startsWith("event: failed")) failedEvent = line;
            if (line.startsWith("data: ") && failedEvent != null) {
                assertEquals("the server is shutting down", JSON.readTree(line.substring(6)).path("error").asText());
                break;
            }
        }
        assertNotNull(failedEvent);
        assertEquals(503, post("{\"prompt\": \"red\"}").statusCode());
        assertTrue(closer.isAlive(), "close() waits for the running picture");
        gen.gate.countDown();
        closer.join(10_000);
        assertFalse(closer.isAlive());
        assertEquals(1, gen.finished.get());
        assertFalse(gen.closed, "the server does not own the generator");
        server = null;
    }

    @Test
    void shutdownCancelsAPictureThatOutlastsTheDrainTime() throws Exception {
        gen.sleepPerStepMillis = 50;
        server = new DemoServer(gen, new DemoServer.Options("127.0.0.1", 0, 4, 200, 256, 100, null, 8, 0, "t"), QUIET).start();
        String id = JSON.readTree(post("{\"prompt\": \"red\", \"steps\": 200}").body()).path("id").asText();
        for (int i = 0; i < 100 && gen.started.get() == 0; i++) Thread.sleep(10);
        long t0 = System.nanoTime();
        server.close();
        assertTrue((System.nanoTime() - t0) / 1e9 < 3, "close took " + (System.nanoTime() - t0) / 1e9 + " s");
        assertEquals(0, gen.finished.get());
        server = null;
        assertTrue(id.matches("[0-9a-f]{16}"));
    }
}
