package dev.impasto.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Weight files mapped into memory read-only, for the readers that validate and then serve them zero-copy. */
public final class MappedFiles {
    private MappedFiles() {}

    /** Builds the reader that owns a mapping (and closes {@code arena} when it is closed) from the mapped bytes. */
    @FunctionalInterface
    public interface Parser<T> {
        T parse(MemorySegment contents, Arena arena) throws IOException;
    }

    /**
     * Maps all of {@code path} read-only into a new shared arena, so that the bytes may be read from several threads,
     * and hands both to {@code parser}. When mapping or parsing fails the arena is closed (the file unmapped) before
     * the exception propagates; a missing file is a NoSuchFileException saying so.
     */
    public static <T> T map(Path path, Parser<T> parser) throws IOException {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment mapped;
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
                long size = ch.size();
                mapped = size == 0 ? MemorySegment.ofArray(new byte[0]) : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            } catch (NoSuchFileException e) {
                throw new NoSuchFileException(path.toString(), null, "no such file");
            }
            return parser.parse(mapped.asReadOnly(), arena);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }
}
