package dev.impasto.train;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.io.safetensors.SafetensorsFile;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The training cache: what `impasto cache` writes and the trainer reads (the contract between them, docs/guide.md, "The training cache").
 * A folder with manifest.json and safetensors shards; per item {@code <id>.latent} [C, h, w] (VAE latent already scaled and
 * shifted: 0.3611 * (z - 0.1159)), {@code <id>.t5} [L, textDim] and {@code <id>.clip} [pooledDim]; the empty prompt's
 * embeddings ({@code empty.t5}, {@code empty.clip}) in its own shard for caption dropout.
 */
public final class LatentCache implements TrainingSet {
    static final ObjectMapper JSON = new ObjectMapper();

    @JsonIgnoreProperties(ignoreUnknown = true)
    public static final class Manifest {
        public String format = "impasto-cache";
        public int version = 1;
        public int latentChannels = 16;
        public int textLen = 512;
        public int textDim = 4096;
        public int pooledDim = 768;
        public String vae = "";
        public String textEncoder = "";
        /** The autoencoder the latents were made with: its weights' path, tiny-random:SEED, or empty (unknown). */
        public String vaeWeights = "";
        public String emptyPromptShard = "empty.safetensors";
        public List<Entry> items = new ArrayList<>();
    }

    @JsonIgnoreProperties(ignoreUnknown = true)
    public static final class Entry {
        public String id;
        public String shard;
        public String caption = "";
        public String source = "";
        public int latentHeight;
        public int latentWidth;
        public boolean flipped;
    }

    private final Path dir;
    private final Manifest manifest;
    private final Map<String, SafetensorsFile> open = new LinkedHashMap<>(16, 0.75f, true);

    private LatentCache(Path dir, Manifest m) {
        this.dir = dir;
        this.manifest = m;
    }

    public static LatentCache open(Path dir) throws IOException {
        Path mf = dir.resolve("manifest.json");
        if (!Files.isRegularFile(mf))
            throw new IOException(dir + " is not a training cache: manifest.json is missing (create one with `impasto cache --data DIR --out " + dir + "`)");
        Manifest m;
        try {
            m = JSON.readValue(mf.toFile(), Manifest.class);
        } catch (IOException e) {
            throw new IOException(mf + ": unreadable manifest: " + e.getMessage(), e);
        }
        if (!"impasto-cache".equals(m.format) || m.version != 1)
            throw new IOException(mf + ": format " + m.format + " v" + m.version + " is not an impasto cache v1");
        List<String> problems = new ArrayList<>();
        HashSet<String> ids = new HashSet<>();
        for (int i = 0; i < m.items.size(); i++) {
            Entry e = m.items.get(i);
            if (e.id == null || e.id.isBlank()) problems.add("items[" + i + "].id is missing");
            else if (!ids.add(e.id)) problems.add("items[" + i + "].id \"" + e.id + "\" is duplicated");
            if (e.shard == null || e.shard.contains("..") || e.shard.startsWith("/")) problems.add("items[" + i + "].shard is missing or leaves the cache folder");
            else if (!Files.isRegularFile(dir.resolve(e.shard))) problems.add("items[" + i + "].shard " + e.shard + " does not exist");
            if (e.latentHeight <= 0 || e.latentWidth <= 0 || e.latentHeight % 2 != 0 || e.latentWidth % 2 != 0)
                problems.add("items[" + i + "] latent size " + e.latentHeight + "x" + e.latentWidth + " must be positive and even");
        }
        if (!problems.isEmpty()) throw new IOException(mf + ": " + String.join("; ", problems.subList(0, Math.min(10, problems.size())))
                + (problems.size() > 10 ? " (and " + (problems.size() - 10) + " more)" : ""));
        return new LatentCache(dir, m);
    }

    public Manifest manifest() {
        return manifest;
    }

    private synchronized SafetensorsFile shard(String name) {
        SafetensorsFile f = open.get(name);
        if (f != null) return f;
        try {
            f = SafetensorsFile.open(dir.resolve(name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        open.put(name, f);
        if (open.size() > 8) { // bound the mapped files
            var it = open.entrySet().iterator();
            it.next().getValue().close();
            it.remove();
        }
        return f;
    }

    private float[] read(String shard, String key, long expect) {
        SafetensorsFile f = shard(shard);
        var t = f.find(key).orElseThrow(() -> new IllegalStateException(dir.resolve(shard) + " has no tensor " + key + ": the cache is incomplete; rerun `impasto cache` (it resumes)"));
        float[] v = t.toFloatArray();
        if (v.length != expect) throw new IllegalStateException(dir.resolve(shard) + ": " + key + " has " + v.length + " values, expected " + expect);
        return v;
    }

    @Override
    public int size() {
        return manifest.items.size();
    }

    @Override
    public Item item(int index) {
        Entry e = manifest.items.get(index);
        int c = manifest.latentChannels;
        return new Item(read(e.shard, e.id + ".latent", (long) c * e.latentHeight * e.latentWidth), c, e.latentHeight, e.latentWidth,
                read(e.shard, e.id + ".t5", (long) manifest.textLen * manifest.textDim), manifest.textLen,
                read(e.shard, e.id + ".clip", manifest.pooledDim), e.caption);
    }

    @Override
    public String bucket(int index) {
        Entry e = manifest.items.get(index);
        return e.latentHeight + "x" + e.latentWidth;
    }

    @Override
    public Item emptyPrompt() {
        return new Item(null, manifest.latentChannels, 0, 0, read(manifest.emptyPromptShard, "empty.t5", (long) manifest.textLen * manifest.textDim),
                manifest.textLen, read(manifest.emptyPromptShard, "empty.clip", manifest.pooledDim), "");
    }

    @Override
    public int latentChannels() {
        return manifest.latentChannels;
    }

    @Override
    public int textDim() {
        return manifest.textDim;
    }

    @Override
    public int pooledDim() {
        return manifest.pooledDim;
    }

    @Override
    public synchronized void close() {
        open.values().forEach(SafetensorsFile::close);
        open.clear();
    }
}
