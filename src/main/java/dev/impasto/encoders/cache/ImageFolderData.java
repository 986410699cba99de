package dev.impasto.encoders.cache;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * A folder of training pictures with captions, in the layouts people keep them: an imagefolder (train/metadata.jsonl
 * or metadata.jsonl with {@code file_name} and a caption field, as `impasto curate` and `impasto caption` write it),
 * or images with kohya-style sidecar captions ({@code name.txt} beside {@code name.jpg}); an image with neither has
 * an empty caption.
 */
public final class ImageFolderData {
    private ImageFolderData() {}

    static final String IMAGE = ".*\\.(jpe?g|png|webp|bmp|gif|tiff?)$";

    public static List<DataItem> read(Path root, String captionField) throws IOException {
        if (!Files.isDirectory(root)) throw new IOException(root + " is not a folder (give the dataset folder: train/ + metadata.jsonl, or images with .txt captions)");
        Path folder = Files.isRegularFile(root.resolve("train/metadata.jsonl")) ? root.resolve("train") : root;
        Path meta = folder.resolve("metadata.jsonl");
        List<DataItem> items = new ArrayList<>();
        if (Files.isRegularFile(meta)) {
            ObjectMapper json = new ObjectMapper();
            int n = 0;
            for (String line : Files.readAllLines(meta, StandardCharsets.UTF_8)) {
                n++;
                if (line.isBlank()) continue;
                JsonNode o;
                try {
                    o = json.readTree(line);
                } catch (IOException e) {
                    throw new IOException(meta + " line " + n + ": not valid JSON (" + e.getMessage() + ")");
                }
                String file = o.path("file_name").asText("");
                if (file.isEmpty()) throw new IOException(meta + " line " + n + ": missing field \"file_name\"");
                Path p = folder.resolve(file).normalize();
                if (!p.startsWith(folder.normalize())) throw new IOException(meta + " line " + n + ": file_name \"" + file + "\" leaves the dataset folder");
                String caption = o.hasNonNull(captionField) ? o.get(captionField).asText() : sidecar(p);
                items.add(new DataItem(file, p, caption));
            }
        } else {
            try (Stream<Path> s = Files.walk(folder)) {
                for (Path p : s.filter(Files::isRegularFile).sorted().toList()) {
                    if (!p.getFileName().toString().toLowerCase(Locale.ROOT).matches(IMAGE)) continue;
                    items.add(new DataItem(folder.relativize(p).toString().replace('\\', '/'), p, sidecar(p)));
                }
            }
        }
        if (items.isEmpty()) throw new IOException(root + ": no images (no metadata.jsonl rows and no .jpg/.png/.webp files)");
        return items;
    }

    /** name.txt (or name.caption) beside the image, or "". */
    private static String sidecar(Path image) throws IOException {
        String n = image.getFileName().toString();
        int dot = n.lastIndexOf('.');
        String stem = dot > 0 ? n.substring(0, dot) : n;
        for (String ext : new String[] {".txt", ".caption"}) {
            Path c = image.resolveSibling(stem + ext);
            if (Files.isRegularFile(c)) return Files.readString(c, StandardCharsets.UTF_8).strip();
        }
        return "";
    }
}
