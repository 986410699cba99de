package dev.impasto.io.flux;

import dev.impasto.io.Shapes;
import dev.impasto.io.TensorCodec;
import dev.impasto.io.TensorEntry;
import dev.impasto.quant.GgmlType;
import dev.impasto.io.gguf.GgufTensor;
import dev.impasto.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Where the data of one canonical (BFL-named) weight comes from, and how to assemble it. The loader switches on
 * the three kinds; none of them copies anything until asked.
 */
public sealed interface WeightSource {

    /** Canonical (BFL) shape, PyTorch order. */
    long[] shape();

    /** "BF16", "F8_E4M3", "NF4", "Q4_K", ... */
    String typeName();

    /** Bytes the weight occupies in the files (quantization state included). */
    long storedBytes();

    /** The file keys it is assembled from. */
    List<String> sourceKeys();

    /**
     * A dense tensor made of one or more stored tensors concatenated along {@code concatDim} (always 0: row blocks
     * such as diffusers' to_q | to_k | to_v making BFL's qkv), then, when {@code swapHalves}, with its two halves
     * along dim 0 exchanged (diffusers norm_out (scale, shift) -> BFL final_layer adaLN (shift, scale)).
     * All parts have the same dtype and the same trailing dimensions.
     */
    record Dense(List<TensorEntry> parts, int concatDim, boolean swapHalves) implements WeightSource {
        public Dense {
            parts = List.copyOf(parts);
            if (concatDim != 0) throw new IllegalArgumentException("only concatenation along dim 0 is supported");
        }

        /** A single stored tensor used as is. */
        public static Dense of(TensorEntry t) {
            return new Dense(List.of(t), 0, false);
        }

        /** The element type (throws for stored types impasto does not compute in, naming the tensor). */
        public DType dtype() {
            return parts.getFirst().dtype();
        }

        public boolean isSupported() {
            return parts.getFirst().isSupported();
        }

        @Override
        public String typeName() {
            return parts.getFirst().typeName();
        }

        @Override
        public long[] shape() {
            long[] s = parts.getFirst().shape();
            if (s.length == 0) return s;
            long rows = 0;
            for (TensorEntry p : parts) rows += p.dim(0);
            s[0] = rows;
            return s;
        }

        public long numel() {
            return Shapes.numel(shape());
        }

        /** Bytes of the assembled tensor. */
        public long byteSize() {
            long n = 0;
            for (TensorEntry p : parts) n += p.byteSize();
            return n;
        }

        @Override
        public long storedBytes() {
            return byteSize();
        }

        @Override
        public List<String> sourceKeys() {
            return parts.stream().map(TensorEntry::name).toList();
        }

        /** Whether the bytes can be used in place (one part, no swap): {@link #single()} is then the whole weight. */
        public boolean isSingle() {
            return parts.size() == 1 && !swapHalves;
        }

        /** The only part; IllegalStateException when the weight must be assembled (use {@link #copyTo}). */
        public TensorEntry single() {
            if (!isSingle()) throw new IllegalStateException(sourceKeys() + " must be assembled; use copyTo/materialize");
            return parts.getFirst();
        }

        /** Writes the assembled tensor (stored dtype, little-endian, row-major) into {@code dst} from offset 0. */
        public void copyTo(MemorySegment dst) {
            long total = byteSize();
            if (dst.byteSize() < total)
                throw new IndexOutOfBoundsException("destination holds " + dst.byteSize() + " bytes, " + total + " needed");
            long half = swapHalves ? total / 2 : 0;
            long streamPos = 0;
            for (TensorEntry p : parts) {
                MemorySegment src = p.data();
                long len = src.byteSize();
                // the stream [streamPos, streamPos+len) lands rotated by half: out = S[half:] + S[:half]
                long done = 0;
                while (done < len) {
                    long s = streamPos + done;
                    long destPos = s >= half ? s - half : s + (total - half);
                    long run = s >= half ? len - done : Math.min(len - done, half - s);
                    MemorySegment.copy(src, done, dst, destPos, run);
                    done += run;
                }
                streamPos += len;
            }
        }

        /** The assembled tensor in a new segment of {@code arena}. */
        public MemorySegment materialize(Arena arena) {
            MemorySegment m = arena.allocate(byteSize(), 16);
            copyTo(m);
            return m;
        }

        /** The assembled tensor as floats (small tensors: biases, norms, embedders). */
        public float[] toFloatArray() {
            try (Arena a = Arena.ofConfined()) {
                return TensorCodec.toFloats(materialize(a), dtype(), numel());
            }
        }

