package dev.impasto.pipeline;

/** A failure a user can act on: the message names the file or field at fault and what to do about it. */
public class PipelineException extends RuntimeException {
    public PipelineException(String message) {
        super(message);
    }

    public PipelineException(String message, Throwable cause) {
        super(message, cause);
    }
}
