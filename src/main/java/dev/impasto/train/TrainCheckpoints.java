package dev.impasto.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.io.AtomicFiles;
import dev.impasto.io.Digests;
import dev.impasto.io.Folders;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Resumable checkpoints: checkpoints/step-NNNNNN/ holding state.safetensors (LoRA masters, optimizer moments, EMA:
 * raw fp32 bytes, so a resume continues bit for bit) and state.json (step, data position, counters, the sha256 of the
 * tensor file). A checkpoint is written into a temporary folder, every file fsynced, then renamed into place and the
 * parent fsynced: a kill at any moment leaves either the old set or the new one. Corrupt or partial checkpoints are
 * detected (missing files, bad JSON, checksum mismatch) and skipped with a message.
 */
public final class TrainCheckpoints {
    static final ObjectMapper JSON = new ObjectMapper();
    private final Path dir;
    private final PrintStream log;

    public TrainCheckpoints(Path runDir, PrintStream log) {
        this.dir = runDir.resolve("checkpoints");
        this.log = log;
    }

    public Path dir() {
        return dir;
    }

    /** Writes checkpoint {@code step}; {@code writeTensors} fills state.safetensors in the folder it is given. */
    public Path save(TrainState state, IoAction writeTensors, int keep) throws IOException {
        Files.createDirectories(dir);
        String name = String.format("step-%08d", state.step);
        Path tmp = dir.resolve("." + name + ".tmp-" + ProcessHandle.current().pid());
        Folders.deleteTree(tmp);
        Files.createDirectories(tmp);
        Path tensors = tmp.resolve("state.safetensors");
        writeTensors.run(tensors);
        ObjectNode js = JSON.valueToTree(state);
        js.put("sha256", Digests.sha256(tensors));
        js.put("saved", java.time.Instant.now().toString());
        Path json = tmp.resolve("state.json");
        Files.writeString(json, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(js));
        AtomicFiles.fsync(tensors);
        AtomicFiles.fsync(json);
        AtomicFiles.fsync(tmp);
        Path target = dir.resolve(name);
        if (Files.exists(target)) Folders.deleteTree(target);
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        AtomicFiles.fsync(dir);
        prune(keep);
        return target;
    }

    @FunctionalInterface
    public interface IoAction {
        void run(Path file) throws IOException;
    }

    /** A checkpoint that passed its checks. */
    public record Valid(Path folder, TrainState state, Path tensors) {}

    /** The newest intact checkpoint, reporting every one skipped and why; null when none is usable. */
    public Valid latestValid() throws IOException {
        for (Path p : list()) {
            String why = problem(p);
            if (why == null) {
                TrainState s = JSON.readerFor(TrainState.class).without(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                        .readValue(p.resolve("state.json").toFile());
                return new Valid(p, s, p.resolve("state.safetensors"));
            }
            log.println("[impasto] skipping checkpoint " + p.getFileName() + ": " + why);
        }
        return null;
    }

    /** Why a checkpoint folder is unusable, or null. */
    static String problem(Path p) {
        Path json = p.resolve("state.json"), tensors = p.resolve("state.safetensors");
        if (!Files.isRegularFile(json)) return "state.json is missing (the save was interrupted)";
        if (!Files.isRegularFile(tensors)) return "state.safetensors is missing";
        try {
            var n = JSON.readTree(json.toFile());
            String want = n.path("sha256").asText("");
            if (!n.has("step")) return "state.json has no step";
            String got = Digests.sha256(tensors);
            if (!got.equals(want)) return "state.safetensors is corrupt (sha256 " + got.substring(0, 12) + "... != " + (want.isEmpty() ? "none" : want.substring(0, Math.min(12, want.length()))) + "...)";
            return null;
        } catch (IOException e) {
            return "state.json is unreadable: " + e.getMessage();
        }
    }

    List<Path> list() throws IOException {
        if (!Files.isDirectory(dir)) return List.of();
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> Files.isDirectory(p) && p.getFileName().toString().matches("step-\\d+"))
                    .sorted(Comparator.comparing((Path p) -> p.getFileName().toString()).reversed()).toList();
        }
    }

    private void prune(int keep) throws IOException {
        List<Path> all = list();
        for (int i = keep; i < all.size(); i++) Folders.deleteTree(all.get(i));
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.filter(q -> q.getFileName().toString().startsWith(".step-")).toList()) Folders.deleteTree(p); // leftovers of killed saves
        }
    }
}
