package dev.impasto.tensor;

import java.util.List;

/**
 * A frozen base weight W[out, in] of a linear layer, in whatever storage format it was loaded as. The backend
 * computes y = x W^T with it ({@link Backend#linear}) and dx = dy W ({@link Backend#linearInputGrad}); base weights are
 * never trained, so there is no weight gradient. Every part is a tensor of the backend that computes with it.
 */
public sealed interface LinearWeight extends AutoCloseable {
    long outFeatures();

    long inFeatures();

    /** Short name of the storage format, as printed in memory tables ("bf16", "nf4", "int8", ...). */
    String format();

    /** Bytes the parts occupy. */
    long bytes();

    @Override
    void close();

    private static long bytesOf(Tensor... ts) {
        long b = 0;
        for (Tensor t : ts) if (t != null) b += t.numel() * t.dtype().byteSize();
        return b;
    }

    private static void closeAll(Tensor... ts) {
        for (Tensor t : ts) if (t != null) t.close();
    }

    /** Plain weight [out, in] (BF16/F16/F32; on the CPU any float type). */
    record Dense(Tensor w) implements LinearWeight {
        public Dense {
            if (w.rank() != 2) throw new IllegalArgumentException("dense weight must be [out, in], got " + w);
        }

        public long outFeatures() { return w.dim(0); }
        public long inFeatures() { return w.dim(1); }
        public String format() { return w.dtype().name().toLowerCase(java.util.Locale.ROOT); }
        public long bytes() { return bytesOf(w); }
        public void close() { w.close(); }
    }

    /**
     * bitsandbytes NF4: blocks of {@code blocksize} consecutive elements of the row-major weight, one absmax each,
     * element 2j in the high nibble and 2j+1 in the low nibble of packed byte j.
     *
     * <p>Plain form: {@code absmax} is F32[blocks]. Double-quantized form: {@code absmax} is U8[blocks] codes into
     * {@code nestedCode} (F32[256], the signed dynamic map), scaled per {@code nestedBlocksize} codes by
     * {@code nestedAbsmax} (F32) and shifted by {@code nestedOffset}: absmax = nestedCode[q] * nestedAbsmax[b / 256] + offset.
     */
    record Nf4(Tensor packed, Tensor absmax, Tensor nestedAbsmax, Tensor nestedCode, float nestedOffset,
               int blocksize, int nestedBlocksize, long outFeatures, long inFeatures) implements LinearWeight {
        public boolean doubleQuantized() { return nestedAbsmax != null; }
        public String format() { return "nf4"; }
        public long bytes() { return bytesOf(packed, absmax, nestedAbsmax, nestedCode); }
        public void close() { closeAll(packed, absmax, nestedAbsmax, nestedCode); }
    }

    /** Symmetric int8 per output channel: W[n, k] = q[n, k] * scale[n]. */
    record Int8(Tensor q, Tensor scale, long outFeatures, long inFeatures) implements LinearWeight {
        public String format() { return "int8"; }
        public long bytes() { return bytesOf(q, scale); }
        public void close() { closeAll(q, scale); }
    }

    /**
     * Asymmetric int4 in groups of {@code groupSize} along the input dimension: W = min[g] + q * scale[g], with
     * g = n * groupsPerRow + k / groupSize; two codes per byte, element 2j in the high nibble.
     */
    record Int4(Tensor packed, Tensor scale, Tensor min, int groupSize, long outFeatures, long inFeatures) implements LinearWeight {
        public long groupsPerRow() { return (inFeatures + groupSize - 1) / groupSize; }
        public String format() { return "int4"; }
        public long bytes() { return bytesOf(packed, scale, min); }
        public void close() { closeAll(packed, scale, min); }
    }

    /** GGUF block-quantized rows (ggml type id {@code ggmlType}: 8 = Q8_0, 2 = Q4_0, 12 = Q4_K), raw blocks as U8. */
    record Gguf(Tensor blocks, int ggmlType, String typeName, long outFeatures, long inFeatures) implements LinearWeight {
        public String format() { return typeName.toLowerCase(java.util.Locale.ROOT); }
        public long bytes() { return bytesOf(blocks); }
        public void close() { closeAll(blocks); }
    }

    /** Several weights stacked by output rows (e.g. separately quantized q, k, v of a diffusers NF4 file). */
    record Stacked(List<LinearWeight> parts) implements LinearWeight {
        public Stacked {
            parts = List.copyOf(parts);
            if (parts.isEmpty()) throw new IllegalArgumentException("empty stack");
            long k = parts.getFirst().inFeatures();
            for (LinearWeight p : parts)
                if (p.inFeatures() != k) throw new IllegalArgumentException("stacked parts differ in input features");
        }

        public long outFeatures() { return parts.stream().mapToLong(LinearWeight::outFeatures).sum(); }
        public long inFeatures() { return parts.getFirst().inFeatures(); }
        public String format() { return parts.getFirst().format(); }
        public long bytes() { return parts.stream().mapToLong(LinearWeight::bytes).sum(); }
        public void close() { parts.forEach(LinearWeight::close); }
    }
}
