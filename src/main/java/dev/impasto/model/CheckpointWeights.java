package dev.impasto.model;

import dev.impasto.io.TensorEntry;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.io.flux.Nf4Part;
import dev.impasto.io.flux.WeightSource;
import dev.impasto.quant.BaseFormat;
import dev.impasto.quant.GgmlQuants;
import dev.impasto.quant.GgmlType;
import dev.impasto.quant.Nf4;
import dev.impasto.quant.Nf4Quantized;
import dev.impasto.quant.NestedAbsmax;
import dev.impasto.quant.WeightQuantizer;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import dev.impasto.util.ProgressBar;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Base weights from a FLUX checkpoint on disk, brought to the backend tensor by tensor in the requested
 * {@link BaseFormat}: a bf16 checkpoint is quantized to NF4/int8/int4 on the way (one tensor on the host at a time),
 * prequantized bitsandbytes-NF4 and GGUF Q8_0/Q4_0/Q4_K blocks are uploaded as they are, anything else is
 * dequantized on the host first. The embedders and the final layer stay dense (as GGUF files keep them) unless
 * {@code quantizeEmbedders} is set.
 */
public final class CheckpointWeights implements WeightProvider {
    private final FluxCheckpoint ckpt;
    private final Backend be;
    private final DType dense;
    private final BaseFormat format;
    private final boolean quantizeEmbedders;
    private final ProgressBar progress;
    private long bytesLoaded;

    public CheckpointWeights(FluxCheckpoint ckpt, Backend be, DType computeType, BaseFormat format, boolean quantizeEmbedders, ProgressBar progress) {
        this.ckpt = ckpt;
        this.be = be;
        this.dense = computeType;
        this.format = format;
        this.quantizeEmbedders = quantizeEmbedders;
        this.progress = progress;
    }

    static boolean inBlocks(String key) {
        return key.startsWith("double_blocks.") || key.startsWith("single_blocks.");
    }

    @Override
    public BaseLinear linear(String key, long out, long in, boolean bias) {
        WeightSource ws = ckpt.weight(key + ".weight");
        check(key + ".weight", ws.shape(), out, in);
        boolean quantize = format.quantized() && (quantizeEmbedders || inBlocks(key));
        LinearWeight w;
        try {
            w = switch (ws) {
                case WeightSource.Dense d -> denseSource(d, out, in, quantize ? format : denseFormat());
                case WeightSource.BnbNf4 n -> n.swapHalves() ? WeightQuantizer.quantize(be, swap(nf4Floats(n), out, in), out, in, quantize ? format : denseFormat())
                        : nf4(n, out, in, quantize);
                case WeightSource.Gguf g -> gguf(g, out, in, quantize);
            };
        } catch (IllegalArgumentException e) { // e.g. a NaN in the file: say which tensor
            throw new IllegalArgumentException(key + ".weight: " + e.getMessage(), e);
        }
        Tensor b = null;
        if (bias) {
            WeightSource bs = ckpt.weight(key + ".bias");
            if (!(bs instanceof WeightSource.Dense bd)) throw new IllegalArgumentException(key + ".bias is quantized: unsupported layout");
            check(key + ".bias", bs.shape(), out);
            b = vectorOf(bd, out);
        }
        tick(key);
        release(ws);
        return new BaseLinear(w, b);
    }

    private BaseFormat denseFormat() {
        return switch (dense) {
            case F32, F64 -> BaseFormat.F32;
            case F16 -> BaseFormat.F16;
            default -> BaseFormat.BF16;
        };
    }

    @Override
    public Tensor vector(String key, long n) {
        WeightSource ws = ckpt.weight(key);
        if (!(ws instanceof WeightSource.Dense d)) throw new IllegalArgumentException(key + " is quantized: unsupported layout");
        check(key, ws.shape(), n);
        return vectorOf(d, n);
    }

    private Tensor vectorOf(WeightSource.Dense d, long n) {
        float[] v = d.toFloatArray();
        if (d.swapHalves()) v = swap(v, n, 1);
        return be.fromFloats(v, dense, n);
    }

    /** The weight is on the backend now: its file pages need not stay resident (a CPU backend copies too). */
    private static void release(WeightSource ws) {
        switch (ws) {
            case WeightSource.Dense d -> d.parts().forEach(p -> dev.impasto.io.PageRelease.release(p.data()));
            case WeightSource.BnbNf4 n -> n.parts().forEach(p -> dev.impasto.io.PageRelease.release(p.packed().data()));
            case WeightSource.Gguf g -> dev.impasto.io.PageRelease.release(g.tensor().data());
        }
    }

    private void tick(String key) {
        if (progress != null) {
            progress.step(1);
            progress.status(key);
        }
    }

    public long bytesLoaded() {
        return bytesLoaded;
    }

    private LinearWeight denseSource(WeightSource.Dense d, long out, long in, BaseFormat f) {
        bytesLoaded += d.storedBytes();
        // the common case, bf16 file -> bf16 weights: raw bytes straight to the device, no float round trip
        if (!f.quantized() && d.isSingle() && !d.swapHalves() && d.dtype() == dense && f == denseFormat())
            return new LinearWeight.Dense(be.fromBytes(d.single().data(), d.dtype(), dense, out, in));
        // NF4 on a GPU: the file's bytes go up as they are and the device quantizes (bit-identical to the host quantizer,
        // ~10x faster than converting and quantizing 12 B values on the host)
        if ((f == BaseFormat.NF4 || f == BaseFormat.NF4_DQ) && be.isGpu() && d.isSingle() && !d.swapHalves()
                && (d.dtype() == DType.BF16 || d.dtype() == DType.F16 || d.dtype() == DType.F32)) {
            try (Tensor raw = be.fromBytes(d.single().data(), d.dtype(), d.dtype(), out, in)) {
                return be.quantizeNf4(raw, f == BaseFormat.NF4_DQ);
            }
        }
        float[] v = d.toFloatArray();
        if (d.swapHalves()) v = swap(v, out, in);
        return WeightQuantizer.quantize(be, v, out, in, f);
    }

