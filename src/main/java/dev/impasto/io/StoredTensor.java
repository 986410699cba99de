package dev.impasto.io;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/** One tensor as a weight file stores it: a safetensors {@link TensorEntry} or a GGUF tensor. */
public interface StoredTensor {
    String name();

    /** PyTorch order (outermost dimension first). */
    long[] shape();

    /** The type as the file names it: "BF16", "F8_E4M3", "Q4_K", ... */
    String typeName();

    /** Bytes the tensor occupies in the file. */
    long byteSize();

    /** Read-only, bounds-checked view of the stored bytes. */
    MemorySegment data();

    /** The file it lives in (null for tensors made in memory). */
    Path file();

    default long numel() {
        return Shapes.numel(shape());
    }
}
