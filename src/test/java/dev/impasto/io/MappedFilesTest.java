package dev.impasto.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.io.gguf.GgufFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MappedFilesTest {
    @TempDir
    Path dir;

    @Test
    void mapsReadOnlyAndUnmapsWhenTheParserFails() throws IOException {
        Path f = dir.resolve("x.bin");
        Files.write(f, new byte[] {1, 2, 3, 4});
        AtomicReference<Arena> seen = new AtomicReference<>();
        byte[] read = MappedFiles.map(f, (seg, arena) -> {
            seen.set(arena);
            assertTrue(seg.isReadOnly());
            return seg.toArray(ValueLayout.JAVA_BYTE);
        });
        assertArrayEquals(new byte[] {1, 2, 3, 4}, read);
        assertTrue(seen.get().scope().isAlive(), "the parser's object owns the arena");
        seen.get().close();

        IOException e = assertThrows(IOException.class, () -> MappedFiles.map(f, (seg, arena) -> {
            seen.set(arena);
            throw new IOException("bad header");
        }));
        assertEquals("bad header", e.getMessage());
        assertFalse(seen.get().scope().isAlive(), "a failed parse unmaps the file");
        assertEquals(0, (int) MappedFiles.map(Files.write(dir.resolve("empty"), new byte[0]), (seg, arena) -> {
            arena.close();
            return (int) seg.byteSize();
        }));
    }

    @Test
    void aMissingFileSaysSoForEveryFormat() {
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> GgufFile.open(dir.resolve("none.gguf")));
        assertEquals(dir.resolve("none.gguf") + ": no such file", e.getMessage());
    }
}
