package dev.impasto.io.flux;

import dev.impasto.io.WeightFileException;

/** Tensors that are individually well-formed but do not fit together (parts of different dtypes, bad bnb state...). */
public class CheckpointLayoutException extends WeightFileException {
    public CheckpointLayoutException(String message) {
        super(message);
    }

    public CheckpointLayoutException(String message, Throwable cause) {
        super(message, cause);
    }
}
