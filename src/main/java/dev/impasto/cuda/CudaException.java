package dev.impasto.cuda;

/**
 * A failed CUDA driver, cuBLASLt or libtorch call: names the call, the error code, its symbolic name and the
 * library's own description.
 */
public class CudaException extends RuntimeException {
    private final String call;
    private final int code;
    private final String errorName;

    public CudaException(String call, int code, String errorName, String description) {
        super(call + " failed: " + errorName + " (" + code + ")" + (description == null || description.isBlank() ? "" : ": " + description));
        this.call = call;
        this.code = code;
        this.errorName = errorName;
    }

    public CudaException(String message) {
        super(message);
        this.call = "";
        this.code = -1;
        this.errorName = "";
    }

    public CudaException(String message, Throwable cause) {
        super(message, cause);
        this.call = "";
        this.code = -1;
        this.errorName = "";
    }

    public String call() {
        return call;
    }

    public int code() {
        return code;
    }

    public String errorName() {
        return errorName;
    }
}
