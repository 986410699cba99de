package dev.impasto.lora;

import dev.impasto.io.WeightFileException;
import java.io.IOException;
import java.nio.file.Path;

/** A LoRA file that cannot be used as it is: the message names the file, the tensor key where there is one, and the problem. */
public final class LoraFileException extends IOException {
    private final transient Path file;

    public LoraFileException(Path file, String message) {
        super(file + ": " + message);
        this.file = file;
    }

    /** A fault the safetensors reader found; its message already names the file, the tensor and the fix. */
    public LoraFileException(Path file, WeightFileException cause) {
        super(cause.getMessage(), cause);
        this.file = file;
    }

    public Path file() {
        return file;
    }
}
