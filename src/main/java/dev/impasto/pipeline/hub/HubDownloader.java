package dev.impasto.pipeline.hub;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.io.Digests;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.Progress;
import dev.impasto.util.ProgressBar;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Downloads files of a Hub dataset repo into a cache folder: resumable (a {@code .part} file continues with an
 * HTTP Range request), verified (LFS files by sha256 against the oid the tree API gives, small files by their git
 * blob sha1), and skipped when already present and verified.
 */
public final class HubDownloader {
    /** A file as the tree API lists it; {@code lfsOid} is the sha256 of LFS files, else null. */
    public record RemoteFile(String path, long size, String gitOid, String lfsOid) {}

    private final HubHttp http;
    private final String repo;
    private final String revision;
    private final Path cache;
    private final PrintStream log;

    public HubDownloader(HubHttp http, String repo, String revision, Path cache, PrintStream log) {
        if (!repo.matches("[A-Za-z0-9][\\w.-]*/[\\w.-]+"))
            throw new PipelineException("dataset repo '" + repo + "' is not of the form owner/name");
        this.http = http;
        this.repo = repo;
        this.revision = revision;
        this.cache = cache;
        this.log = log;
    }

    /** Files under {@code dir} (recursive), following the API's Link: rel="next" pages. */
    public List<RemoteFile> list(String dir) {
        List<RemoteFile> out = new ArrayList<>();
        URI next = http.url("/api/datasets/" + repo + "/tree/" + enc(revision) + "/" + dir + "?recursive=true");
        int pages = 0;
        while (next != null && pages++ < 1000) {
            URI uri = next;
            HttpResponse<String> r = http.sendRetrying(() -> http.request(uri).GET().build(), HttpResponse.BodyHandlers.ofString(),
                    "listing " + repo + "/" + dir);
            if (r.statusCode() == 401 || r.statusCode() == 403)
                throw new PipelineException("listing " + repo + ": HTTP " + r.statusCode() + " (gated or private: check the token and that you accepted the terms)");
            if (r.statusCode() == 404) throw new PipelineException("listing " + repo + "/" + dir + ": not found (HTTP 404): check the repo name, revision and folder");
            if (r.statusCode() != 200) throw new PipelineException("listing " + repo + ": HTTP " + r.statusCode() + " " + HubHttp.brief(r.body()));
            JsonNode arr;
            try {
                arr = Json.parse(r.body());
            } catch (IOException e) {
                throw new PipelineException("listing " + repo + ": the answer is not JSON: " + HubHttp.brief(r.body()));
            }
            for (JsonNode f : arr) {
                if (!"file".equals(f.path("type").asText())) continue;
                JsonNode lfs = f.path("lfs");
                out.add(new RemoteFile(f.path("path").asText(), f.path("size").asLong(), f.path("oid").asText(null),
                        lfs.isObject() ? lfs.path("oid").asText(null) : null));
            }
            next = nextLink(uri, r.headers().firstValue("Link").orElse(null));
        }
        out.sort(java.util.Comparator.comparing(RemoteFile::path));
        return out;
    }

