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
 * transformers' CLIPEncoder, the layer stack both CLIP towers run: per layer x += out_proj(attn(LN1(x))) and
 * x += fc2(quick_gelu(fc1(LN2(x)))), pre-LayerNorm, attention scaled by 1/sqrt(head dim). The text tower's attention is
 * causal, the vision tower's is not; nothing else differs.
 */
final class ClipEncoderLayers {
    private record Lin(LinearWeight w, Tensor b) {}

    private record Layer(Tensor ln1w, Tensor ln1b, Lin q, Lin k, Lin v, Lin o, Tensor ln2w, Tensor ln2b, Lin fc1, Lin fc2) {}

    private final List<Layer> layers = new ArrayList<>();
    private final int hidden, intermediate, heads;
    private final double eps;

    /** Loads {@code count} layers named {@code prefix + i + "."} (e.g. "text_model.encoder.layers.") into {@code p}. */
    ClipEncoderLayers(EncoderParameters p, EncoderWeights w, String prefix, int count, int hidden, int intermediate, int heads, double eps,
                      BaseFormat f) {
        this.hidden = hidden;
        this.intermediate = intermediate;
        this.heads = heads;
        this.eps = eps;
        for (int i = 0; i < count; i++) {
            String k = prefix + i + ".";
            layers.add(new Layer(p.norm(w, k + "layer_norm1.weight", hidden), p.bias(w, k + "layer_norm1.bias", hidden),
                    lin(p, w, k + "self_attn.q_proj", hidden, hidden, f), lin(p, w, k + "self_attn.k_proj", hidden, hidden, f),
                    lin(p, w, k + "self_attn.v_proj", hidden, hidden, f), lin(p, w, k + "self_attn.out_proj", hidden, hidden, f),
                    p.norm(w, k + "layer_norm2.weight", hidden), p.bias(w, k + "layer_norm2.bias", hidden),
                    lin(p, w, k + "mlp.fc1", intermediate, hidden, f), lin(p, w, k + "mlp.fc2", hidden, intermediate, f)));
        }
    }

    private static Lin lin(EncoderParameters p, EncoderWeights w, String key, long out, long in, BaseFormat f) {
        return new Lin(p.linear(w, key + ".weight", out, in, f), p.bias(w, key + ".bias", out));
    }

    /** Runs every layer on x [batch * len, hidden] (in place), sequences of equal length, each attending within itself. */
    void forward(Backend be, DType dtype, Tensor x, int batch, boolean causal) {
        long rows = x.rows();
        double scale = 1 / Math.sqrt(hidden / heads);
        for (Layer l : layers) {
            try (Scope s = new Scope(be)) {
                Tensor n = s.empty(dtype, rows, hidden);
                be.layerNorm(n, x, l.ln1w(), l.ln1b(), eps);
                Tensor q = s.empty(dtype, rows, hidden), k = s.empty(dtype, rows, hidden), v = s.empty(dtype, rows, hidden), a = s.empty(dtype, rows, hidden);
                be.linear(q, n, l.q().w(), l.q().b(), 0);
                be.linear(k, n, l.k().w(), l.k().b(), 0);
                be.linear(v, n, l.v().w(), l.v().b(), 0);
                be.attentionInference(a, q, k, v, batch, heads, scale, null, causal);
                be.linear(x, a, l.o().w(), l.o().b(), 1);
                be.layerNorm(n, x, l.ln2w(), l.ln2b(), eps);
                Tensor f = s.empty(dtype, rows, intermediate);
                be.linear(f, n, l.fc1().w(), l.fc1().b(), 0);
                be.quickGelu(f, f);
                be.linear(x, f, l.fc2().w(), l.fc2().b(), 1);
            }
        }
    }
}
