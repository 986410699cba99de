package dev.impasto.encoders;

import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;

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
    private final EncoderParameters params;
    private final Tensor classEmbed, posEmbed, preW, preB, postW, postB;
    private final LinearWeight patchEmbed, projection;
    private final ClipEncoderLayers layers;

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
        this.params = new EncoderParameters(be, dt);
        try {
            int h = c.hidden();
            String e = "vision_model.embeddings.";
            classEmbed = params.tensor(w, e + "class_embedding", EncoderWeights.Kind.EMBEDDING, h);
            // stored as the convolution's [hidden, 3, p, p]; its rows are already the (c, ky, kx) order of a patch row
            Tensor conv = params.tensor(w, e + "patch_embedding.weight", EncoderWeights.Kind.WEIGHT, h, 3, c.patch(), c.patch());
            patchEmbed = new LinearWeight.Dense(conv.reshape(h, c.patchDim()));
            posEmbed = params.tensor(w, e + "position_embedding.weight", EncoderWeights.Kind.EMBEDDING, c.tokens(), h);
            preW = params.norm(w, "vision_model.pre_layrnorm.weight", h);
            preB = params.bias(w, "vision_model.pre_layrnorm.bias", h);
            layers = new ClipEncoderLayers(params, w, "vision_model.encoder.layers.", c.layers(), h, c.intermediate(), c.heads(), c.eps(), f);
            postW = params.norm(w, "vision_model.post_layernorm.weight", h);
            postB = params.bias(w, "vision_model.post_layernorm.bias", h);
            projection = params.linear(w, "visual_projection.weight", c.projection(), h, f);
        } catch (RuntimeException ex) {
            close();
            throw ex;
        }
    }

    /** Loads the vision tower and visual_projection from {@code weights} (transformers CLIPModel names). */
    public static ClipVisionEncoder load(ClipVisionConfig c, Backend be, DType dt, EncoderWeights weights, BaseFormat linearFormat) {
        return new ClipVisionEncoder(c, be, dt, weights, linearFormat);
    }

    public long weightBytes() {
        return params.bytes();
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
            layers.forward(be, dtype, x, batch, false);
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
        params.close();
    }
}
