package dev.impasto.io.safetensors;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.io.AtomicFiles;
import dev.impasto.io.TensorEntry;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A sharded safetensors model: {@code <name>.safetensors.index.json} ({@code {"metadata": {"total_size": ...},
 * "weight_map": {tensor: shard file}}}, as Hugging Face writes it) and its shards. Shards are opened lazily, when a
 * tensor in them is first asked for, and stay open until {@link #close()}. Missing shard files are reported when
 * the index is opened, so an incomplete download fails early with the names of the files to fetch.
 */
public final class SafetensorsIndex implements AutoCloseable {
    private static final ObjectMapper JSON = JsonMapper.builder(
            JsonFactory.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build()).build();

    private final Path path;
    private final Path directory;
    private final Map<String, String> metadata;
    private final Map<String, String> weightMap;
    private final List<String> shardNames;
    private final Map<String, SafetensorsFile> open = new HashMap<>();
    private boolean closed;

    private SafetensorsIndex(Path path, Map<String, String> metadata, Map<String, String> weightMap, List<String> shardNames) {
        this.path = path;
        this.directory = path.toAbsolutePath().getParent();
        this.metadata = metadata;
        this.weightMap = weightMap;
        this.shardNames = shardNames;
    }

    public static boolean isIndexFile(Path p) {
        return p.getFileName() != null && p.getFileName().toString().endsWith(".safetensors.index.json");
    }

    /** Reads and checks the index; shards are checked to exist but not opened. */
    public static SafetensorsIndex open(Path indexJson) throws IOException {
        byte[] bytes = Files.readAllBytes(indexJson);
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (JacksonException e) {
            throw new SafetensorsFormatException(indexJson + ": the index is not valid JSON (" + e.getOriginalMessage()
                    + "): the download is corrupt; re-download it", e);
        }
        if (root == null || !root.isObject() || !root.path("weight_map").isObject())
            throw new SafetensorsFormatException(indexJson + ": the index has no \"weight_map\" object: it is not a safetensors "
                    + "index (or is corrupt); re-download it");
        Map<String, String> meta = new LinkedHashMap<>();
        JsonNode m = root.path("metadata");
        if (m.isObject()) for (Map.Entry<String, JsonNode> e : m.properties())
            meta.put(e.getKey(), e.getValue().isTextual() ? e.getValue().textValue() : e.getValue().toString());
        Map<String, String> weightMap = new LinkedHashMap<>();
        Set<String> shards = new LinkedHashSet<>();
        Path dir = indexJson.toAbsolutePath().getParent();
        for (Map.Entry<String, JsonNode> e : root.get("weight_map").properties()) {
            if (!e.getValue().isTextual())
                throw new SafetensorsFormatException(indexJson + ": weight_map entry \"" + e.getKey() + "\" is not a file name: "
                        + "the index is corrupt; re-download it");
            String shard = e.getValue().textValue();
            Path resolved = dir.resolve(shard).normalize();
            // an index from the internet must not point outside its folder
            if (shard.isEmpty() || Path.of(shard).isAbsolute() || !resolved.startsWith(dir.normalize()) || resolved.equals(dir.normalize()))
                throw new SafetensorsFormatException(indexJson + ": weight_map sends \"" + e.getKey() + "\" to \"" + shard
                        + "\", which is not a file in the index's folder: the index is corrupt or malicious; re-download it");
            weightMap.put(e.getKey(), shard);
            shards.add(shard);
        }
        List<String> missing = new ArrayList<>();
        for (String s : shards) if (!Files.isRegularFile(dir.resolve(s))) missing.add(s);
        if (!missing.isEmpty())
            throw new SafetensorsFormatException(indexJson + ": " + missing.size() + " of the " + shards.size()
                    + " shard files it lists are missing (" + String.join(", ", missing) + "): the download is incomplete; fetch them");
        // zero-padded shard names sort in shard order
        return new SafetensorsIndex(indexJson, Collections.unmodifiableMap(meta), Collections.unmodifiableMap(weightMap),
                shards.stream().sorted().toList());
    }

    public Path path() {
        return path;
    }

    public Path directory() {
        return directory;
    }

    /** The index's "metadata" (values as strings; total_size among them when present). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** total_size from the metadata, or -1. */
    public long totalSize() {
        try {
            return Long.parseLong(metadata.getOrDefault("total_size", "-1"));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Tensor name to shard file name, in index order. */
    public Map<String, String> weightMap() {
        return weightMap;
    }

    public Set<String> keys() {
        return weightMap.keySet();
    }

    /** Shard file names, sorted (shard order for Hugging Face names). */
    public List<String> shardNames() {
        return shardNames;
    }

    public String shardOf(String key) {
        String s = weightMap.get(key);
        if (s == null) throw new IllegalArgumentException(path + " lists no tensor \"" + key + "\"");
        return s;
    }

    /** The named shard, opened (and validated) on first use. */
    public synchronized SafetensorsFile shard(String shardName) throws IOException {
        if (closed) throw new IllegalStateException(path + " is closed");
        SafetensorsFile f = open.get(shardName);
        if (f == null) {
            if (!shardNames.contains(shardName)) throw new IllegalArgumentException(path + " lists no shard \"" + shardName + "\"");
            f = SafetensorsFile.open(directory.resolve(shardName));
            open.put(shardName, f);
        }
        return f;
    }

    /** The named tensor, opening its shard if needed; an error if the shard does not hold it. */
    public TensorEntry tensor(String key) throws IOException {
        String shard = shardOf(key);
        SafetensorsFile f = shard(shard);
        return f.find(key).orElseThrow(() -> new SafetensorsFormatException(path + " places \"" + key + "\" in " + shard
                + " but that shard does not contain it: the shards come from different versions of the model; re-download them"));
    }

    /** Opens every shard (validating all of them). */
    public List<SafetensorsFile> openAll() throws IOException {
        List<SafetensorsFile> all = new ArrayList<>();
        for (String s : shardNames) all.add(shard(s));
        return all;
    }

    @Override
    public synchronized void close() {
        closed = true;
        for (SafetensorsFile f : open.values()) f.close();
        open.clear();
    }

    /** Writes an index as Hugging Face does (sorted keys, 2-space indent), atomically. */
    public static void write(Path indexJson, Map<String, String> weightMap, long totalSize) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.putObject("metadata").put("total_size", totalSize);
        ObjectNode wm = root.putObject("weight_map");
        for (Map.Entry<String, String> e : new TreeMap<>(weightMap).entrySet()) wm.put(e.getKey(), e.getValue());
        DefaultPrettyPrinter pp = new DefaultPrettyPrinter().withObjectIndenter(new DefaultIndenter("  ", "\n"));
        byte[] bytes = (JSON.writer(pp).writeValueAsString(root) + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        AtomicFiles.write(indexJson, bytes);
    }
}
