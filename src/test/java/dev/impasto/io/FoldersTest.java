package dev.impasto.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FoldersTest {
    @TempDir
    Path dir;

    @Test
    void deleteTreeRemovesEverythingUnderItAndNothingBeside() throws IOException {
        Path tree = dir.resolve("step-00000010");
        Files.createDirectories(tree.resolve("a/b"));
        Files.writeString(tree.resolve("a/b/state.safetensors"), "x");
        Files.writeString(tree.resolve("state.json"), "{}");
        Path beside = Files.writeString(dir.resolve("keep.txt"), "keep");
        Folders.deleteTree(tree);
        assertFalse(Files.exists(tree));
        Folders.deleteTree(dir.resolve("never-made")); // absent: nothing to do
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(beside), s.toList());
        }
    }
}
