package dev.impasto.pipeline.caption;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.io.AtomicFiles;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The images to caption, from an imagefolder ({@code train/metadata.jsonl} as curate writes it, or a folder with
 * metadata.jsonl) or a bare folder of images; and writing the captions back as the {@code text} field.
 */
public final class CaptionDataset {
    private final Path folder;
    private final Path metadata;
    private final List<CaptionItem> items = new ArrayList<>();

    public CaptionDataset(Path root) {
        Path f = Files.isRegularFile(root.resolve("train/metadata.jsonl")) ? root.resolve("train") : root;
        if (!Files.isDirectory(f)) throw new PipelineException(root + " is not a folder");
        this.folder = f;
        this.metadata = f.resolve("metadata.jsonl");
        try {
            if (Files.isRegularFile(metadata)) {
                int n = 0;
                for (String line : Files.readAllLines(metadata)) {
                    n++;
                    if (line.isBlank()) continue;
                    JsonNode o = Json.parseLine(metadata, n, line);
                    String file = o.path("file_name").asText("");
                    if (file.isEmpty()) throw new PipelineException(metadata + " line " + n + ": missing field 'file_name'");
                    items.add(new CaptionItem(file, f.resolve(file), o.hasNonNull("genre") ? o.get("genre").asText() : null));
                }
            } else {
                try (Stream<Path> s = Files.list(f)) {
                    for (Path p : s.sorted().toList()) {
                        String name = p.getFileName().toString().toLowerCase(Locale.ROOT);
                        if (name.matches(".*\\.(jpe?g|png|webp|bmp|tiff?)$"))
                            items.add(new CaptionItem(p.getFileName().toString(), p, null));
                    }
                }
            }
        } catch (IOException e) {
            throw new PipelineException(root + ": cannot read: " + e.getMessage());
        }
        if (items.isEmpty()) throw new PipelineException(root + ": no images to caption (no metadata.jsonl rows and no image files)");
    }

    public List<CaptionItem> items() {
        return items;
    }

    public Path folder() {
        return folder;
    }

    /** Writes {@code text} into metadata.jsonl (replacing the file atomically); items without a caption keep no text. */
    public void writeCaptions(Map<String, String> textById) throws IOException {
        AtomicFiles.writeStream(metadata, os -> {
            BufferedWriter w = new BufferedWriter(new OutputStreamWriter(os, StandardCharsets.UTF_8));
            if (Files.isRegularFile(metadata)) {
                for (String line : Files.readAllLines(metadata)) {
                    if (line.isBlank()) continue;
                    ObjectNode o = (ObjectNode) Json.parse(line);
                    String t = textById.get(o.path("file_name").asText());
                    if (t != null) o.put("text", t);
                    else o.remove("text");
                    w.write(Json.line(o));
                    w.newLine();
                }
            } else {
                for (CaptionItem it : items) {
                    ObjectNode o = Json.object();
                    o.put("file_name", it.id());
                    String t = textById.get(it.id());
                    if (t != null) o.put("text", t);
                    w.write(Json.line(o));
                    w.newLine();
                }
            }
            w.flush();
        });
    }
}
