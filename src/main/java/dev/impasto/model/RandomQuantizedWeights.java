package dev.impasto.model;

import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Random base weights directly in a quantized format, for benchmarks at full FLUX size: every byte pattern is a valid
 * NF4 / int8 / int4 code, so random codes with plausible scales are generated on the host (in parallel) and uploaded,
 * instead of quantizing 12 B random floats. Embedders and final layer stay dense (as in a quantized checkpoint).
 * Dense formats fall through to {@link RandomWeights}.
 */
public final class RandomQuantizedWeights implements WeightProvider {
    private final Backend be;
    private final BaseFormat format;
    private final RandomWeights dense;
    private final long seed;

    public RandomQuantizedWeights(Backend be, DType dtype, BaseFormat format, long seed) {
        this.be = be;
        this.format = format;
        this.seed = seed;
        this.dense = new RandomWeights(be, dtype, seed, 1.0);
    }

    @Override
    public BaseLinear linear(String key, long out, long in, boolean bias) {
        if (!format.quantized() || !CheckpointWeights.inBlocks(key)) return dense.linear(key, out, in, bias);
        Tensor b = null;
        if (bias) {
            b = be.empty(dense.dtype(), out);
            be.randn(b, dense.seedOf(key + ".bias"));
            be.axpby(b, 0.02, b, 0);
        }
        long n = out * in;
        double scale = 1 / Math.sqrt(in);
        LinearWeight w = switch (format) {
            case NF4, NF4_DQ -> new LinearWeight.Nf4(randomBytes(key, n / 2), uniform(key + ".absmax", (n + 63) / 64, 2.5 * scale, 3.0 * scale),
                    null, null, 0, 64, 0, out, in);
            case INT8 -> new LinearWeight.Int8(randomBytes(key, n), uniform(key + ".scale", out, 2.5 * scale / 127, 3 * scale / 127), out, in);
            case INT4 -> new LinearWeight.Int4(randomBytes(key, n / 2), uniform(key + ".scale", out * ((in + 127) / 128), 0.3 * scale, 0.4 * scale),
                    uniform(key + ".min", out * ((in + 127) / 128), -2.5 * scale, -2.0 * scale), 128, out, in);
            default -> throw new IllegalArgumentException("random " + format + " weights are not generated; use bf16, nf4, int8 or int4");
        };
        return new BaseLinear(w, b);
    }

    @Override
    public Tensor vector(String key, long n) {
        return dense.vector(key, n);
    }

    private Tensor randomBytes(String key, long n) {
        try (Arena a = Arena.ofShared()) { // filled by the parallel stream's threads
            MemorySegment host = a.allocate(n, 64);
            long chunk = 1 << 22;
            long base = dense.seedOf(key + ".codes") ^ seed;
            IntStream.range(0, (int) ((n + chunk - 1) / chunk)).parallel().forEach(c -> {
                SplittableRandom r = new SplittableRandom(base + c * 0x9E3779B97F4A7C15L);
                long off = c * chunk, end = Math.min(n, off + chunk);
                long i = off;
                for (; i + 8 <= end; i += 8) host.set(ValueLayout.JAVA_LONG_UNALIGNED, i, r.nextLong());
                for (; i < end; i++) host.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt());
            });
            DType t = format == BaseFormat.INT8 ? DType.I8 : DType.U8;
            return be.fromBytes(host, t, t, n); // same type: a plain copy, no per-element conversion
        }
    }

    private Tensor uniform(String key, long n, double lo, double hi) {
        Tensor t = be.empty(DType.F32, n);
        be.rand(t, dense.seedOf(key));
        be.axpby(t, hi - lo, t, 0);
        try (Tensor one = be.empty(DType.F32, n)) {
            be.fill(one, lo);
            be.axpby(t, 1, one, 1);
        }
        return t;
    }
}