    private static URI nextLink(URI current, String link) {
        if (link == null) return null;
        Matcher m = Pattern.compile("<([^>]+)>\\s*;\\s*rel=\"?next\"?").matcher(link);
        return m.find() ? current.resolve(m.group(1)) : null;
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    /** Downloads (or finds in the cache) every file; returns their local paths in the same order. */
    public List<Path> fetchAll(List<RemoteFile> files) {
        long total = files.stream().mapToLong(RemoteFile::size).sum();
        List<Path> out = new ArrayList<>();
        try (ProgressBar bar = Progress.bar("download", total, "B", log)) {
            for (RemoteFile f : files) out.add(fetch(f, bar));
        }
        return out;
    }

    public Path fetch(RemoteFile f, ProgressBar bar) {
        Path target = cache.resolve(f.path()).normalize();
        if (!target.startsWith(cache.normalize())) throw new PipelineException("refusing remote path " + f.path());
        Path part = target.resolveSibling(target.getFileName() + ".part");
        Path verified = target.resolveSibling(target.getFileName() + ".verified");
        try {
            Files.createDirectories(target.getParent());
            String expect = expectedDigest(f);
            if (Files.isRegularFile(target) && Files.size(target) == f.size() && Files.isRegularFile(verified)
                    && Files.readString(verified).strip().equals(expect)) {
                if (bar != null) bar.step(f.size());
                return target;
            }
            boolean restarted = false;
            IOException lastError = null;
            for (int attempt = 0; attempt < http.backoff().maxAttempts(); attempt++) {
                try {
                    long have = Files.exists(part) ? Files.size(part) : 0;
                    if (have > f.size()) { Files.delete(part); have = 0; }
                    if (have < f.size()) download(f, part, have, bar);
                    String got = digest(f, part);
                    if (!got.equals(expect)) {
                        Files.delete(part);
                        if (restarted) throw new PipelineException(f.path() + ": checksum mismatch twice (expected " + expect + ", got " + got
                                + "); the server is sending different bytes than it lists");
                        restarted = true;
                        log.println(f.path() + ": checksum mismatch, downloading again from the start");
                        continue;
                    }
                    Files.move(part, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                    Files.writeString(verified, expect + "\n");
                    return target;
                } catch (IOException e) {
                    lastError = e;
                    log.println(f.path() + ": " + e.getMessage() + "; resuming (attempt " + (attempt + 2) + ")");
                    Backoff.sleep(http.backoff().delay(attempt));
                }
            }
            throw new PipelineException(f.path() + ": download failed after " + http.backoff().maxAttempts() + " attempts: "
                    + (lastError == null ? "checksum" : lastError.getMessage()) + "; rerun to resume from " + part);
        } catch (IOException e) {
            throw new PipelineException(f.path() + ": " + e.getMessage(), e);
        }
    }

    private void download(RemoteFile f, Path part, long have, ProgressBar bar) throws IOException {
        URI uri = http.url("/datasets/" + repo + "/resolve/" + enc(revision) + "/" + f.path());
        HttpRequest.Builder b = http.request(uri).GET();
        if (have > 0) b.header("Range", "bytes=" + have + "-");
        HttpResponse<InputStream> r = http.sendFollowing(b.build(), HttpResponse.BodyHandlers.ofInputStream());
        int s = r.statusCode();
        try (InputStream in = r.body()) {
            if (s == 416) return; // the part is already complete; the digest decides
            if (s == 429 || s >= 500) throw new IOException("HTTP " + s);
            if (s == 401 || s == 403 || s == 404)
                throw new PipelineException(f.path() + ": HTTP " + s + " (" + (s == 404 ? "not found" : "not allowed: check the token") + ")");
            if (s != 200 && s != 206) throw new PipelineException(f.path() + ": unexpected HTTP " + s);
            boolean append = s == 206 && have > 0;
            if (append) {
                String range = r.headers().firstValue("Content-Range").orElse("");
                if (!range.startsWith("bytes " + have + "-")) throw new IOException("server resumed at the wrong offset (" + range + ")");
            } else if (bar != null && have > 0) {
                bar.step(-have);
            }
            try (OutputStream out = Files.newOutputStream(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
                byte[] buf = new byte[1 << 16];
                long written = append ? have : 0;
                int n;
                while ((n = in.read(buf)) > 0) {
                    if (written + n > f.size()) throw new PipelineException(f.path() + ": server sent more than the listed " + f.size() + " bytes");
                    out.write(buf, 0, n);
                    written += n;
                    if (bar != null) bar.step(n);
                }
                if (written < f.size()) throw new IOException("connection ended at " + written + " of " + f.size() + " bytes");
            }
        }
    }

    private static String expectedDigest(RemoteFile f) {
        if (f.lfsOid() != null) return "sha256:" + f.lfsOid();
        if (f.gitOid() != null) return "git-sha1:" + f.gitOid();
        throw new PipelineException(f.path() + ": the listing gives no checksum to verify against");
    }

    private static String digest(RemoteFile f, Path file) throws IOException {
        if (f.lfsOid() != null) return "sha256:" + Digests.sha256(file);
        MessageDigest md = Digests.of("SHA-1"); // git's blob id: sha1 of "blob <size>\0" + content
        md.update(("blob " + Files.size(file) + "\0").getBytes(StandardCharsets.UTF_8));
        return "git-sha1:" + Digests.hex(Digests.update(md, file));
    }

    /** Picks shards by a selection like "0-9,15" (indexes into the sorted list); "all" or null keeps all. */
    public static List<RemoteFile> select(List<RemoteFile> files, String selection) {
        if (selection == null || selection.isBlank() || selection.equals("all")) return files;
        java.util.TreeSet<Integer> idx = new java.util.TreeSet<>();
        for (String part : selection.split(",")) {
            String p = part.strip();
            try {
                if (p.contains("-")) {
                    String[] ab = p.split("-", 2);
                    for (int i = Integer.parseInt(ab[0].strip()); i <= Integer.parseInt(ab[1].strip()); i++) idx.add(i);
                } else idx.add(Integer.parseInt(p));
            } catch (NumberFormatException e) {
                throw new PipelineException("option --hub-shards: '" + p + "' is not an index or a range like 0-9");
            }
        }
        List<RemoteFile> out = new ArrayList<>();
        for (int i : idx) {
            if (i < 0 || i >= files.size()) throw new PipelineException("option --hub-shards: index " + i + " is out of range (0.." + (files.size() - 1) + ")");
            out.add(files.get(i));
        }
        return out;
    }
}
