package dev.impasto.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {
    @TempDir
    Path dir;

    List<Path> files() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    @Test
    void replacesTheFileAndLeavesNothingElse() throws IOException {
        Path f = dir.resolve("sub/out.json");
        AtomicFiles.writeString(f, "first");
        AtomicFiles.writeString(f, "second é");
        assertEquals("second é", Files.readString(f, StandardCharsets.UTF_8));
        AtomicFiles.write(f, new byte[] {1, 2, 3});
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(f));
        // the stream writer may close its stream (Jackson does): that only flushes, the data still lands
        AtomicFiles.writeStream(f, out -> {
            out.write("streamed".getBytes(StandardCharsets.UTF_8));
            out.close();
        });
        assertEquals("streamed", Files.readString(f));
        try (Stream<Path> s = Files.list(f.getParent())) {
            assertEquals(List.of(f), s.toList());
        }
    }

    @Test
    void aFailureKeepsTheOldFileAndRemovesTheTemporary() throws IOException {
        Path f = dir.resolve("keep.txt");
        Files.writeString(f, "old");
        IOException e = assertThrows(IOException.class, () -> AtomicFiles.writeStream(f, out -> {
            out.write("half of the new".getBytes(StandardCharsets.UTF_8));
            throw new IOException("disk full");
        }));
        assertEquals("disk full", e.getMessage());
        assertEquals("old", Files.readString(f));
        assertEquals(List.of(f), files());
    }
}
