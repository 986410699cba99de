package dev.impasto.pipeline.publish;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.LoopbackServer;
import dev.impasto.pipeline.LoopbackServer.Request;
import dev.impasto.pipeline.LoopbackServer.Response;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The Hub's upload endpoints on loopback, with object storage on a second port (as S3 is another host). Every
 * request is checked: the token on Hub calls and never on storage, LFS media types, oids against the bytes,
 * sizes, part ETags and the ndjson commit lines. Failures are injected by counters.
 */
final class FakeHub implements AutoCloseable {
    final String token;
    final LoopbackServer hub, storage;
    final Map<String, byte[]> objects = new ConcurrentHashMap<>();
    final Set<String> repos = ConcurrentHashMap.newKeySet();
    final List<List<JsonNode>> commits = new CopyOnWriteArrayList<>();
    final Map<String, Map<Integer, byte[]>> parts = new ConcurrentHashMap<>();
    final List<String> problems = new CopyOnWriteArrayList<>();
    /** Upload URLs answered 403 "expired" before one succeeds. */
    final AtomicInteger expireBasicPuts = new AtomicInteger();
    /** Part PUTs answered 500. */
    final AtomicInteger failParts = new AtomicInteger();
    final AtomicInteger batchCalls = new AtomicInteger();
    final AtomicInteger storageCalls = new AtomicInteger();
    long multipartOver = 200_000;
    long chunkSize = 100_000;
    long lfsOver = 5_000_000;
    /** Answer Hub calls without the right token with 401, as the Hub does (otherwise only record it as a problem). */
    volatile boolean enforceToken;

    FakeHub(String token) throws IOException {
        this.token = token;
        storage = new LoopbackServer(this::storage);
        hub = new LoopbackServer(this::hub);
    }

    private void check(boolean ok, String what) {
        if (!ok) problems.add(what);
    }

