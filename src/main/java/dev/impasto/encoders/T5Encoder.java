package dev.impasto.encoders;

import dev.impasto.model.Scope;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * The T5 v1.1 encoder stack (transformers T5EncoderModel), inference only: token embedding (no scaling), per layer
 * x += O(attn(RMSNorm(x))) and x += wo(gelu_tanh(wi_0 h) * wi_1 h) with h = RMSNorm(x), final RMSNorm. Attention
 * scores are q k^T without 1/sqrt(d) plus the relative position bias of layer 0, shared by every layer. FLUX feeds
 * it prompts padded to 512 tokens with no attention mask and takes the last hidden state.
 *
 * <p>The linear layers may be quantized on load (int8, NF4: {@link BaseFormat}); the embedding table, norms and
 * relative bias stay in the compute type (the bias in F32).
 */
public final class T5Encoder implements AutoCloseable {
    public final T5Config config;
    public final Backend backend;
    public final DType dtype;
    private final Tensor embed, relBias, finalNorm;
    private final List<Layer> layers = new ArrayList<>();
    private final EncoderParameters params;
    /** The position bias [H, L, L] of the last sequence length seen (prompts are padded, so it is always the same). */
    private Tensor biasCache;
    private int biasLen = -1;

    private record Layer(Tensor attnNorm, LinearWeight q, LinearWeight k, LinearWeight v, LinearWeight o, Tensor ffNorm,
                         LinearWeight wi0, LinearWeight wi1, LinearWeight wo) {}

