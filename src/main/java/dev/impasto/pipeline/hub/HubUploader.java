package dev.impasto.pipeline.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.Progress;
import dev.impasto.util.ProgressBar;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Uploads a repo folder the way huggingface_hub's create_commit does: create repo, preupload (which files are
 * LFS), LFS batch and transfer (basic PUT or multipart, each part streamed from its file region), verify, then
 * one ndjson commit. The commit is sent only after every LFS object is stored, so a failed upload leaves no
 * half-made commit; a rerun skips objects the Hub already has.
 */
public final class HubUploader {
    private final HubHttp http;
    private final PrintStream log;
    /** How many times an LFS object is re-requested from the batch API when its upload URL has expired. */
    private final int urlRefreshes = 3;

    private final int parallel;

    /** @param parallel LFS objects uploaded at once */
    public HubUploader(HubHttp http, PrintStream log, int parallel) {
        this.http = http;
        this.log = log;
        this.parallel = Math.max(1, parallel);
    }

    public record Result(String commitUrl, String commitOid, int lfsUploaded, int lfsAlreadyStored, int regular) {}

    private static String plural(String type) {
        return type + "s";
    }

    private static String lfsPrefix(String type) {
        return type.equals("model") ? "" : type + "s/";
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    public Result upload(UploadPlan plan, boolean privateRepo, String summary, String description) {
        createRepo(plan, privateRepo);
        Map<String, JsonNode> modes = preupload(plan);
        List<UploadPlan.Entry> lfs = new ArrayList<>(), regular = new ArrayList<>();
        for (UploadPlan.Entry e : plan.files()) {
            JsonNode m = modes.get(e.path());
            if (m == null) throw new PipelineException("preupload answer does not mention " + e.path());
            if (m.path("shouldIgnore").asBoolean(false)) {
                log.println("skipping " + e.path() + " (ignored by the repo's .gitignore)");
                continue;
            }
            if ("lfs".equals(m.path("uploadMode").asText())) lfs.add(e);
            else regular.add(e);
        }
        int[] counts = uploadLfs(plan, lfs);
        JsonNode commit = commit(plan, lfs, regular, summary, description);
        return new Result(commit.path("commitUrl").asText(null), commit.path("commitOid").asText(null), counts[0], counts[1], regular.size());
    }

    void createRepo(UploadPlan plan, boolean privateRepo) {
        String[] parts = plan.repoId().split("/", 2);
        ObjectNode body = Json.object();
        body.put("name", parts[1]);
        body.put("organization", parts[0]);
        body.put("type", plan.repoType());
        body.put("private", privateRepo);
        HttpResponse<String> r = http.sendRetrying(() -> http.request(http.url("/api/repos/create"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(Json.line(body))).build(),
                HttpResponse.BodyHandlers.ofString(), "creating " + plan.repoId());
        if (r.statusCode() == 409) log.println(plan.repoType() + " repo " + plan.repoId() + " exists; committing to it");
        else if (r.statusCode() / 100 == 2) log.println("created " + plan.repoType() + " repo " + plan.repoId());
        else throw fail("creating " + plan.repoId(), r);
    }

    Map<String, JsonNode> preupload(UploadPlan plan) {
        Map<String, JsonNode> modes = new HashMap<>();
        List<UploadPlan.Entry> files = plan.files();
        for (int from = 0; from < files.size(); from += 256) {
            ObjectNode body = Json.object();
            ArrayNode arr = body.putArray("files");
            for (UploadPlan.Entry e : files.subList(from, Math.min(files.size(), from + 256)))
                arr.addObject().put("path", e.path()).put("sample", Base64.getEncoder().encodeToString(e.sample())).put("size", e.size());
            URI uri = http.url("/api/" + plural(plan.repoType()) + "/" + plan.repoId() + "/preupload/" + enc(plan.revision()));
            HttpResponse<String> r = http.sendRetrying(() -> http.request(uri).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(Json.line(body))).build(), HttpResponse.BodyHandlers.ofString(), "preupload");
            if (r.statusCode() != 200) throw fail("preupload", r);
            for (JsonNode f : parse(r.body(), "preupload").path("files")) modes.put(f.path("path").asText(), f);
        }
        return modes;
    }

    /** @return {uploaded, already stored} */
    int[] uploadLfs(UploadPlan plan, List<UploadPlan.Entry> lfs) {
        if (lfs.isEmpty()) return new int[] {0, 0};
        // one object per content: the same bytes under two paths are uploaded once
        Map<String, UploadPlan.Entry> byOid = new LinkedHashMap<>();
        for (UploadPlan.Entry e : lfs) byOid.putIfAbsent(e.sha256(), e);
        List<UploadPlan.Entry> objects = new ArrayList<>(byOid.values());
        long total = objects.stream().mapToLong(UploadPlan.Entry::size).sum();
        AtomicInteger uploaded = new AtomicInteger(), stored = new AtomicInteger();
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        ExecutorService pool = Executors.newFixedThreadPool(parallel);
        try (ProgressBar bar = Progress.bar("upload", total, "B", log)) {
            // batch calls of 256 objects, as huggingface_hub does; URLs are asked for just before they are used
            for (int from = 0; from < objects.size() && failure.get() == null; from += 256) {
                List<UploadPlan.Entry> chunk = objects.subList(from, Math.min(objects.size(), from + 256));
                Map<String, JsonNode> actions = batch(plan, chunk);
                List<Future<?>> tasks = new ArrayList<>();
                for (UploadPlan.Entry e : chunk)
                    tasks.add(pool.submit(() -> {
                        if (failure.get() != null) return;
                        try {
                            if (uploadObject(plan, e, actions.get(e.sha256()), bar)) uploaded.incrementAndGet();
                            else stored.incrementAndGet();
                            bar.status(uploaded + " uploaded, " + stored + " already stored | " + Progress.bytes(bar.done()));
                        } catch (RuntimeException x) {
                            failure.compareAndSet(null, x);
                        }
                    }));
                for (Future<?> t : tasks) {
                    try {
                        t.get();
                    } catch (InterruptedException x) {
                        Thread.currentThread().interrupt();
                        throw new PipelineException("interrupted; nothing was committed");
                    } catch (java.util.concurrent.ExecutionException x) {
                        failure.compareAndSet(null, new PipelineException(String.valueOf(x.getCause()), x.getCause()));
                    }
                }
            }
        } finally {
            pool.shutdownNow();
        }
        if (failure.get() != null) throw failure.get();
        return new int[] {uploaded.get(), stored.get()};
    }

    /** @return true when uploaded, false when the Hub already had it */
    private boolean uploadObject(UploadPlan plan, UploadPlan.Entry e, JsonNode obj, ProgressBar bar) {
        for (int refresh = 0; ; refresh++) {
            if (obj == null) throw new PipelineException("LFS batch answer has no entry for " + e.path() + " (oid " + e.sha256() + ")");
            if (obj.has("error"))
                throw new PipelineException("LFS refused " + e.path() + ": " + obj.path("error").path("code").asText() + " "
                        + obj.path("error").path("message").asText());
            JsonNode act = obj.path("actions");
            if (!act.has("upload")) {
                bar.step(e.size());
                return false;
            }
            AtomicLong sent = new AtomicLong();
            try {
                transfer(e, act.path("upload"), bar, sent);
                if (act.has("verify")) verify(e, act.path("verify"));
                return true;
            } catch (ExpiredUrl x) {
                bar.step(-sent.get());
                if (refresh >= urlRefreshes)
                    throw new PipelineException(e.path() + ": upload URL kept expiring (" + x.getMessage() + "); nothing was committed, rerun to retry");
                log.println(e.path() + ": upload URL expired, asking for a new one");
                obj = batch(plan, List.of(e)).get(e.sha256());
            } catch (RuntimeException x) {
                bar.step(-sent.get());
                throw x;
            }
        }
    }

    private Map<String, JsonNode> batch(UploadPlan plan, List<UploadPlan.Entry> objects) {
        ObjectNode body = Json.object();
        body.put("operation", "upload");
        body.putArray("transfers").add("basic").add("multipart");
        ArrayNode arr = body.putArray("objects");
        for (UploadPlan.Entry e : objects) arr.addObject().put("oid", e.sha256()).put("size", e.size());
        body.put("hash_algo", "sha256");
        URI uri = http.url("/" + lfsPrefix(plan.repoType()) + plan.repoId() + ".git/info/lfs/objects/batch");
        HttpResponse<String> r = http.sendRetrying(() -> http.request(uri).header("Accept", "application/vnd.git-lfs+json")
                .header("Content-Type", "application/vnd.git-lfs+json").POST(HttpRequest.BodyPublishers.ofString(Json.line(body))).build(),
                HttpResponse.BodyHandlers.ofString(), "LFS batch");
        if (r.statusCode() != 200) throw fail("LFS batch", r);
        Map<String, JsonNode> out = new HashMap<>();
        for (JsonNode o : parse(r.body(), "LFS batch").path("objects")) out.put(o.path("oid").asText(), o);
        return out;
    }

    /** The storage said the presigned URL is no longer valid. */
    static final class ExpiredUrl extends Exception {
        ExpiredUrl(String m) {
            super(m);
        }
    }

    private void transfer(UploadPlan.Entry e, JsonNode upload, ProgressBar bar, AtomicLong sent) throws ExpiredUrl {
        JsonNode header = upload.path("header");
        String chunk = header.path("chunk_size").asText(null);
        if (chunk == null) {
            URI href = URI.create(upload.path("href").asText());
            put(href, header, e, 0, e.size(), bar, sent, e.path());
            return;
        }
        long chunkSize;
        try {
            chunkSize = Long.parseLong(chunk);
        } catch (NumberFormatException x) {
            throw new PipelineException("LFS multipart: chunk_size '" + chunk + "' is not a number");
        }
        if (chunkSize <= 0) throw new PipelineException("LFS multipart: chunk_size " + chunkSize);
        long parts = (e.size() + chunkSize - 1) / chunkSize;
        TreeMap<Integer, String> urls = new TreeMap<>();
        header.properties().forEach(f -> { if (f.getKey().matches("\\d+")) urls.put(Integer.parseInt(f.getKey()), f.getValue().asText()); });
        if (urls.size() != parts || urls.firstKey() != 1 || urls.lastKey() != parts)
            throw new PipelineException("LFS multipart for " + e.path() + ": " + urls.size() + " part URLs for " + parts + " parts of " + chunkSize + " bytes");
        ArrayNode etags = Json.MAPPER.createArrayNode();
        for (var p : urls.entrySet()) {
            long off = (p.getKey() - 1) * chunkSize, len = Math.min(chunkSize, e.size() - off);
            String etag = put(URI.create(p.getValue()), null, e, off, len, bar, sent, e.path() + " part " + p.getKey() + "/" + parts);
            if (etag == null) throw new PipelineException("LFS multipart: storage gave no ETag for " + e.path() + " part " + p.getKey());
            etags.addObject().put("partNumber", p.getKey()).put("etag", etag);
        }
        ObjectNode done = Json.object();
        done.put("oid", e.sha256());
        done.set("parts", etags);
        URI href = URI.create(upload.path("href").asText());
        HttpResponse<String> r = http.sendRetrying(() -> http.request(href).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(Json.line(done))).build(), HttpResponse.BodyHandlers.ofString(), "LFS multipart completion");
        if (r.statusCode() / 100 != 2) throw fail("LFS multipart completion of " + e.path(), r);
    }

