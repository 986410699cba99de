package dev.impasto.pipeline.curate;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A folder of images with {@code metadata.jsonl} (one JSON object a line) or {@code metadata.csv} (header row):
 * {@code file_name} (relative to the metadata file), {@code genre} and optionally {@code style} and
 * {@code artist}, as ClassLabel names or ids. Rows without a style pass the style filter.
 */
public final class ImageFolderSource implements CurationSource {
    private final Path metadata;
    private final Path root;
    private final ClassLabels labels;
    private final List<Row> rows = new ArrayList<>();

    public ImageFolderSource(Path folderOrMetadata, ClassLabels labels) {
        this.labels = labels;
        Path m = folderOrMetadata;
        if (Files.isDirectory(m)) {
            Path j = m.resolve("metadata.jsonl"), c = m.resolve("metadata.csv");
            m = Files.exists(j) ? j : c;
        }
        if (!Files.isRegularFile(m))
            throw new PipelineException(folderOrMetadata + ": no metadata.jsonl or metadata.csv (columns file_name, genre[, style, artist])");
        this.metadata = m;
        this.root = m.toAbsolutePath().getParent();
        try {
            if (m.toString().endsWith(".csv")) readCsv(m);
            else readJsonl(m);
        } catch (IOException e) {
            throw new PipelineException(m + ": cannot read: " + e.getMessage());
        }
    }

    private void readJsonl(Path m) throws IOException {
        try (BufferedReader r = Files.newBufferedReader(m)) {
            String line;
            int n = 0;
            while ((line = r.readLine()) != null) {
                n++;
                if (line.isBlank()) continue;
                JsonNode o = Json.parseLine(m, n, line);
                Map<String, String> f = new HashMap<>();
                o.properties().forEach(e -> f.put(e.getKey(), e.getValue().isNull() ? null : e.getValue().asText()));
                add(f, m + " line " + n);
            }
        }
    }

    private void readCsv(Path m) throws IOException {
        List<String> lines = Files.readAllLines(m);
        if (lines.isEmpty()) throw new PipelineException(m + ": empty (expected a header row with file_name,genre,...)");
        List<String> header = Csv.split(lines.get(0));
        for (int i = 1; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) continue;
            List<String> cells = Csv.split(lines.get(i));
            Map<String, String> f = new HashMap<>();
            for (int c = 0; c < header.size() && c < cells.size(); c++) f.put(header.get(c).strip(), cells.get(c));
            add(f, m + " line " + (i + 1));
        }
    }

    private void add(Map<String, String> f, String where) {
        String file = f.get("file_name");
        if (file == null || file.isBlank()) throw new PipelineException(where + ": missing field 'file_name'");
        String genre = f.get("genre");
        if (genre == null || genre.isBlank()) throw new PipelineException(where + ": missing field 'genre'");
        int g = labels.genreId(genre, where + " field 'genre'");
        String style = f.get("style");
        int s = style == null || style.isBlank() ? -1 : labels.styleId(style, where + " field 'style'");
        int a = -1;
        String artist = f.get("artist");
        if (artist != null && !artist.isBlank()) {
            try {
                a = artist.matches("\\d+") ? Integer.parseInt(artist) : ClassLabels.id(labels.artists(), artist, "artist", where);
            } catch (PipelineException e) {
                a = -1; // an artist name missing from the label list is not a reason to refuse the row
            }
        }
        rows.add(new Row(0, rows.size(), g, s, a, file));
    }

    @Override
    public String describe() {
        return "image folder " + root + " (" + rows.size() + " rows in " + metadata.getFileName() + ")";
    }

    @Override
    public List<String> shardNames() {
        return List.of(metadata.toString());
    }

    @Override
    public ClassLabels labels() {
        return labels;
    }

    @Override
    public long rowCount() {
        return rows.size();
    }

    @Override
    public void scan(RowSink sink) throws IOException {
        for (Row r : rows) sink.accept(r);
    }

    @Override
    public void fetch(List<Candidate> wanted, ImageSink sink) throws IOException {
        for (Candidate c : wanted) {
            Path p = root.resolve(c.path()).normalize();
            byte[] bytes;
            if (!p.startsWith(root)) bytes = new byte[0]; // a file_name escaping the folder is not read
            else if (!Files.isRegularFile(p)) bytes = new byte[0];
            else bytes = Files.readAllBytes(p);
            sink.accept(c, bytes);
        }
    }

    /** Minimal RFC 4180 line splitting (quoted cells, doubled quotes); no multi-line cells. */
    static final class Csv {
        static List<String> split(String line) {
            List<String> out = new ArrayList<>();
            StringBuilder cur = new StringBuilder();
            boolean quoted = false;
            for (int i = 0; i < line.length(); i++) {
                char ch = line.charAt(i);
                if (quoted) {
                    if (ch == '"' && i + 1 < line.length() && line.charAt(i + 1) == '"') {
                        cur.append('"');
                        i++;
                    } else if (ch == '"') quoted = false;
                    else cur.append(ch);
                } else if (ch == '"') quoted = true;
                else if (ch == ',') {
                    out.add(cur.toString());
                    cur.setLength(0);
                } else cur.append(ch);
            }
            out.add(cur.toString());
            return out;
        }
    }
}