    /** Prequantized NF4: uploaded as is when NF4 is what was asked for, else dequantized and re-stored. */
    private LinearWeight nf4(WeightSource.BnbNf4 n, long out, long in, boolean quantize) {
        if (!quantize || (format != BaseFormat.NF4 && format != BaseFormat.NF4_DQ))
            return WeightQuantizer.quantize(be, nf4Floats(n), out, in, quantize ? format : denseFormat());
        List<LinearWeight> parts = new ArrayList<>();
        for (Nf4Part p : n.parts()) {
            if (!Nf4.matchesCode(p.quantMap().toFloatArray()))
                throw new IllegalArgumentException(p.key() + ": its quant_map is not the NF4 code book");
            bytesLoaded += p.packed().byteSize() + p.absmax().byteSize();
            long po = p.shape()[0], pi = p.shape().length > 1 ? p.shape()[1] : 1;
            Tensor packed = be.fromBytes(p.packed().data(), DType.U8, DType.U8, p.packed().numel());
            if (p.state().nested()) {
                parts.add(new LinearWeight.Nf4(packed, be.fromBytes(p.absmax().data(), DType.U8, DType.U8, p.absmax().numel()),
                        be.fromFloats(p.nestedAbsmax().orElseThrow().toFloatArray(), DType.F32, p.nestedAbsmax().get().numel()),
                        be.fromFloats(p.nestedQuantMap().orElseThrow().toFloatArray(), DType.F32, 256), p.state().nestedOffset(),
                        p.state().blocksize(), p.state().nestedBlocksize(), po, pi));
            } else {
                parts.add(new LinearWeight.Nf4(packed, be.fromFloats(p.absmax().toFloatArray(), DType.F32, p.absmax().numel()), null, null, 0,
                        p.state().blocksize(), 0, po, pi));
            }
        }
        return parts.size() == 1 ? parts.getFirst() : new LinearWeight.Stacked(parts);
    }

    private static float[] nf4Floats(WeightSource.BnbNf4 n) {
        List<float[]> parts = new ArrayList<>();
        for (Nf4Part p : n.parts()) {
            NestedAbsmax nest = null;
            float[] absmax = null;
            if (p.state().nested())
                nest = new NestedAbsmax(bytes(p.absmax()), p.nestedAbsmax().orElseThrow().toFloatArray(), p.state().nestedOffset(),
                        p.state().nestedBlocksize(), p.nestedQuantMap().orElseThrow().toFloatArray());
            else absmax = p.absmax().toFloatArray();
            parts.add(Nf4.dequantize(new Nf4Quantized(bytes(p.packed()), absmax, p.state().numel(), p.state().blocksize(), nest)));
        }
        return concat(parts);
    }

    private LinearWeight gguf(WeightSource.Gguf g, long out, long in, boolean quantize) {
        GgmlType t = g.ggmlType();
        bytesLoaded += g.storedBytes();
        boolean native4gpu = t == GgmlType.Q8_0 || t == GgmlType.Q4_0 || t == GgmlType.Q4_K;
        if (quantize && native4gpu && format.id().equals(t.ggmlName().toLowerCase(java.util.Locale.ROOT)))
            return new LinearWeight.Gguf(be.fromBytes(g.tensor().data(), DType.U8, DType.U8, g.tensor().data().byteSize()), t.id(), t.ggmlName(), out, in);
        if (quantize && native4gpu && format == BaseFormat.BF16) // asked for bf16 but the file is GGUF: keep the file's blocks
            return new LinearWeight.Gguf(be.fromBytes(g.tensor().data(), DType.U8, DType.U8, g.tensor().data().byteSize()), t.id(), t.ggmlName(), out, in);
        float[] v = GgmlQuants.dequantize(t, g.tensor().data(), out * in);
        return WeightQuantizer.quantize(be, v, out, in, quantize ? format : denseFormat());
    }

    private static byte[] bytes(TensorEntry e) {
        return e.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
    }

    private static float[] concat(List<float[]> parts) {
        int n = parts.stream().mapToInt(p -> p.length).sum();
        float[] out = new float[n];
        int off = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, out, off, p.length);
            off += p.length;
        }
        return out;
    }

    /** Exchanges the two halves along dim 0 (diffusers' norm_out (scale, shift) -> BFL (shift, scale)). */
    static float[] swap(float[] v, long rows, long cols) {
        int half = (int) (rows / 2 * cols);
        float[] out = new float[v.length];
        System.arraycopy(v, half, out, 0, v.length - half);
        System.arraycopy(v, 0, out, v.length - half, half);
        return out;
    }

    private static void check(String key, long[] shape, long... want) {
        long[] s = shape.length == 1 && want.length == 2 && want[1] == 1 ? new long[] {shape[0], 1} : shape;
        if (!Arrays.equals(s, want))
            throw new IllegalArgumentException("checkpoint tensor " + key + " has shape " + Arrays.toString(shape) + ", the model needs "
                    + Arrays.toString(want) + ": the checkpoint does not match the chosen architecture");
    }
}
