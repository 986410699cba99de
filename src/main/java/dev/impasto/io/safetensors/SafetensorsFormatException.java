package dev.impasto.io.safetensors;

import dev.impasto.io.WeightFileException;

/** A malformed safetensors file: the message names the file, the tensor and the fix. */
public class SafetensorsFormatException extends WeightFileException {
    public SafetensorsFormatException(String message) {
        super(message);
    }

    public SafetensorsFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
