package dev.impasto.quant;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * Turns a weight W[out, in] (floats on the host, e.g. decoded from a bf16 checkpoint tensor) into a
 * {@link LinearWeight} of the chosen {@link BaseFormat} on a backend: quantized on the CPU, then the packed parts
 * uploaded. Also the inverse view: the parts of a LinearWeight back into the quantizers' records, so the CPU
 * backend dequantizes with exactly the code that quantized.
 */
public final class WeightQuantizer {
    private WeightQuantizer() {}

    public static LinearWeight quantize(Backend be, float[] w, long out, long in, BaseFormat f) {
        if ((long) w.length != out * in) throw new IllegalArgumentException("weight has " + w.length + " values, [" + out + ", " + in + "] needs " + out * in);
        int n = Math.toIntExact(out), k = Math.toIntExact(in);
        return switch (f) {
            case BF16, F16, F32 -> new LinearWeight.Dense(be.fromFloats(w, f == BaseFormat.BF16 ? DType.BF16 : f == BaseFormat.F16 ? DType.F16 : DType.F32, out, in));
            case NF4, NF4_DQ -> {
                Nf4Quantized q = Nf4.quantize(w, f == BaseFormat.NF4_DQ);
                Tensor packed = bytes(be, q.packed());
                if (q.isNested()) yield nf4Nested(be, packed, q.nested(), q.blocksize(), out, in);
                yield new LinearWeight.Nf4(packed, floats(be, q.absmax()), null, null, 0, q.blocksize(), 0, out, in);
            }
            case INT8 -> {
                Int8Quantized q = Int8.quantize(w, n, k);
                yield new LinearWeight.Int8(be.fromBytes(MemorySegment.ofArray(q.q()), DType.I8, DType.I8, out, in), floats(be, q.scale()), out, in);
            }
            case INT4 -> {
                Int4Quantized q = Int4.quantize(w, n, k);
                yield new LinearWeight.Int4(bytes(be, q.packed()), floats(be, q.scale()), floats(be, q.min()), q.groupSize(), out, in);
            }
            case Q8_0, Q4_0, Q4_K -> {
                GgmlType t = switch (f) {
                    case Q8_0 -> GgmlType.Q8_0;
                    case Q4_0 -> GgmlType.Q4_0;
                    default -> GgmlType.Q4_K;
                };
                if (k % t.blockSize() != 0)
                    throw new IllegalArgumentException(f.id() + " needs rows that are a multiple of " + t.blockSize() + " values, the layer has " + k);
                yield new LinearWeight.Gguf(bytes(be, GgmlQuants.quantize(t, w)), t.id(), t.ggmlName(), out, in);
            }
        };
    }

    /** A double-quantized NF4 weight from its codes (already on {@code be}) and its compressed absmax (uploaded here). */
    public static LinearWeight.Nf4 nf4Nested(Backend be, Tensor packed, NestedAbsmax nest, int blocksize, long out, long in) {
        return new LinearWeight.Nf4(packed, bytes(be, nest.codes()), floats(be, nest.nestedAbsmax()), floats(be, nest.code()), nest.offset(), blocksize,
                nest.blocksize(), out, in);
    }

    private static Tensor bytes(Backend be, byte[] b) {
        return be.fromBytes(MemorySegment.ofArray(b), DType.U8, DType.U8, b.length);
    }

    private static Tensor floats(Backend be, float[] f) {
        return be.fromFloats(f, DType.F32, f.length);
    }

    /** The dense values of any quantized weight, computed on the host from its parts (the reference dequantizer). */
    public static float[] dequantize(Backend be, LinearWeight w) {
        return switch (w) {
            case LinearWeight.Dense d -> be.toFloats(d.w());
            case LinearWeight.Nf4 q -> {
                long numel = q.outFeatures() * q.inFeatures();
                NestedAbsmax nest = null;
                float[] absmax = null;
                if (q.doubleQuantized())
                    nest = new NestedAbsmax(be.toBytes(q.absmax()), be.toFloats(q.nestedAbsmax()), q.nestedOffset(), q.nestedBlocksize(),
                            be.toFloats(q.nestedCode()));
                else absmax = be.toFloats(q.absmax());
                yield Nf4.dequantize(new Nf4Quantized(be.toBytes(q.packed()), absmax, numel, q.blocksize(), nest));
            }
            case LinearWeight.Int8 q -> Int8.dequantize(new Int8Quantized(be.toBytes(q.q()), be.toFloats(q.scale()),
                    Math.toIntExact(q.outFeatures()), Math.toIntExact(q.inFeatures())));
            case LinearWeight.Int4 q -> Int4.dequantize(new Int4Quantized(be.toBytes(q.packed()), be.toFloats(q.scale()), be.toFloats(q.min()),
                    Math.toIntExact(q.outFeatures()), Math.toIntExact(q.inFeatures()), q.groupSize()));
            case LinearWeight.Gguf q -> {
                byte[] b = be.toBytes(q.blocks());
                yield GgmlQuants.dequantize(GgmlType.byId(q.ggmlType()), b, 0, q.outFeatures() * q.inFeatures());
            }
            case LinearWeight.Stacked s -> {
                float[] all = new float[Math.toIntExact(s.outFeatures() * s.inFeatures())];
                int off = 0;
                for (LinearWeight p : s.parts()) {
                    float[] part = dequantize(be, p);
                    System.arraycopy(part, 0, all, off, part.length);
                    off += part.length;
                }
                yield all;
            }
        };
    }
}
