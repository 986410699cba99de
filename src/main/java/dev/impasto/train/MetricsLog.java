package dev.impasto.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/** metrics.jsonl: one JSON object per optimizer step, appended and flushed as it happens. */
public final class MetricsLog implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();
    private final OutputStream out;

    public MetricsLog(Path file, boolean append) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        out = Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING);
    }

    public void write(ObjectNode row) throws IOException {
        out.write((JSON.writeValueAsString(row) + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    public static ObjectNode row() {
        return JSON.createObjectNode();
    }

    /** Rows of a metrics file; a torn last line (killed writer) is ignored. */
    public static List<JsonNode> read(Path file) throws IOException {
        List<JsonNode> rows = new ArrayList<>();
        if (!Files.exists(file)) return rows;
        for (String line : Files.readAllLines(file)) {
            if (line.isBlank()) continue;
            try {
                rows.add(JSON.readTree(line));
            } catch (IOException e) {
                // a line cut by a kill: skip it
            }
        }
        return rows;
    }

    /** Keeps only rows with step <= lastStep (a resumed run rewinds the log to its checkpoint). */
    public static void truncateAfter(Path file, long lastStep) throws IOException {
        if (!Files.exists(file)) return;
        StringBuilder sb = new StringBuilder();
        for (JsonNode r : read(file)) if (r.path("step").asLong() <= lastStep) sb.append(JSON.writeValueAsString(r)).append('\n');
        Files.writeString(file, sb.toString());
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
