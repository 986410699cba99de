package dev.impasto.encoders;

import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;

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
    private final EncoderParameters params;
    private final Tensor tokenEmbed, posEmbed, finalW, finalB;
    private final ClipEncoderLayers layers;

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
        this.params = new EncoderParameters(be, dt);
        try {
            String e = "text_model.embeddings.";
            tokenEmbed = params.tensor(w, e + "token_embedding.weight", EncoderWeights.Kind.EMBEDDING, c.vocab(), c.hidden());
            posEmbed = params.tensor(w, e + "position_embedding.weight", EncoderWeights.Kind.EMBEDDING, c.maxPositions(), c.hidden());
            layers = new ClipEncoderLayers(params, w, "text_model.encoder.layers.", c.layers(), c.hidden(), c.intermediate(), c.heads(), c.eps(), f);
            finalW = params.norm(w, "text_model.final_layer_norm.weight", c.hidden());
            finalB = params.bias(w, "text_model.final_layer_norm.bias", c.hidden());
        } catch (RuntimeException ex) {
            close();
            throw ex;
        }
    }

    public static ClipTextEncoder load(ClipConfig c, Backend be, DType dt, EncoderWeights weights, BaseFormat linearFormat) {
        return new ClipTextEncoder(c, be, dt, weights, linearFormat);
    }

    public long weightBytes() {
        return params.bytes();
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
            layers.forward(be, dtype, x, batch, true);
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
        params.close();
    }
}
