package dev.impasto.pipeline.caption;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Append-only record of answers, one JSON line each, forced to disk before the next one is taken as done. A line
 * is written with a single write call, so a kill leaves at most one torn last line; opening the journal cuts that
 * line off. Each id has at most one "ok" line: a rerun skips ids that have one, and this class refuses to write a
 * second.
 */
public final class CaptionJournal implements AutoCloseable {
    public record Entry(String id, String status, String caption, String reason, int attempts) {
        public boolean ok() {
            return "ok".equals(status);
        }
    }

    private final Path file;
    private final FileChannel channel;
    private final Map<String, Entry> latest = new LinkedHashMap<>();
    private int tornLines;

    public CaptionJournal(Path file) throws IOException {
        this.file = file;
        Files.createDirectories(file.toAbsolutePath().getParent());
        this.channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        // two runs appending to one journal could both caption an image: the second one is refused
        java.nio.channels.FileLock lock;
        try {
            lock = channel.tryLock();
        } catch (java.nio.channels.OverlappingFileLockException e) {
            lock = null;
        }
        if (lock == null) {
            channel.close();
            throw new PipelineException(file + " is in use by another caption run; wait for it to finish or pass another --journal");
        }
        load();
    }

    private void load() throws IOException {
        long size = channel.size();
        if (size == 0) return;
        byte[] all = Files.readAllBytes(file);
        int lastNewline = -1;
        for (int i = all.length - 1; i >= 0; i--) if (all[i] == '\n') { lastNewline = i; break; }
        if (lastNewline < all.length - 1) {
            tornLines++;
            channel.truncate(lastNewline + 1); // the answer on the torn line is lost: it is asked for again
            channel.force(true);
        }
        String text = new String(all, 0, lastNewline + 1, StandardCharsets.UTF_8);
        int n = 0;
        for (String line : text.split("\n")) {
            n++;
            if (line.isBlank()) continue;
            JsonNode o;
            try {
                o = Json.parse(line);
            } catch (IOException e) {
                throw new PipelineException(file + " line " + n + ": not valid JSON; the journal was edited by hand? (" + e.getMessage() + ")");
            }
            Entry e = new Entry(o.path("id").asText(), o.path("status").asText(), o.path("caption").asText(null),
                    o.path("reason").asText(null), o.path("attempts").asInt());
            Entry prev = latest.get(e.id());
            if (prev == null || !prev.ok()) latest.put(e.id(), e); // an ok answer is never replaced
        }
    }

    public int tornLines() {
        return tornLines;
    }

    public synchronized boolean done(String id) {
        Entry e = latest.get(id);
        return e != null && e.ok();
    }

    public synchronized Map<String, Entry> entries() {
        return new LinkedHashMap<>(latest);
    }

    public synchronized void ok(String id, String caption, String backend, int attempts) throws IOException {
        if (done(id)) throw new IllegalStateException(id + " already has a caption in " + file);
        ObjectNode o = Json.object();
        o.put("id", id).put("status", "ok").put("caption", caption).put("backend", backend).put("attempts", attempts)
                .put("time", java.time.Instant.now().toString());
        append(o);
        latest.put(id, new Entry(id, "ok", caption, null, attempts));
    }

    public synchronized void failed(String id, String reason, int attempts) throws IOException {
        if (done(id)) return;
        ObjectNode o = Json.object();
        o.put("id", id).put("status", "failed").put("reason", reason).put("attempts", attempts)
                .put("time", java.time.Instant.now().toString());
        append(o);
        latest.put(id, new Entry(id, "failed", null, reason, attempts));
    }

    private void append(ObjectNode o) throws IOException {
        ByteBuffer b = ByteBuffer.wrap((Json.line(o) + "\n").getBytes(StandardCharsets.UTF_8));
        long pos = channel.size();
        while (b.hasRemaining()) pos += channel.write(b, pos);
        channel.force(false);
    }

    @Override
    public synchronized void close() throws IOException {
        channel.close();
    }
}
