package dev.impasto.encoders;

import dev.impasto.model.Scope;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import dev.impasto.util.Closeables;
import java.util.ArrayList;
import java.util.List;

/**
 * CLIP's text transformer (transformers CLIPTextModel), inference only: token + position embeddings; per layer
 * x += out_proj(causal_attn(LN1(x))) and x += fc2(quick_gelu(fc1(LN2(x)))); final LayerNorm. The pooled output is
 * the final hidden state at the end-of-text token (FLUX's 768-wide vector y). No text projection: FLUX uses
 * CLIPTextModel's pooler_output.
 */
public final class ClipTextEncoder implements AutoCloseable {
    public final ClipConfig config;
    public final Backend backend;
    public final DType dtype;
    private final Tensor tokenEmbed, posEmbed, finalW, finalB;
    private final List<Layer> layers = new ArrayList<>();
    private final List<AutoCloseable> owned = new ArrayList<>();

    private record Lin(LinearWeight w, Tensor b) {}

    private record Layer(Tensor ln1w, Tensor ln1b, Lin q, Lin k, Lin v, Lin o, Tensor ln2w, Tensor ln2b, Lin fc1, Lin fc2) {}

    /** Last hidden state [B, L, hidden] and pooled output [B, hidden]; the caller closes both. */
    public record Output(Tensor hidden, Tensor pooled) implements AutoCloseable {
        @Override
        public void close() {
            hidden.close();
            pooled.close();
        }
    }

    private ClipTextEncoder(ClipConfig c, Backend be, DType dt, EncoderWeights w, BaseFormat f) {
        this.config = c;
        this.backend = be;
        this.dtype = dt;
        try {
            String e = "text_model.embeddings.";
            tokenEmbed = keep(w.tensor(be, e + "token_embedding.weight", EncoderWeights.Kind.EMBEDDING, dt, c.vocab(), c.hidden()));
            posEmbed = keep(w.tensor(be, e + "position_embedding.weight", EncoderWeights.Kind.EMBEDDING, dt, c.maxPositions(), c.hidden()));
            int h = c.hidden(), m = c.intermediate();
            for (int i = 0; i < c.layers(); i++) {
                String p = "text_model.encoder.layers." + i + ".";
                layers.add(new Layer(norm(w, p + "layer_norm1.weight", h), bias(w, p + "layer_norm1.bias", h),
                        lin(w, p + "self_attn.q_proj", h, h, f), lin(w, p + "self_attn.k_proj", h, h, f),
                        lin(w, p + "self_attn.v_proj", h, h, f), lin(w, p + "self_attn.out_proj", h, h, f),
                        norm(w, p + "layer_norm2.weight", h), bias(w, p + "layer_norm2.bias", h),
                        lin(w, p + "mlp.fc1", m, h, f), lin(w, p + "mlp.fc2", h, m, f)));
            }
            finalW = norm(w, "text_model.final_layer_norm.weight", h);
            finalB = bias(w, "text_model.final_layer_norm.bias", h);
        } catch (RuntimeException ex) {
            close();
            throw ex;
        }
    }

    public static ClipTextEncoder load(ClipConfig c, Backend be, DType dt, EncoderWeights weights, BaseFormat linearFormat) {
        return new ClipTextEncoder(c, be, dt, weights, linearFormat);
    }

    private Tensor keep(Tensor t) {
        owned.add(t);
        return t;
    }

    private Tensor norm(EncoderWeights w, String key, long n) {
        return keep(w.tensor(backend, key, EncoderWeights.Kind.NORM, dtype, n));
    }

    private Tensor bias(EncoderWeights w, String key, long n) {
        return keep(w.tensor(backend, key, EncoderWeights.Kind.BIAS, dtype, n));
    }

    private Lin lin(EncoderWeights w, String key, long out, long in, BaseFormat f) {
        LinearWeight lw = w.linear(backend, key + ".weight", out, in, dtype, f);
        owned.add(lw);
        return new Lin(lw, bias(w, key + ".bias", out));
    }