    /** PUT of a file region, streamed from disk; retried on 5xx and connection errors. @return the ETag */
    private String put(URI href, JsonNode header, UploadPlan.Entry e, long offset, long length, ProgressBar bar, AtomicLong sent,
                       String what) throws ExpiredUrl {
        Backoff backoff = http.backoff();
        String last = "";
        for (int attempt = 0; attempt < backoff.maxAttempts(); attempt++) {
            AtomicLong attemptBytes = new AtomicLong();
            HttpRequest.Builder b = http.request(href).timeout(java.time.Duration.ofHours(2))
                    .PUT(HttpRequest.BodyPublishers.fromPublisher(HttpRequest.BodyPublishers.ofInputStream(() -> region(e, offset, length, bar, attemptBytes)), length));
            if (header != null) header.properties().forEach(f -> {
                if (!f.getKey().equals("chunk_size") && !f.getKey().matches("\\d+")) b.header(f.getKey(), f.getValue().asText());
            });
            try {
                HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
                int s = r.statusCode();
                if (s / 100 == 2) {
                    sent.addAndGet(attemptBytes.get());
                    return r.headers().firstValue("ETag").orElse(null);
                }
                bar.step(-attemptBytes.get());
                if (s == 403 || (s == 400 && r.body().contains("xpired"))) throw new ExpiredUrl("HTTP " + s + " " + HubHttp.brief(r.body()));
                if (s != 429 && s < 500) throw new PipelineException("uploading " + what + ": HTTP " + s + " " + HubHttp.brief(r.body()));
                last = "HTTP " + s;
                Backoff.sleep(backoff.delay(attempt, Backoff.retryAfter(r.headers().firstValue("Retry-After").orElse(null))));
            } catch (IOException x) {
                bar.step(-attemptBytes.get());
                last = x.getMessage();
                Backoff.sleep(backoff.delay(attempt));
            }
        }
        throw new PipelineException("uploading " + what + " failed after " + backoff.maxAttempts() + " attempts (" + last
                + "); nothing was committed, rerun to retry");
    }

