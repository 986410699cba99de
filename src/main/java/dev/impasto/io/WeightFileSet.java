package dev.impasto.io;

import dev.impasto.io.gguf.GgufFile;
import dev.impasto.io.gguf.GgufTensor;
import dev.impasto.io.gguf.GgufValue;
import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.io.safetensors.SafetensorsFormatException;
import dev.impasto.io.safetensors.SafetensorsIndex;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The weight files behind one path, opened and validated: a safetensors file, a sharded safetensors model
 * (index json + shards, or shards named {@code x-0000N-of-0000M.safetensors}), a GGUF file, or a folder holding
 * one of those (a diffusers model folder is searched for its {@code transformer/} subfolder first).
 */
public final class WeightFileSet implements AutoCloseable {
    /** How the tensors are stored. */
    public enum Container { SAFETENSORS, SAFETENSORS_SHARDED, GGUF }

    private static final Pattern SHARD = Pattern.compile("(.+)-(\\d{5})-of-(\\d{5})\\.safetensors");

    private final Path requested;
    private final Path resolved;
    private final Container container;
    private final List<SafetensorsFile> safetensors;
    private final SafetensorsIndex index;
    private final GgufFile gguf;
    private final List<StoredTensor> tensors;
    private final Map<String, StoredTensor> byName;

    private WeightFileSet(Path requested, Path resolved, Container container, List<SafetensorsFile> safetensors,
                          SafetensorsIndex index, GgufFile gguf, List<StoredTensor> tensors, Map<String, StoredTensor> byName) {
        this.requested = requested;
        this.resolved = resolved;
        this.container = container;
        this.safetensors = safetensors;
        this.index = index;
        this.gguf = gguf;
        this.tensors = tensors;
        this.byName = byName;
    }

    /** Opens whatever {@code path} is; see the class comment. */
    public static WeightFileSet open(Path path) throws IOException {
        if (!Files.exists(path)) throw new NoSuchFileException(path.toString(), null, "no such file or folder");
        if (Files.isDirectory(path)) return openDirectory(path);
        if (SafetensorsIndex.isIndexFile(path)) return openIndex(path, path);
        if (GgufFile.isGguf(path)) {
            GgufFile g = GgufFile.open(path);
            List<StoredTensor> ts = new ArrayList<>(g.tensors());
            return new WeightFileSet(path, path, Container.GGUF, List.of(), null, g, Collections.unmodifiableList(ts), mapOf(ts));
        }
        SafetensorsFile f = SafetensorsFile.open(path);
        List<StoredTensor> ts = new ArrayList<>(f.tensors());
        return new WeightFileSet(path, path, Container.SAFETENSORS, List.of(f), null, null, Collections.unmodifiableList(ts), mapOf(ts));
    }

    private static WeightFileSet openDirectory(Path dir) throws IOException {
        Path transformer = dir.resolve("transformer");
        if (Files.isDirectory(transformer) && hasWeights(transformer)) dir = transformer;
        List<Path> indexes = list(dir, ".safetensors.index.json");
        List<Path> st = list(dir, ".safetensors");
        List<Path> gg = list(dir, ".gguf");
        if (!indexes.isEmpty()) {
            Path chosen = indexes.size() == 1 ? indexes.getFirst() : null;
            // diffusers keeps precision variants side by side (x.fp16.safetensors.index.json): the plain one is the default
            for (Path p : indexes) if (p.getFileName().toString().equals("diffusion_pytorch_model.safetensors.index.json")) chosen = p;
            if (chosen == null)
                throw new UnknownLayoutException(dir + " holds several sharded models (" + names(indexes) + "): pass the index file of the one you want");
            return openIndex(dir, chosen);
        }
        if (st.size() == 1) return reopenAs(dir, open(st.getFirst()));
        if (st.size() > 1) {
            // shards without an index: accept a complete x-0000N-of-0000M set
            String base = null;
            int of = -1;
            for (Path p : st) {
                Matcher m = SHARD.matcher(p.getFileName().toString());
                if (!m.matches() || (base != null && (!base.equals(m.group(1)) || of != Integer.parseInt(m.group(3))))) {
                    base = null;
                    break;
                }
                base = m.group(1);
                of = Integer.parseInt(m.group(3));
            }
            if (base == null)
                throw new UnknownLayoutException(dir + " holds several safetensors files (" + names(st) + ") that are not the shards "
                        + "of one model: pass the file you want");
            if (of != st.size())
                throw new SafetensorsFormatException(dir + ": the shards say there are " + of + " of them but " + st.size()
                        + " are present: the download is incomplete; fetch the missing ones");
            List<SafetensorsFile> files = new ArrayList<>();
            try {
                for (Path p : st) files.add(SafetensorsFile.open(p));
                return shardSet(dir, dir, files, null);
            } catch (IOException | RuntimeException e) {
                files.forEach(SafetensorsFile::close);
                throw e;
            }
        }
        if (gg.size() == 1) return reopenAs(dir, open(gg.getFirst()));
        if (gg.size() > 1)
            throw new UnknownLayoutException(dir + " holds several GGUF files (" + names(gg) + "): pass the one you want");
        throw new UnknownLayoutException(dir + " holds no .safetensors or .gguf weights" + (Files.isDirectory(dir.resolve("transformer")) ? "" :
                " (a diffusers model keeps them in transformer/)"));
    }

