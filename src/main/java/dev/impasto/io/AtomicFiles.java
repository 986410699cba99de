package dev.impasto.io;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Files replaced all at once: written to a temporary file in the target's directory, fsynced, renamed over the
 * target, then the directory is fsynced. A crash or a failure leaves either the old file or the complete new one,
 * never a truncated one; on failure the temporary file is removed.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** Writes the content of a file. */
    @FunctionalInterface
    public interface ChannelWriter {
        void write(FileChannel ch) throws IOException;
    }

    /** Writes the content of a file to a stream; closing the stream is allowed and only flushes it. */
    @FunctionalInterface
    public interface StreamWriter {
        void write(OutputStream out) throws IOException;
    }

    public static void write(Path target, ChannelWriter body) throws IOException {
        Path abs = target.toAbsolutePath();
        Path dir = abs.getParent();
        Files.createDirectories(dir);
        String rnd = HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
        Path tmp = dir.resolve("." + abs.getFileName() + "." + rnd + ".tmp");
        boolean moved = false;
        try {
            // CREATE_NEW rather than createTempFile: the file keeps the umask's permissions, like any other output
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                body.write(ch);
                ch.force(true);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
            moved = true;
            fsync(dir);
        } finally {
            if (!moved) Files.deleteIfExists(tmp);
        }
    }

    public static void writeStream(Path target, StreamWriter body) throws IOException {
        write(target, ch -> {
            OutputStream out = new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 16) {
                @Override
                public void close() throws IOException {
                    flush(); // the channel stays open for the fsync
                }
            };
            body.write(out);
            out.flush();
        });
    }

    public static void write(Path target, byte[] content) throws IOException {
        write(target, ch -> writeFully(ch, ByteBuffer.wrap(content)));
    }

    /** {@code text} as UTF-8. */
    public static void writeString(Path target, String text) throws IOException {
        write(target, text.getBytes(StandardCharsets.UTF_8));
    }

    public static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    /**
     * Forces a file's content, or a directory's entries, to the disk. A directory that cannot be synced is skipped:
     * not every platform or file system lets one be opened and synced (Windows), and a rename is atomic without it.
     */
    public static void fsync(Path p) throws IOException {
        boolean directory = Files.isDirectory(p);
        try (FileChannel c = FileChannel.open(p, directory ? StandardOpenOption.READ : StandardOpenOption.WRITE)) {
            c.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            if (!directory) throw e;
        }
    }
}
