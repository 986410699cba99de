package dev.impasto.io;

import java.io.IOException;

/**
 * A weight file that cannot be read as it is: truncated, corrupt, or inconsistent. The message names the file, the
 * tensor or field at fault, and what to do about it. {@code impasto inspect} exits with status 2 on these.
 */
public class WeightFileException extends IOException {
    public WeightFileException(String message) {
        super(message);
    }

    public WeightFileException(String message, Throwable cause) {
        super(message, cause);
    }
}
