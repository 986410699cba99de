package dev.impasto.pipeline.publish;

import dev.impasto.pipeline.PipelineException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;

/** Helpers to lay out a repo folder without copying multi-GB files when a hard link will do. */
final class RepoFolder {
    private RepoFolder() {}

    static void place(Path source, Path target) throws IOException {
        Files.createDirectories(target.getParent());
        Files.deleteIfExists(target);
        try {
            Files.createLink(target, source);
        } catch (IOException | UnsupportedOperationException e) {
            Files.copy(source, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Empties {@code dir} if it is a folder this tool made (it holds README.md or nothing). */
    static void fresh(Path dir) throws IOException {
        if (Files.exists(dir)) {
            try (var s = Files.list(dir)) {
                if (s.findAny().isPresent() && !Files.exists(dir.resolve("README.md")))
                    throw new PipelineException(dir + " exists and does not look like a repo folder made by impasto; choose another --out");
            }
            try (var s = Files.walk(dir)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) if (!p.equals(dir)) Files.delete(p);
            }
        }
        Files.createDirectories(dir);
    }
}
