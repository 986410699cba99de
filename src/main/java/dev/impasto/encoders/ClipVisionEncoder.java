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
 * CLIP's vision transformer with its projection (transformers CLIPVisionModelWithProjection), inference only: the
 * picture cut into patches, each embedded by the patch convolution (kernel = stride = patch, no bias); the class
 * embedding in front; learned positions added; pre-LayerNorm ({@code pre_layrnorm}, transformers' spelling); per
 * layer x += out_proj(attn(LN1(x))) and x += fc2(quick_gelu(fc1(LN2(x)))) as in the text tower but with every token
 * seeing every other; then the class token's state through {@code post_layernorm} and {@code visual_projection} (no
 * bias) is the image embedding, in the same space as the text tower's projected pooled output.
 *
 * <p>The convolution is run as a matrix product: the pixels arrive from the host, so cutting them into patch rows
 * (im2col, each row in the weight's (channel, ky, kx) order) costs nothing there, and {@link Backend#linear} does the
 * rest on any backend.
 */
public final class ClipVisionEncoder implements AutoCloseable {
    public final ClipVisionConfig config;
    public final Backend backend;
    public final DType dtype;
    private final Tensor classEmbed, posEmbed, preW, preB, postW, postB;
    private final LinearWeight patchEmbed, projection;
    private final List<Layer> layers = new ArrayList<>();
    private final List<AutoCloseable> owned = new ArrayList<>();

    private record Lin(LinearWeight w, Tensor b) {}

    private record Layer(Tensor ln1w, Tensor ln1b, Lin q, Lin k, Lin v, Lin o, Tensor ln2w, Tensor ln2b, Lin fc1, Lin fc2) {}

    /**
     * Last hidden state [B, tokens, hidden] (before post_layernorm, as transformers' last_hidden_state), pooled output
     * [B, hidden] (the class token after post_layernorm) and image embeddings [B, projection]; the caller closes them.
     */
    public record Output(Tensor hidden, Tensor pooled, Tensor embeds) implements AutoCloseable {
        @Override
        public void close() {
            hidden.close();
            pooled.close();
            embeds.close();
        }
    }

    private ClipVisionEncoder(ClipVisionConfig c, Backend be, DType dt, EncoderWeights w, BaseFormat f) {
        this.config = c;
        this.backend = be;
        this.dtype = dt;
        try {
            int h = c.hidden(), m = c.intermediate();
            String e = "vision_model.embeddings.";
            classEmbed = keep(w.tensor(be, e + "class_embedding", EncoderWeights.Kind.EMBEDDING, dt, h));
            // stored as the convolution's [hidden, 3, p, p]; its rows are already the (c, ky, kx) order of a patch row
            Tensor conv = keep(w.tensor(be, e + "patch_embedding.weight", EncoderWeights.Kind.WEIGHT, dt, h, 3, c.patch(), c.patch()));
            patchEmbed = new LinearWeight.Dense(conv.reshape(h, c.patchDim()));
            posEmbed = keep(w.tensor(be, e + "position_embedding.weight", EncoderWeights.Kind.EMBEDDING, dt, c.tokens(), h));
            preW = norm(w, "vision_model.pre_layrnorm.weight", h);
            preB = bias(w, "vision_model.pre_layrnorm.bias", h);
            for (int i = 0; i < c.layers(); i++) {
                String p = "vision_model.encoder.layers." + i + ".";
                layers.add(new Layer(norm(w, p + "layer_norm1.weight", h), bias(w, p + "layer_norm1.bias", h),
                        lin(w, p + "self_attn.q_proj", h, h, f), lin(w, p + "self_attn.k_proj", h, h, f),
                        lin(w, p + "self_attn.v_proj", h, h, f), lin(w, p + "self_attn.out_proj", h, h, f),
                        norm(w, p + "layer_norm2.weight", h), bias(w, p + "layer_norm2.bias", h),
                        lin(w, p + "mlp.fc1", m, h, f), lin(w, p + "mlp.fc2", h, m, f)));
            }
            postW = norm(w, "vision_model.post_layernorm.weight", h);
            postB = bias(w, "vision_model.post_layernorm.bias", h);
            projection = w.linear(be, "visual_projection.weight", c.projection(), h, dt, f);
            owned.add(projection);
        } catch (RuntimeException ex) {
            close();
            throw ex;
        }
    }

    /** Loads the vision tower and visual_projection from {@code weights} (transformers CLIPModel names). */
    public static ClipVisionEncoder load(ClipVisionConfig c, Backend be, DType dt, EncoderWeights weights, BaseFormat linearFormat) {
        return new ClipVisionEncoder(c, be, dt, weights, linearFormat);
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
     * Patch rows of {@code batch} pictures [B, 3, S, S] (S = imageSize, channels first, preprocessed): row
     * b * grid^2 + gy * grid + gx holds patch (gy, gx) of picture b as 3 * p * p values in (channel, ky, kx) order, the
     * order of the convolution weight's flattened rows and of transformers' flatten(2) over the convolution's output.
     */
    static float[] im2col(float[] pixels, int batch, int imageSize, int patch) {
        int g = imageSize / patch, pd = 3 * patch * patch, plane = imageSize * imageSize;
        float[] rows = new float[batch * g * g * pd];
        for (int b = 0; b < batch; b++)
            for (int gy = 0; gy < g; gy++)
                for (int gx = 0; gx < g; gx++) {
                    int r = ((b * g + gy) * g + gx) * pd;
                    for (int ch = 0; ch < 3; ch++)
                        for (int ky = 0; ky < patch; ky++)
                            System.arraycopy(pixels, (b * 3 + ch) * plane + (gy * patch + ky) * imageSize + gx * patch, rows,
                                    r + (ch * patch + ky) * patch, patch);
                }
        return rows;
    }

    /** Runs {@code batch} preprocessed pictures, pixel values [B, 3, S, S] as {@link ClipImages#pixelValues} makes them. */
    public Output forward(float[] pixels, int batch) {
        int s = config.imageSize(), t = config.tokens(), h = config.hidden(), patches = t - 1;
        if (batch < 1 || pixels.length != (long) batch * 3 * s * s)
            throw new IllegalArgumentException("CLIP vision: expected " + batch + " x 3 x " + s + " x " + s + " pixel values, got " + pixels.length);
        Backend be = backend;
        long rows = (long) batch * t;
        Tensor hidden = be.empty(dtype, batch, t, h);
        Tensor pooled = null, embeds = null;
        try {
            Tensor x = hidden.reshape(rows, h);
            try (Tensor cols = be.fromFloats(im2col(pixels, batch, s, config.patch()), dtype, (long) batch * patches, config.patchDim());
                 Tensor pre = be.empty(dtype, rows, h)) {
                for (int b = 0; b < batch; b++) {
                    long r = (long) b * t;
                    be.copy(pre.rows(r, r + 1), classEmbed.reshape(1, h));
                    be.linear(pre.rows(r + 1, r + t), cols.rows((long) b * patches, (long) (b + 1) * patches), patchEmbed, null, 0);
                    Tensor xb = pre.rows(r, r + t);
                    be.add(xb, xb, posEmbed);
                }
                be.layerNorm(x, pre, preW, preB, config.eps());
            }
            double scale = 1 / Math.sqrt(config.headDim());
            for (Layer l : layers) {
                try (Scope sc = new Scope(be)) {
                    Tensor n = sc.empty(dtype, rows, h);
                    be.layerNorm(n, x, l.ln1w(), l.ln1b(), config.eps());
                    Tensor q = sc.empty(dtype, rows, h), k = sc.empty(dtype, rows, h), v = sc.empty(dtype, rows, h), a = sc.empty(dtype, rows, h);
                    be.linear(q, n, l.q().w(), l.q().b(), 0);
                    be.linear(k, n, l.k().w(), l.k().b(), 0);
                    be.linear(v, n, l.v().w(), l.v().b(), 0);
                    be.attentionInference(a, q, k, v, batch, config.heads(), scale, null, false);
                    be.linear(x, a, l.o().w(), l.o().b(), 1);
                    be.layerNorm(n, x, l.ln2w(), l.ln2b(), config.eps());
                    Tensor f = sc.empty(dtype, rows, config.intermediate());
                    be.linear(f, n, l.fc1().w(), l.fc1().b(), 0);
                    be.quickGelu(f, f);
                    be.linear(x, f, l.fc2().w(), l.fc2().b(), 1);
                }
            }
            pooled = be.empty(dtype, batch, h);
            try (Tensor cls = be.empty(dtype, batch, h)) {
                for (int b = 0; b < batch; b++) be.copy(cls.rows(b, b + 1), x.rows((long) b * t, (long) b * t + 1));
                be.layerNorm(pooled, cls, postW, postB, config.eps());
            }
            embeds = be.empty(dtype, batch, config.projection());
            be.linear(embeds, pooled, projection, null, 0);
            return new Output(hidden, pooled, embeds);
        } catch (RuntimeException ex) {
            for (Tensor o : new Tensor[] {embeds, pooled, hidden}) if (o != null) o.close();
            throw ex;
        }
    }

    @Override
    public void close() {
        Closeables.closeReversed(owned);
    }
}
