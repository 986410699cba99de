package dev.impasto.io.gguf;

import dev.impasto.io.WeightFileException;

/** A malformed GGUF file: the message names the file, the field or tensor, and the fix. */
public class GgufFormatException extends WeightFileException {
    public GgufFormatException(String message) {
        super(message);
    }
}