    private static WeightFileSet reopenAs(Path requested, WeightFileSet s) {
        return new WeightFileSet(requested, s.resolved, s.container, s.safetensors, s.index, s.gguf, s.tensors, s.byName);
    }

    private static WeightFileSet openIndex(Path requested, Path indexPath) throws IOException {
        SafetensorsIndex index = SafetensorsIndex.open(indexPath);
        try {
            List<SafetensorsFile> files = index.openAll();
            for (Map.Entry<String, String> e : index.weightMap().entrySet()) index.tensor(e.getKey()); // each listed tensor is in its shard
            return shardSet(requested, indexPath, files, index);
        } catch (IOException | RuntimeException e) {
            index.close();
            throw e;
        }
    }

    private static WeightFileSet shardSet(Path requested, Path resolved, List<SafetensorsFile> files, SafetensorsIndex index) throws IOException {
        List<StoredTensor> ts = new ArrayList<>();
        Map<String, StoredTensor> m = new LinkedHashMap<>();
        for (SafetensorsFile f : files)
            for (TensorEntry t : f.tensors()) {
                StoredTensor prev = m.putIfAbsent(t.name(), t);
                if (prev != null)
                    throw new SafetensorsFormatException("tensor \"" + t.name() + "\" is in two shards, " + prev.file().getFileName() + " and "
                            + t.file().getFileName() + ": the shards come from different downloads; re-download them");
                ts.add(t);
            }
        return new WeightFileSet(requested, resolved, Container.SAFETENSORS_SHARDED, List.copyOf(files), index, null,
                Collections.unmodifiableList(ts), Collections.unmodifiableMap(m));
    }

    private static Map<String, StoredTensor> mapOf(List<StoredTensor> ts) {
        Map<String, StoredTensor> m = new LinkedHashMap<>();
        for (StoredTensor t : ts) m.put(t.name(), t);
        return Collections.unmodifiableMap(m);
    }

    private static boolean hasWeights(Path dir) throws IOException {
        return !list(dir, ".safetensors").isEmpty() || !list(dir, ".safetensors.index.json").isEmpty() || !list(dir, ".gguf").isEmpty();
    }

    private static List<Path> list(Path dir, String suffix) throws IOException {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                if (n.endsWith(suffix) && !n.startsWith(".") && Files.isRegularFile(p)) out.add(p);
            }
        }
        Collections.sort(out);
        return out;
    }

    private static String names(List<Path> ps) {
        return String.join(", ", ps.stream().map(p -> p.getFileName().toString()).toList());
    }

    /** The path as given. */
    public Path path() {
        return requested;
    }

    /** The file actually read: the weight file, the index json, or the folder of index-less shards. */
    public Path resolved() {
        return resolved;
    }

    public Container container() {
        return container;
    }

    /** Every weight file, in order. */
    public List<Path> files() {
        if (gguf != null) return List.of(gguf.path());
        return safetensors.stream().map(SafetensorsFile::path).toList();
    }

    public List<SafetensorsFile> safetensorsFiles() {
        return safetensors;
    }

    public Optional<SafetensorsIndex> index() {
        return Optional.ofNullable(index);
    }

    public Optional<GgufFile> gguf() {
        return Optional.ofNullable(gguf);
    }

    /** All tensors, file by file in file order. */
    public List<StoredTensor> tensors() {
        return tensors;
    }

    public Map<String, StoredTensor> tensorMap() {
        return byName;
    }

    /** Metadata as strings: the safetensors {@code __metadata__} (of the first shard), or the GGUF key/values. */
    public Map<String, String> metadata() {
        if (gguf != null) {
            Map<String, String> m = new LinkedHashMap<>();
            for (Map.Entry<String, GgufValue> e : gguf.metadata().entrySet()) m.put(e.getKey(), e.getValue().display(8));
            return m;
        }
        return safetensors.isEmpty() ? Map.of() : safetensors.getFirst().metadata();
    }

    /** Sum of the tensors' stored bytes. */
    public long tensorBytes() {
        long n = 0;
        for (StoredTensor t : tensors) n += t.byteSize();
        return n;
    }

    /** Sum of the files' sizes. */
    public long fileBytes() {
        if (gguf != null) return gguf.fileSize();
        long n = 0;
        for (SafetensorsFile f : safetensors) n += f.fileSize();
        return n;
    }

    /** A GGUF tensor of this set (or null). */
    public GgufTensor ggufTensor(String name) {
        return byName.get(name) instanceof GgufTensor g ? g : null;
    }

    @Override
    public void close() {
        if (index != null) index.close();
        for (SafetensorsFile f : safetensors) f.close();
        if (gguf != null) gguf.close();
    }
}