    private T5Encoder(T5Config c, Backend be, DType dt, EncoderWeights w, BaseFormat linearFormat) {
        this.config = c;
        this.backend = be;
        this.dtype = dt;
        this.params = new EncoderParameters(be, dt);
        try {
            embed = params.tensor(w, "shared.weight", EncoderWeights.Kind.EMBEDDING, c.vocab(), c.dModel());
            relBias = params.keep(w.tensor(be, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", EncoderWeights.Kind.EMBEDDING,
                    DType.F32, c.numBuckets(), c.heads()));
            for (int i = 0; i < c.layers(); i++) {
                String p = "encoder.block." + i + ".layer.";
                layers.add(new Layer(
                        params.norm(w, p + "0.layer_norm.weight", c.dModel()),
                        params.linear(w, p + "0.SelfAttention.q.weight", c.inner(), c.dModel(), linearFormat),
                        params.linear(w, p + "0.SelfAttention.k.weight", c.inner(), c.dModel(), linearFormat),
                        params.linear(w, p + "0.SelfAttention.v.weight", c.inner(), c.dModel(), linearFormat),
                        params.linear(w, p + "0.SelfAttention.o.weight", c.dModel(), c.inner(), linearFormat),
                        params.norm(w, p + "1.layer_norm.weight", c.dModel()),
                        params.linear(w, p + "1.DenseReluDense.wi_0.weight", c.dFf(), c.dModel(), linearFormat),
                        params.linear(w, p + "1.DenseReluDense.wi_1.weight", c.dFf(), c.dModel(), linearFormat),
                        params.linear(w, p + "1.DenseReluDense.wo.weight", c.dModel(), c.dFf(), linearFormat)));
            }
            finalNorm = params.norm(w, "encoder.final_layer_norm.weight", c.dModel());
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Builds the encoder from {@code weights}; linear layers stored as {@code linearFormat} (bf16/f32 = dense). */
    public static T5Encoder load(T5Config c, Backend be, DType dt, EncoderWeights weights, BaseFormat linearFormat) {
        return new T5Encoder(c, be, dt, weights, linearFormat);
    }

    /** Bytes of the weights on the backend. */
    public long weightBytes() {
        return params.bytes();
    }

    /**
     * T5's bidirectional relative position bucket of key position minus query position, computed as transformers
     * computes it in float32 (the log of the ratio, divided, scaled, truncated), so the buckets agree at the boundaries.
     */
    public static int bucket(int relative, int numBuckets, int maxDistance) {
        int half = numBuckets / 2;
        int ret = relative > 0 ? half : 0;
        int n = Math.abs(relative);
        int maxExact = half / 2;
        if (n < maxExact) return ret + n;
        float ratio = (float) n / (float) maxExact;
        float l = (float) Math.log(ratio);
        float scaled = l / (float) Math.log((double) maxDistance / maxExact) * (float) (half - maxExact);
        int large = maxExact + (int) scaled;
        return ret + Math.min(large, half - 1);
    }

    /** The relative position bias F32 [H, L, L] (bias[h, i, j] = table[bucket(j - i), h]). */
    private Tensor positionBias(int len) {
        if (biasLen == len) return biasCache;
        if (biasCache != null) biasCache.close();
        biasCache = null;
        double[] ids = new double[len * len];
        for (int i = 0; i < len; i++)
            for (int j = 0; j < len; j++) ids[i * len + j] = bucket(j - i, config.numBuckets(), config.maxDistance());
        Backend be = backend;
        Tensor bias = be.empty(DType.F32, config.heads(), len, len);
        try (Tensor idT = be.fromDoubles(ids, DType.I32, (long) len * len); Tensor byPair = be.empty(DType.F32, (long) len * len, config.heads())) {
            be.embedding(byPair, idT, relBias);
            be.transpose(bias.reshape(1, config.heads(), (long) len * len), byPair.reshape(1, (long) len * len, config.heads()));
        } catch (RuntimeException e) {
            bias.close();
            throw e;
        }
        biasCache = bias;
        biasLen = len;
        return bias;
    }

    /** Last hidden state [B, L, dModel] for token ids [B][L] (all rows the same length). The caller owns the result. */
    public Tensor forward(int[][] ids) {
        int batch = ids.length, len = ids[0].length;
        double[] flat = new double[batch * len];
        for (int b = 0; b < batch; b++) {
            if (ids[b].length != len) throw new IllegalArgumentException("T5: all prompts of a batch must have the same length");
            for (int i = 0; i < len; i++) {
                int id = ids[b][i];
                if (id < 0 || id >= config.vocab())
                    throw new IllegalArgumentException("T5: token id " + id + " is outside the vocabulary of " + config.vocab() + " (wrong tokenizer for these weights?)");
                flat[b * len + i] = id;
            }
        }
        Backend be = backend;
        long rows = (long) batch * len;
        int d = config.dModel(), inner = config.inner();
        Tensor x = be.empty(dtype, batch, len, d);
        try {
            try (Tensor idT = be.fromDoubles(flat, DType.I32, rows)) {
                be.embedding(x.reshape(rows, d), idT, embed);
            }
            Tensor bias = positionBias(len);
            for (Layer l : layers) {
                try (Scope s = new Scope(be)) {
                    Tensor h = s.empty(dtype, rows, d);
                    be.rmsNorm(h, x.reshape(rows, d), l.attnNorm(), config.eps());
                    Tensor q = s.empty(dtype, rows, inner), k = s.empty(dtype, rows, inner), v = s.empty(dtype, rows, inner);
                    be.linear(q, h, l.q(), null, 0);
                    be.linear(k, h, l.k(), null, 0);
                    be.linear(v, h, l.v(), null, 0);
                    Tensor a = s.empty(dtype, rows, inner);
                    be.attentionInference(a, q, k, v, batch, config.heads(), 1.0, bias, false);
                    be.linear(x.reshape(rows, d), a, l.o(), null, 1);  // x += O a
                    be.rmsNorm(h, x.reshape(rows, d), l.ffNorm(), config.eps());
                    Tensor g = s.empty(dtype, rows, config.dFf()), u = s.empty(dtype, rows, config.dFf());
                    be.linear(g, h, l.wi0(), null, 0);
                    be.gelu(g, g);
                    be.linear(u, h, l.wi1(), null, 0);
                    be.mul(g, g, u);
                    be.linear(x.reshape(rows, d), g, l.wo(), null, 1);  // x += wo (gelu(wi_0 h) * wi_1 h)
                }
            }
            Tensor out = be.empty(dtype, batch, len, d);
            be.rmsNorm(out.reshape(rows, d), x.reshape(rows, d), finalNorm, config.eps());
            return out;
        } finally {
            x.close();
        }
    }

    @Override
    public void close() {
        if (biasCache != null) biasCache.close();
        biasCache = null;
        params.close();
    }
}