    public long weightBytes() {
        long b = 0;
        for (AutoCloseable o : owned) {
            if (o instanceof Tensor t) b += t.numel() * t.dtype().byteSize();
            else if (o instanceof LinearWeight l) b += l.bytes();
        }
        return b;
    }

    /**
     * Runs token ids [B][L] (L <= maxPositions, padded as the tokenizer pads) and pools row {@code pooledIndex[b]} of
     * each prompt (the first end-of-text token: {@link dev.impasto.encoders.tokenizer.ClipTokenizer#pooledIndex}).
     */
    public Output forward(int[][] ids, int[] pooledIndex) {
        int batch = ids.length, len = ids[0].length;
        if (len > config.maxPositions()) throw new IllegalArgumentException("CLIP takes at most " + config.maxPositions() + " tokens, got " + len);
        double[] flat = new double[batch * len];
        for (int b = 0; b < batch; b++) {
            if (ids[b].length != len) throw new IllegalArgumentException("CLIP: all prompts of a batch must have the same length");
            if (pooledIndex[b] < 0 || pooledIndex[b] >= len) throw new IllegalArgumentException("CLIP: pooled index " + pooledIndex[b] + " outside the prompt");
            for (int i = 0; i < len; i++) {
                int id = ids[b][i];
                if (id < 0 || id >= config.vocab())
                    throw new IllegalArgumentException("CLIP: token id " + id + " is outside the vocabulary of " + config.vocab() + " (wrong tokenizer for these weights?)");
                flat[b * len + i] = id;
            }
        }
        Backend be = backend;
        long rows = (long) batch * len;
        int h = config.hidden();
        Tensor x = be.empty(dtype, rows, h);
        try {
            try (Tensor idT = be.fromDoubles(flat, DType.I32, rows)) {
                be.embedding(x, idT, tokenEmbed);
            }
            for (int b = 0; b < batch; b++) {
                Tensor xb = x.rows((long) b * len, (long) (b + 1) * len);
                be.add(xb, xb, posEmbed.rows(0, len));
            }
            double scale = 1 / Math.sqrt(config.headDim());
            for (Layer l : layers) {
                try (Scope s = new Scope(be)) {
                    Tensor n = s.empty(dtype, rows, h);
                    be.layerNorm(n, x, l.ln1w(), l.ln1b(), config.eps());
                    Tensor q = s.empty(dtype, rows, h), k = s.empty(dtype, rows, h), v = s.empty(dtype, rows, h), a = s.empty(dtype, rows, h);
                    be.linear(q, n, l.q().w(), l.q().b(), 0);
                    be.linear(k, n, l.k().w(), l.k().b(), 0);
                    be.linear(v, n, l.v().w(), l.v().b(), 0);
                    be.attentionInference(a, q, k, v, batch, config.heads(), scale, null, true);
                    be.linear(x, a, l.o().w(), l.o().b(), 1);
                    be.layerNorm(n, x, l.ln2w(), l.ln2b(), config.eps());
                    Tensor f = s.empty(dtype, rows, config.intermediate());
                    be.linear(f, n, l.fc1().w(), l.fc1().b(), 0);
                    be.quickGelu(f, f);
                    be.linear(x, f, l.fc2().w(), l.fc2().b(), 1);
                }
            }
            Tensor hidden = be.empty(dtype, batch, len, h);
            Tensor pooled = be.empty(dtype, batch, h);
            be.layerNorm(hidden.reshape(rows, h), x, finalW, finalB, config.eps());
            Tensor hm = hidden.reshape(rows, h);
            for (int b = 0; b < batch; b++) {
                long r = (long) b * len + pooledIndex[b];
                be.copy(pooled.rows(b, b + 1), hm.rows(r, r + 1));
            }
            return new Output(hidden, pooled);
        } finally {
            x.close();
        }
    }

    @Override
    public void close() {
        Closeables.closeReversed(owned);
    }
}
