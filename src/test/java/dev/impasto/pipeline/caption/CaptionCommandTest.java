package dev.impasto.pipeline.caption;

import static dev.impasto.pipeline.caption.CaptionFixtures.*;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.LoopbackServer;
import dev.impasto.pipeline.LoopbackServer.Response;
import dev.impasto.pipeline.cli.CaptionCommand;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class CaptionCommandTest {
    @TempDir Path dir;
    String out;

    int run(Map<String, String> env, String... args) {
        CaptionCommand cmd = new CaptionCommand();
        try {
            var f = CaptionCommand.class.getDeclaredField("env");
            f.setAccessible(true);
            f.set(cmd, env);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
        StringWriter o = new StringWriter(), e = new StringWriter();
        CommandLine cl = new CommandLine(cmd);
        cl.setOut(new PrintWriter(o));
        cl.setErr(new PrintWriter(e));
        int rc = cl.execute(args);
        out = o + "\n" + e;
        return rc;
    }

    /**
     * One run against a fake Gemini that answers each image in its own way, then a rerun against a healthy one:
     * every image ends captioned exactly once, or reported failed with the reason, and nothing done is asked again.
     */
    @Test
    void geminiFailureModesThenResume() throws Exception {
        Path ds = dataset(dir.resolve("ds"), 12);
        Map<Integer, AtomicInteger> calls = new ConcurrentHashMap<>();
        Map<String, AtomicInteger> keyUse = new ConcurrentHashMap<>();
        AtomicInteger healthy = new AtomicInteger(0);
        try (LoopbackServer server = new LoopbackServer(req -> {
            assertEquals("/v1beta/models/gemini-test:generateContent", req.path());
            String key = req.header("x-goog-api-key");
            keyUse.computeIfAbsent(String.valueOf(key), k -> new AtomicInteger()).incrementAndGet();
            JsonNode body = Json.parse(req.text());
            assertEquals("application/json", body.path("generationConfig").path("responseMimeType").asText());
            assertEquals(0, body.path("generationConfig").path("temperature").asInt());
            assertTrue(body.path("systemInstruction").toString().contains("CONTENT"));
            int i = imageIndex(req.body());
            if ("key-one".equals(key)) return Response.json(429, gemini429("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "30s"));
            int n = calls.computeIfAbsent(i, k -> new AtomicInteger()).incrementAndGet(); // requests with the good key
            if (healthy.get() == 1) return Response.json(200, geminiAnswer("A quiet scene number " + i + " with trees."));
            return switch (i) {
                case 1 -> n == 1 ? Response.json(429, gemini429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "0.3s"))
                        : Response.json(200, geminiAnswer("A river bends past poplars under a pale sky."));
                case 2 -> n <= 3 ? Response.json(500, "{\"error\": {\"code\": 500, \"status\": \"INTERNAL\"}}")
                        : Response.json(200, geminiAnswer("A woman in a white dress holds a parasol on a hill."));
                case 3 -> Response.json(200, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Sure! Here is a caption: a boat\"}]}, \"finishReason\": \"STOP\"}]}");
                case 4 -> Response.json(200, "{\"promptFeedback\": {\"blockReason\": \"SAFETY\"}}");
                case 5 -> n == 1 ? Response.json(200, geminiAnswer("late")).delayed(2500)
                        : Response.json(200, geminiAnswer("Boats rest on a harbour at low tide under grey clouds."));
                case 6 -> Response.json(400, "{\"error\": {\"code\": 400, \"message\": \"Invalid argument\", \"status\": \"INVALID_ARGUMENT\"}}");
                case 7 -> n == 1 ? Response.json(503, "{\"error\": {\"code\": 503, \"status\": \"UNAVAILABLE\"}}").withHeader("Retry-After", "1")
                        : Response.json(200, geminiAnswer("A bowl of pears and a jug stand on a white cloth."));
                case 8 -> Response.json(403, "{\"error\": {\"code\": 403, \"status\": \"PERMISSION_DENIED\"}}");
                default -> Response.json(200, geminiAnswer("[trigger], a street with carriages and people under trees, number " + i + "."));
            };
        })) {
            Path keys = dir.resolve("keys.txt");
            Files.writeString(keys, "# two keys\nkey-one\nkey-two\n");
            String[] args = {"--dataset", ds.toString(), "--backend", "gemini", "--model", "gemini-test", "--base-url", server.url(),
                    "--api-key-file", keys.toString(), "--rpm", "0", "--concurrency", "3", "--timeout", "1", "--trigger", "mnt_style",
                    "--max-attempts", "5", "--retry-base-ms", "20"};
            long t0 = System.nanoTime();
            int rc = run(Map.of(), args);
            assertEquals(3, rc, out);
            assertFalse(out.contains("key-two") || out.contains("key-one"), "keys never printed: " + out);
            Map<String, List<JsonNode>> j = journal(ds.resolve("captions.jsonl"));
            Set<Integer> failed = Set.of(3, 4, 6, 8);
            for (int i = 0; i < 12; i++) {
                String id = String.format("img_%03d.jpg", i);
                assertEquals(failed.contains(i) ? 0 : 1, okCount(j.get(id)), id + ": " + j.get(id));
                assertEquals(1, j.get(id).size(), "exactly one journal line per image in one run: " + j.get(id));
            }
            assertTrue(keyUse.get("key-one").get() <= 3, "a PerDay quota retires the key at once (at most the 3 requests in flight used it)");
            assertEquals(2, calls.get(1).get(), "429 PerMinute: retried once after retryDelay");
            assertEquals(4, calls.get(2).get(), "500 burst: retried until it passes");
            assertEquals(3, calls.get(3).get(), "malformed JSON: 1 + max-malformed (2) tries");
            assertEquals(1, calls.get(4).get(), "blocked prompt: no retry");
            assertEquals(1, calls.get(6).get(), "400: no retry");
            assertEquals(1, calls.get(8).get(), "403: no retry");
            assertEquals(2, calls.get(5).get(), "timeout then success");
            assertTrue(j.get("img_004.jpg").getFirst().path("reason").asText().contains("SAFETY"));
            assertTrue(j.get("img_003.jpg").getFirst().path("reason").asText().contains("not JSON"));
            assertTrue((System.nanoTime() - t0) / 1e9 > 0.9, "Retry-After: 1 was waited for");

            List<JsonNode> meta = Files.readAllLines(ds.resolve("train/metadata.jsonl")).stream().map(l -> {
                try { return Json.parse(l); } catch (Exception e) { throw new RuntimeException(e); }
            }).toList();
            Map<String, String> text = new HashMap<>();
            for (JsonNode m : meta) if (m.has("text")) text.put(m.path("file_name").asText(), m.path("text").asText());
            assertEquals(8, text.size());
            assertEquals("mnt_style, A river bends past poplars under a pale sky.", text.get("img_001.jpg"), "prepended");
            assertEquals("mnt_style, a street with carriages and people under trees, number 9.", text.get("img_009.jpg"), "substituted");
            List<String> failures = Files.readAllLines(ds.resolve("report/caption_failures.jsonl"));
            assertEquals(4, failures.size());
            JsonNode stats = Json.read(ds.resolve("report/captions.json"));
            assertEquals(8, stats.path("captions").asInt());
            assertEquals(4, stats.path("failed").asInt());
            assertTrue(stats.path("vocabulary").asInt() > 20);
            assertTrue(Files.size(ds.resolve("report/caption_lengths.png")) > 1000);

            // rerun: the server is healthy now; only the 4 failed images are asked again
            Map<Integer, Integer> before = new HashMap<>();
            calls.forEach((k, v) -> before.put(k, v.get()));
            healthy.set(1);
            Files.writeString(keys, "key-two\n");
            assertEquals(0, run(Map.of(), args), out);
            for (int i = 0; i < 12; i++) {
                int delta = calls.get(i).get() - before.get(i);
                assertEquals(failed.contains(i) ? 1 : 0, delta, "image " + i + " asked again only if it had failed");
            }
            j = journal(ds.resolve("captions.jsonl"));
            for (int i = 0; i < 12; i++) assertEquals(1, okCount(j.get(String.format("img_%03d.jpg", i))));
        }
    }

    @Test
    void openAiCompatibleServer() throws Exception {
        Path ds = dataset(dir.resolve("oa"), 4);
        AtomicInteger n = new AtomicInteger();
        try (LoopbackServer server = new LoopbackServer(req -> {
            assertEquals("/v1/chat/completions", req.path());
            assertEquals("Bearer sk-local", req.header("Authorization"));
            JsonNode body = Json.parse(req.text());
            assertEquals("qwen-vl", body.path("model").asText());
            assertEquals("system", body.path("messages").path(0).path("role").asText());
            assertEquals("json_object", body.path("response_format").path("type").asText());
            int i = imageIndex(req.body());
            if (n.incrementAndGet() == 1) return Response.json(429, "{\"error\": {\"message\": \"slow down\"}}").withHeader("Retry-After", "0.2");
            String content = Json.line(Map.of("caption", "A table with " + (i + 2) + " apples and a knife."));
            return Response.json(200, Json.line(Map.of("choices", List.of(Map.of("index", 0, "message", Map.of("role", "assistant", "content", content),
                    "finish_reason", "stop")))));
        })) {
            int rc = run(Map.of("OPENAI_API_KEY", "sk-local"), "--dataset", ds.toString(), "--backend", "openai", "--model", "qwen-vl",
                    "--base-url", server.url() + "/v1", "--rpm", "0", "--trigger", "tok", "--trigger-mode", "prepend");
            assertEquals(0, rc, out);
            assertEquals(5, server.requests.size());
            String meta = Files.readString(ds.resolve("train/metadata.jsonl"));
            assertTrue(meta.contains("\"text\":\"tok, A table with 2 apples and a knife.\""), meta);
            assertFalse(out.contains("sk-local"));
        }
    }

    @Test
    void templateCaptionerOfflineWithParquetRefresh() throws Exception {
        Path ds = dataset(dir.resolve("tpl"), 4);
        assertEquals(0, run(Map.of(), "--dataset", ds.toString(), "--trigger", "impr_tok"), out);
        List<String> lines = Files.readAllLines(ds.resolve("train/metadata.jsonl"));
        assertEquals(4, lines.size());
        for (String l : lines) assertTrue(Json.parse(l).path("text").asText().startsWith("impr_tok, a "), l);
        assertTrue(Json.parse(lines.get(1)).path("text").asText().contains("portrait"));
        String md = Files.readString(ds.resolve("report/captions.md"));
        assertTrue(md.contains("most common openings"), md);
    }

    @Test
    void missingKeyAndBadConfigAreClearErrors() throws Exception {
        Path ds = dataset(dir.resolve("err"), 1);
        assertEquals(2, run(Map.of(), "--dataset", ds.toString(), "--backend", "gemini", "--model", "m"));
        assertTrue(out.contains("GEMINI_API_KEY"), out);
        Path cfg = dir.resolve("c.json");
        Files.writeString(cfg, "{\"backend\": \"openai\", \"model\": \"x\"}");
        assertEquals(2, run(Map.of(), "--dataset", ds.toString(), "--config", cfg.toString()));
        assertTrue(out.contains("field 'base-url'"), out);
        Files.writeString(cfg, "{\"rpm\": \"fast\"}");
        assertEquals(2, run(Map.of(), "--dataset", ds.toString(), "--config", cfg.toString()));
        assertTrue(out.contains("field 'rpm'"), out);
    }
}
