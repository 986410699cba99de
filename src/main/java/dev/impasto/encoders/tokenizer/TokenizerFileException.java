package dev.impasto.encoders.tokenizer;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A tokenizer file that is missing, unreadable or not what it claims to be. The message names the file and what
 * impasto expected to find there, so that a user can fix the model folder without reading code.
 */
public final class TokenizerFileException extends IOException {
    private final Path path;

    public TokenizerFileException(Path path, String problem) {
        super(path + ": " + problem);
        this.path = path;
    }

    public TokenizerFileException(Path path, String problem, Throwable cause) {
        super(path + ": " + problem, cause);
        this.path = path;
    }

    /** The file (or folder) the problem is about. */
    public Path path() {
        return path;
    }
}