    private Response hub(Request r) throws Exception {
        boolean authorized = ("Bearer " + token).equals(r.header("Authorization"));
        check(authorized, "no/bad token on " + r.method() + " " + r.path());
        if (!authorized && enforceToken) return Response.json(401, "{\"error\": \"Invalid credentials in Authorization header\"}");
        String p = r.path();
        if (p.equals("/api/repos/create")) {
            JsonNode b = Json.parse(r.text());
            check(b.has("name") && b.has("organization") && b.has("type") && b.has("private"), "create body " + b);
            String id = b.path("organization").asText() + "/" + b.path("name").asText() + ":" + b.path("type").asText();
            return repos.add(id) ? Response.json(200, "{\"url\": \"x\"}") : Response.json(409, "{\"error\": \"You already created this repo\"}");
        }
        if (p.matches("/api/(models|datasets)/[^/]+/[^/]+/preupload/main")) {
            ArrayNode files = Json.MAPPER.createArrayNode();
            for (JsonNode f : Json.parse(r.text()).path("files")) {
                long size = f.path("size").asLong();
                int sample = Base64.getDecoder().decode(f.path("sample").asText()).length;
                check(sample == Math.min(512, size), "sample of " + f.path("path") + " is " + sample + " bytes");
                String path = f.path("path").asText();
                boolean lfs = size > lfsOver || path.endsWith(".safetensors") || path.endsWith(".png") || path.endsWith(".parquet") || path.endsWith(".jpg");
                files.addObject().put("path", path).put("uploadMode", lfs ? "lfs" : "regular").put("shouldIgnore", false);
            }
            ObjectNode o = Json.object();
            o.set("files", files);
            return Response.json(200, Json.line(o));
        }
        if (p.matches("/(datasets/)?[^/]+/[^/]+\\.git/info/lfs/objects/batch")) {
            batchCalls.incrementAndGet();
            check("application/vnd.git-lfs+json".equals(r.header("Accept")), "batch Accept " + r.header("Accept"));
            check("application/vnd.git-lfs+json".equals(r.header("Content-Type")), "batch Content-Type");
            JsonNode b = Json.parse(r.text());
            check(b.path("operation").asText().equals("upload") && b.path("hash_algo").asText().equals("sha256"), "batch body " + b);
            ObjectNode out = Json.object();
            out.put("transfer", "basic");
            ArrayNode objs = out.putArray("objects");
            for (JsonNode o : b.path("objects")) {
                String oid = o.path("oid").asText();
                long size = o.path("size").asLong();
                check(oid.matches("[0-9a-f]{64}"), "oid " + oid);
                ObjectNode a = objs.addObject().put("oid", oid).put("size", size);
                if (objects.containsKey(oid)) continue; // already stored: no actions
                ObjectNode actions = a.putObject("actions");
                if (size > multipartOver) {
                    out.put("transfer", "multipart");
                    ObjectNode up = actions.putObject("upload");
                    up.put("href", hub.url() + "/lfs-complete/" + oid);
                    ObjectNode h = up.putObject("header");
                    h.put("chunk_size", Long.toString(chunkSize));
                    for (long i = 1; i <= (size + chunkSize - 1) / chunkSize; i++) h.put(Long.toString(i), storage.url() + "/part/" + oid + "/" + i + "?sig=abc");
                } else {
                    ObjectNode up = actions.putObject("upload");
                    up.put("href", storage.url() + "/put/" + oid + "?X-Amz-Expires=3600");
                    up.putObject("header").put("Content-Type", "application/octet-stream");
                }
                actions.putObject("verify").put("href", hub.url() + "/lfs-verify").putObject("header").put("X-Verify", "yes");
            }
            return Response.json(200, Json.line(out)).withHeader("Content-Type", "application/vnd.git-lfs+json");
        }
        if (p.startsWith("/lfs-complete/")) {
            String oid = p.substring("/lfs-complete/".length());
            JsonNode b = Json.parse(r.text());
            check(b.path("oid").asText().equals(oid), "completion oid");
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            int expect = 1;
            for (JsonNode part : b.path("parts")) {
                int n = part.path("partNumber").asInt();
                check(n == expect++, "parts out of order");
                check(part.path("etag").asText().equals("\"etag-" + oid.substring(0, 8) + "-" + n + "\""), "etag of part " + n);
                all.write(parts.getOrDefault(oid, Map.of()).getOrDefault(n, new byte[0]));
            }
            byte[] bytes = all.toByteArray();
            if (!sha256(bytes).equals(oid)) return Response.json(400, "{\"error\": \"assembled parts do not match the oid\"}");
            objects.put(oid, bytes);
            return Response.json(200, "{}");
        }
        if (p.equals("/lfs-verify")) {
            check("yes".equals(r.header("X-Verify")), "verify header from the batch answer");
            JsonNode b = Json.parse(r.text());
            byte[] obj = objects.get(b.path("oid").asText());
            return obj != null && obj.length == b.path("size").asLong() ? Response.json(200, "{}") : Response.json(404, "{\"error\": \"not stored\"}");
        }
        if (p.matches("/api/(models|datasets)/[^/]+/[^/]+/commit/main")) {
            check("application/x-ndjson".equals(r.header("Content-Type")), "commit Content-Type " + r.header("Content-Type"));
            List<JsonNode> lines = new ArrayList<>();
            for (String l : r.text().split("\n")) if (!l.isBlank()) lines.add(Json.parse(l));
            check(lines.getFirst().path("key").asText().equals("header") && lines.getFirst().path("value").has("summary"), "first line is the header");
            for (JsonNode l : lines.subList(1, lines.size())) {
                JsonNode v = l.path("value");
                switch (l.path("key").asText()) {
                    case "file" -> check(v.path("encoding").asText().equals("base64") && v.has("content") && v.has("path"), "file line " + l);
                    case "lfsFile" -> {
                        byte[] obj = objects.get(v.path("oid").asText());
                        check(v.path("algo").asText().equals("sha256"), "algo");
                        check(obj != null && obj.length == v.path("size").asLong(), "lfsFile " + v.path("path") + " not stored with that size");
                    }
                    default -> check(false, "unknown line " + l);
                }
            }
            commits.add(lines);
            return Response.json(200, "{\"commitUrl\": \"" + hub.url() + "/commit/abc\", \"commitOid\": \"abc123\"}");
        }
        problems.add("unexpected " + r.method() + " " + p);
        return Response.json(404, "{}");
    }

    int storageRequests() {
        return storageCalls.get();
    }

    private Response storage(Request r) throws Exception {
        storageCalls.incrementAndGet();
        check(r.header("Authorization") == null, "storage got an Authorization header on " + r.path());
        check("PUT".equals(r.method()), "storage " + r.method());
        String p = r.path();
        if (p.startsWith("/put/")) {
            if (expireBasicPuts.getAndDecrement() > 0)
                return new Response(403, Map.of(), "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>".getBytes(), 0, false, 0);
            String oid = p.substring(5);
            check("application/octet-stream".equals(r.header("Content-Type")), "basic PUT carries the batch's headers");
            if (!sha256(r.body()).equals(oid)) return Response.json(400, "{\"error\": \"sha256 mismatch\"}");
            objects.put(oid, r.body());
            return Response.json(200, "");
        }
        if (p.startsWith("/part/")) {
            String[] s = p.split("/");
            if (failParts.getAndDecrement() > 0) return Response.json(500, "{\"error\": \"InternalError\"}");
            String oid = s[2];
            int n = Integer.parseInt(s[3]);
            check(r.body().length <= chunkSize, "part larger than chunk_size");
            parts.computeIfAbsent(oid, k -> new ConcurrentHashMap<>()).put(n, r.body());
            return Response.json(200, "").withHeader("ETag", "\"etag-" + oid.substring(0, 8) + "-" + n + "\"");
        }
        return Response.json(404, "{}");
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    void assertClean() {
        assertTrue(problems.isEmpty(), "protocol problems: " + problems);
    }

    @Override
    public void close() {
        hub.close();
        storage.close();
    }
}
