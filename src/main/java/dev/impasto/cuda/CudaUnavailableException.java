package dev.impasto.cuda;

/** No usable GPU: a library is missing or the driver reports no device. */
public final class CudaUnavailableException extends CudaException {
    public CudaUnavailableException(String message) {
        super(message);
    }
}
