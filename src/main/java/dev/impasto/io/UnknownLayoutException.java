package dev.impasto.io;

import java.io.IOException;

/**
 * A readable weight file (or folder) whose keys are not a layout impasto knows, for instance a Stable Diffusion
 * checkpoint handed to the FLUX loader. {@code impasto inspect} exits with status 3 on these.
 */
public class UnknownLayoutException extends IOException {
    public UnknownLayoutException(String message) {
        super(message);
    }
}