        static Dense assemble(String key, List<TensorEntry> parts, boolean swap) throws CheckpointLayoutException {
            TensorEntry first = parts.getFirst();
            for (TensorEntry p : parts) {
                if (!p.typeName().equals(first.typeName()))
                    throw new CheckpointLayoutException(key + " is assembled from " + names(parts) + ", which have different dtypes ("
                            + first.typeName() + " vs " + p.typeName() + "): the checkpoint is inconsistent; re-export it");
                long[] a = first.shape(), b = p.shape();
                boolean ok = a.length == b.length && a.length > 0;
                for (int i = 1; ok && i < a.length; i++) ok = a[i] == b[i];
                if (!ok && parts.size() > 1)
                    throw new CheckpointLayoutException(key + " is assembled from " + names(parts) + ", whose shapes "
                            + Shapes.format(a) + " and " + Shapes.format(b) + " cannot be stacked by rows: the checkpoint is inconsistent");
            }
            Dense d = new Dense(parts, 0, swap);
            if (swap && (first.rank() == 0 || d.shape()[0] % 2 != 0))
                throw new CheckpointLayoutException(key + " (" + names(parts) + ") must have an even first dimension to swap its "
                        + "(scale, shift) halves, but has shape " + Shapes.format(d.shape()) + ": the checkpoint is inconsistent");
            return d;
        }

        private static String names(List<TensorEntry> parts) {
            List<String> n = new ArrayList<>();
            for (TensorEntry p : parts) n.add(p.name());
            return String.join(" | ", n);
        }
    }

    /**
     * A bitsandbytes-NF4 weight: one part for BFL/Forge files, or (diffusers) one part per separately quantized
     * piece, stacked by rows in order (to_q | to_k | to_v [| proj_mlp]). Each part keeps its own absmax blocks, so
     * keep them as separate quantized pieces. {@code swapHalves} as for {@link Dense} (norm_out), applied after
     * dequantization.
     */
    record BnbNf4(List<Nf4Part> parts, boolean swapHalves) implements WeightSource {
        public BnbNf4 {
            parts = List.copyOf(parts);
        }

        @Override
        public long[] shape() {
            long[] s = parts.getFirst().shape();
            long rows = 0;
            for (Nf4Part p : parts) rows += p.shape()[0];
            s[0] = rows;
            return s;
        }

        @Override
        public String typeName() {
            return "NF4";
        }

        /** The dtype the weight had before quantization. */
        public DType originalDtype() {
            return parts.getFirst().state().dtype();
        }

        @Override
        public long storedBytes() {
            long n = 0;
            for (Nf4Part p : parts) {
                n += p.packed().byteSize() + p.absmax().byteSize() + p.quantMap().byteSize();
                n += p.nestedAbsmax().map(TensorEntry::byteSize).orElse(0L) + p.nestedQuantMap().map(TensorEntry::byteSize).orElse(0L);
            }
            return n;
        }

        @Override
        public List<String> sourceKeys() {
            return parts.stream().map(Nf4Part::key).toList();
        }

        static BnbNf4 assemble(String key, List<Nf4Part> parts, boolean swap) throws CheckpointLayoutException {
            long[] a = parts.getFirst().shape();
            for (Nf4Part p : parts) {
                long[] b = p.shape();
                boolean ok = a.length == b.length;
                for (int i = 1; ok && i < a.length; i++) ok = a[i] == b[i];
                if (!ok)
                    throw new CheckpointLayoutException(key + " is assembled from NF4 parts of shapes " + Shapes.format(a) + " and "
                            + Shapes.format(b) + ", which cannot be stacked by rows: the checkpoint is inconsistent");
            }
            BnbNf4 w = new BnbNf4(parts, swap);
            if (swap && w.shape()[0] % 2 != 0)
                throw new CheckpointLayoutException(key + " must have an even first dimension to swap its halves: the checkpoint is inconsistent");
            return w;
        }
    }

    /**
     * A GGUF-quantized weight (quantized types only: GGUF tensors stored as F32/F16/BF16 come as {@link Dense}).
     * {@code tensor.data()} holds the raw blocks, rows of {@code shape[last] / blockSize} blocks.
     */
    record Gguf(GgufTensor tensor, GgmlType ggmlType, long[] shape) implements WeightSource {
        public Gguf {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        @Override
        public String typeName() {
            return ggmlType.name();
        }

        @Override
        public long storedBytes() {
            return tensor.byteSize();
        }

        @Override
        public List<String> sourceKeys() {
            return List.of(tensor.name());
        }
    }
}
