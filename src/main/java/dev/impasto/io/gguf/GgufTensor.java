package dev.impasto.io.gguf;

import dev.impasto.quant.GgmlType;

import dev.impasto.io.Shapes;
import dev.impasto.io.StoredTensor;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * A tensor of a GGUF file.
 *
 * @param type     the ggml type (never null: files with type numbers ggml does not define are rejected)
 * @param shape    PyTorch order, outermost first (the reverse of ggml's ne)
 * @param ne       ggml order, ne[0] innermost (contiguous)
 * @param offset   offset of the data from the start of the data section
 * @param data     read-only slice of exactly {@link #byteSize()} bytes: the raw blocks (for quantized types, rows of
 *                 ne[0]/blockSize blocks each)
 * @param file     the file
 */
public record GgufTensor(String name, GgmlType type, long[] shape, long[] ne, long offset, MemorySegment data, Path file)
        implements StoredTensor {

    public GgufTensor {
        shape = shape.clone();
        ne = ne.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public long[] ne() {
        return ne.clone();
    }

    @Override
    public String typeName() {
        return type.name();
    }

    @Override
    public long byteSize() {
        return data.byteSize();
    }

    /** Blocks of the type per row (ne[0] / blockSize). */
    public long blocksPerRow() {
        return ne.length == 0 ? 1 : ne[0] / type.blockSize();
    }

    @Override
    public String toString() {
        return name + " " + type + " " + Shapes.format(shape);
    }
}
