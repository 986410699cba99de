package dev.impasto.encoders;

import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import dev.impasto.util.Closeables;
import java.util.ArrayList;
import java.util.List;

/**
 * The weights one encoder loads onto its backend and owns: every piece loaded through here is kept, counted by
 * {@link #bytes} and closed (last first) by {@link #close}. The encoders (T5, both CLIP towers, the autoencoder) load
 * through one of these instead of each keeping its own list.
 */
final class EncoderParameters implements AutoCloseable {
    final Backend backend;
    final DType dtype;
    private final List<AutoCloseable> owned = new ArrayList<>();

    EncoderParameters(Backend backend, DType dtype) {
        this.backend = backend;
        this.dtype = dtype;
    }

    Tensor keep(Tensor t) {
        owned.add(t);
        return t;
    }

    /** The tensor {@code key} of exactly {@code shape}, in the encoder's dtype. */
    Tensor tensor(EncoderWeights w, String key, EncoderWeights.Kind kind, long... shape) {
        return keep(w.tensor(backend, key, kind, dtype, shape));
    }

    Tensor norm(EncoderWeights w, String key, long n) {
        return tensor(w, key, EncoderWeights.Kind.NORM, n);
    }

    Tensor bias(EncoderWeights w, String key, long n) {
        return tensor(w, key, EncoderWeights.Kind.BIAS, n);
    }

    /** The linear weight {@code key} [out, in] stored as {@code format}. */
    LinearWeight linear(EncoderWeights w, String key, long out, long in, BaseFormat format) {
        LinearWeight l = w.linear(backend, key, out, in, dtype, format);
        owned.add(l);
        return l;
    }

    /** Bytes of the weights on the backend. */
    long bytes() {
        long b = 0;
        for (AutoCloseable o : owned) {
            if (o instanceof Tensor t) b += t.numel() * t.dtype().byteSize();
            else if (o instanceof LinearWeight l) b += l.bytes();
        }
        return b;
    }

    @Override
    public void close() {
        Closeables.closeReversed(owned);
    }
}