    private static InputStream region(UploadPlan.Entry e, long offset, long length, ProgressBar bar, AtomicLong counted) {
        try {
            FileChannel ch = FileChannel.open(e.local(), StandardOpenOption.READ);
            ch.position(offset);
            InputStream raw = Channels.newInputStream(ch);
            return new FilterInputStream(raw) {
                long left = length;

                @Override
                public int read() throws IOException {
                    byte[] one = new byte[1];
                    return read(one, 0, 1) < 0 ? -1 : one[0] & 255;
                }

                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    if (left <= 0) return -1;
                    int n = super.read(b, off, (int) Math.min(len, left));
                    if (n > 0) {
                        left -= n;
                        bar.step(n);
                        counted.addAndGet(n);
                    }
                    return n;
                }
            };
        } catch (IOException x) {
            throw new java.io.UncheckedIOException(x);
        }
    }

    private void verify(UploadPlan.Entry e, JsonNode verify) {
        URI href = URI.create(verify.path("href").asText());
        ObjectNode body = Json.object().put("oid", e.sha256()).put("size", e.size());
        HttpResponse<String> r = http.sendRetrying(() -> {
            HttpRequest.Builder b = http.request(href).header("Content-Type", "application/vnd.git-lfs+json")
                    .header("Accept", "application/vnd.git-lfs+json").POST(HttpRequest.BodyPublishers.ofString(Json.line(body)));
            verify.path("header").properties().forEach(f -> b.setHeader(f.getKey(), f.getValue().asText()));
            return b.build();
        }, HttpResponse.BodyHandlers.ofString(), "LFS verify");
        if (r.statusCode() / 100 != 2) throw fail("LFS verify of " + e.path(), r);
    }

    private JsonNode commit(UploadPlan plan, List<UploadPlan.Entry> lfs, List<UploadPlan.Entry> regular, String summary, String description) {
        StringBuilder nd = new StringBuilder();
        ObjectNode header = Json.object();
        header.put("key", "header");
        header.putObject("value").put("summary", summary).put("description", description == null ? "" : description);
        nd.append(Json.line(header)).append('\n');
        for (UploadPlan.Entry e : regular) {
            ObjectNode o = Json.object();
            o.put("key", "file");
            try {
                o.putObject("value").put("path", e.path()).put("content", Base64.getEncoder().encodeToString(Files.readAllBytes(e.local())))
                        .put("encoding", "base64");
            } catch (IOException x) {
                throw new PipelineException(e.local() + ": cannot read: " + x.getMessage());
            }
            nd.append(Json.line(o)).append('\n');
        }
        for (UploadPlan.Entry e : lfs) {
            ObjectNode o = Json.object();
            o.put("key", "lfsFile");
            o.putObject("value").put("path", e.path()).put("algo", "sha256").put("oid", e.sha256()).put("size", e.size());
            nd.append(Json.line(o)).append('\n');
        }
        URI uri = http.url("/api/" + plural(plan.repoType()) + "/" + plan.repoId() + "/commit/" + enc(plan.revision()));
        String payload = nd.toString();
        HttpResponse<String> r = http.sendRetrying(() -> http.request(uri).header("Content-Type", "application/x-ndjson")
                .POST(HttpRequest.BodyPublishers.ofString(payload)).build(), HttpResponse.BodyHandlers.ofString(), "commit");
        if (r.statusCode() / 100 != 2) throw fail("commit", r);
        JsonNode out = parse(r.body(), "commit");
        log.println("committed " + (lfs.size() + regular.size()) + " files: " + out.path("commitUrl").asText(""));
        return out;
    }

    private static JsonNode parse(String body, String what) {
        try {
            return Json.parse(body);
        } catch (IOException e) {
            throw new PipelineException(what + ": the Hub answered something that is not JSON: " + HubHttp.brief(body));
        }
    }

    private static PipelineException fail(String what, HttpResponse<String> r) {
        String hint = switch (r.statusCode()) {
            case 401 -> " (token missing or invalid: set HF_TOKEN or pass --token-file)";
            case 403 -> " (the token may lack write access to this repo or namespace)";
            case 404 -> " (repo or revision not found)";
            default -> "";
        };
        return new PipelineException(what + ": HTTP " + r.statusCode() + " " + HubHttp.brief(r.body()) + hint);
    }
}
