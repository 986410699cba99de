package dev.impasto.encoders;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * FLUX's autoencoder (black-forest-labs/flux modules/autoencoder.py AutoEncoder), inference only, NCHW. Encoder:
 * conv_in, per level ResNet blocks then a stride-2 conv after zero padding (0, 1, 0, 1), mid (ResNet, attention,
 * ResNet), GroupNorm + SiLU, conv_out to 2 z channels; the latent is the mean half (no sampling), scaled
 * {@code scale * (z - shift)}. Decoder: the mirror image with nearest 2x upsampling + conv, taking
 * {@code z / scale + shift}. GroupNorm: 32 groups, eps 1e-6. Attention: one head over all positions.
 *
 * <p>{@link #decodeTiled} decodes overlapping latent tiles and blends them, so large images fit small GPUs.
 */
public final class AutoEncoder implements AutoCloseable {
    public final AutoEncoderConfig config;
    public final Backend backend;
    public final DType dtype;
    static final int GROUPS = 32;
    static final double EPS = 1e-6;
    private final EncoderParameters params;

    private record Conv(Tensor w, Tensor b, int stride, int pad) {
        long out() {
            return w.dim(0);
        }
    }

    private record Norm(Tensor w, Tensor b) {}

    private record Res(Norm n1, Conv c1, Norm n2, Conv c2, Conv nin) {}

    private record Attn(Norm n, LinearWeight q, Tensor qb, LinearWeight k, Tensor kb, LinearWeight v, Tensor vb, LinearWeight proj, Tensor projb) {}

    private record Mid(Res b1, Attn attn, Res b2) {}

    // encoder
    private final Conv encIn, encOut;
    private final List<List<Res>> down = new ArrayList<>();
    private final List<Conv> downsample = new ArrayList<>();
    private final Mid encMid;
    private final Norm encNorm;
    // decoder (up.get(i) is BFL's decoder.up.i; run from the last level down)
    private final Conv decIn, decOut;
    private final List<List<Res>> up = new ArrayList<>();
    private final List<Conv> upsample = new ArrayList<>();
    private final Mid decMid;
    private final Norm decNorm;

    private AutoEncoder(AutoEncoderConfig c, Backend be, DType dt, EncoderWeights w) {
        this.config = c;
        this.backend = be;
        this.dtype = dt;
        this.params = new EncoderParameters(be, dt);
        try {
            int[] mult = c.chMult();
            int levels = mult.length;
            encIn = conv(w, "encoder.conv_in", c.inChannels(), c.ch(), 3, 1, 1);
            int blockIn = c.ch();
            for (int i = 0; i < levels; i++) {
                List<Res> blocks = new ArrayList<>();
                blockIn = c.ch() * (i == 0 ? 1 : mult[i - 1]);
                int blockOut = c.ch() * mult[i];
                for (int j = 0; j < c.numResBlocks(); j++) {
                    blocks.add(res(w, "encoder.down." + i + ".block." + j, blockIn, blockOut));
                    blockIn = blockOut;
                }
                down.add(blocks);
                downsample.add(i == levels - 1 ? null : conv(w, "encoder.down." + i + ".downsample.conv", blockIn, blockIn, 3, 2, 0));
            }
            encMid = mid(w, "encoder.mid", blockIn);
            encNorm = norm(w, "encoder.norm_out", blockIn);
            encOut = conv(w, "encoder.conv_out", blockIn, 2 * c.zChannels(), 3, 1, 1);

            blockIn = c.ch() * mult[levels - 1];
            decIn = conv(w, "decoder.conv_in", c.zChannels(), blockIn, 3, 1, 1);
            decMid = mid(w, "decoder.mid", blockIn);
            Res[][] ups = new Res[levels][];
            Conv[] upConv = new Conv[levels];
            for (int i = levels - 1; i >= 0; i--) {
                int blockOut = c.ch() * mult[i];
                ups[i] = new Res[c.numResBlocks() + 1];
                for (int j = 0; j <= c.numResBlocks(); j++) {
                    ups[i][j] = res(w, "decoder.up." + i + ".block." + j, blockIn, blockOut);
                    blockIn = blockOut;
                }
                upConv[i] = i == 0 ? null : conv(w, "decoder.up." + i + ".upsample.conv", blockIn, blockIn, 3, 1, 1);
            }
            for (int i = 0; i < levels; i++) {
                up.add(List.of(ups[i]));
                upsample.add(upConv[i]);
            }
            decNorm = norm(w, "decoder.norm_out", blockIn);
            decOut = conv(w, "decoder.conv_out", blockIn, c.outCh(), 3, 1, 1);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    public static AutoEncoder load(AutoEncoderConfig c, Backend be, DType dt, EncoderWeights weights) {
        return new AutoEncoder(c, be, dt, weights);
    }

    private Conv conv(EncoderWeights w, String key, int in, int out, int k, int stride, int pad) {
        return new Conv(params.tensor(w, key + ".weight", EncoderWeights.Kind.WEIGHT, out, in, k, k), params.bias(w, key + ".bias", out), stride, pad);
    }

    private Norm norm(EncoderWeights w, String key, int ch) {
        return new Norm(params.norm(w, key + ".weight", ch), params.bias(w, key + ".bias", ch));
    }

    private Res res(EncoderWeights w, String key, int in, int out) {
        return new Res(norm(w, key + ".norm1", in), conv(w, key + ".conv1", in, out, 3, 1, 1), norm(w, key + ".norm2", out),
                conv(w, key + ".conv2", out, out, 3, 1, 1), in == out ? null : conv(w, key + ".nin_shortcut", in, out, 1, 1, 0));
    }

    private LinearWeight proj(EncoderWeights w, String key, int ch) {
        return params.linear(w, key, ch, ch, dev.impasto.quant.BaseFormat.BF16);
    }

    private Mid mid(EncoderWeights w, String key, int ch) {
        String a = key + ".attn_1.";
        Attn attn = new Attn(norm(w, a + "norm", ch),
                proj(w, a + "q.weight", ch), params.bias(w, a + "q.bias", ch),
                proj(w, a + "k.weight", ch), params.bias(w, a + "k.bias", ch),
                proj(w, a + "v.weight", ch), params.bias(w, a + "v.bias", ch),
                proj(w, a + "proj_out.weight", ch), params.bias(w, a + "proj_out.bias", ch));
        return new Mid(res(w, key + ".block_1", ch, ch), attn, res(w, key + ".block_2", ch, ch));
    }

    public long weightBytes() {
        return params.bytes();
    }

    // ------------------------------------------------------------------------------------------------ layers

    private Tensor conv(Conv c, Tensor x) {
        long b = x.dim(0), h = x.dim(2), w = x.dim(3);
        long kh = c.w().dim(2);
        long ho = (h + 2L * c.pad() - kh) / c.stride() + 1, wo = (w + 2L * c.pad() - kh) / c.stride() + 1;
        Tensor out = backend.empty(dtype, b, c.out(), ho, wo);
        try {
            backend.conv2d(out, x, c.w(), c.b(), c.stride(), c.pad());
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        return out;
    }

    private Tensor groupNorm(Norm n, Tensor x, boolean silu) {
        Tensor out = backend.empty(dtype, x.shape());
        backend.groupNorm(out, x, GROUPS, n.w(), n.b(), EPS, silu);
        return out;
    }

    private Tensor res(Res r, Tensor x) {
        Tensor h;
        try (Tensor n1 = groupNorm(r.n1(), x, true)) {
            h = conv(r.c1(), n1);
        }
        Tensor out;
        try (Tensor h1 = h; Tensor n2 = groupNorm(r.n2(), h1, true)) {
            out = conv(r.c2(), n2);
        }
        if (r.nin() == null) {
            backend.add(out, out, x);
        } else {
            try (Tensor sc = conv(r.nin(), x)) {
                backend.add(out, out, sc);
            }
        }
        return out;
    }

    private Tensor attn(Attn a, Tensor x) {
        Backend be = backend;
        long b = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
        Tensor tokens = be.empty(dtype, b, hw, c);
        try (Tensor n = groupNorm(a.n(), x, false)) {
            be.transpose(tokens, n.reshape(b, c, hw));
        }
        Tensor o = be.empty(dtype, b * hw, c);
        try (Tensor t = tokens; Tensor q = be.empty(dtype, b * hw, c); Tensor k = be.empty(dtype, b * hw, c); Tensor v = be.empty(dtype, b * hw, c)) {
            Tensor tm = t.reshape(b * hw, c);
            be.linear(q, tm, a.q(), a.qb(), 0);
            be.linear(k, tm, a.k(), a.kb(), 0);
            be.linear(v, tm, a.v(), a.vb(), 0);
            be.attentionInference(o, q, k, v, (int) b, 1, 1 / Math.sqrt(c), null, false);
        } catch (RuntimeException e) {
            o.close();
            throw e;
        }
        Tensor out = be.empty(dtype, x.shape());
        try (Tensor o1 = o; Tensor p = be.empty(dtype, b * hw, c)) {
            be.linear(p, o1, a.proj(), a.projb(), 0);
            be.transpose(out.reshape(b, c, hw), p.reshape(b, hw, c));
            be.add(out, out, x);
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        return out;
    }

    private Tensor mid(Mid m, Tensor x) {
        try (Tensor h1 = res(m.b1(), x); Tensor h2 = attn(m.attn(), h1)) {
            return res(m.b2(), h2);
        }
    }

    /** x = fn(x), closing the old x. */
    private static Tensor step(Tensor x, java.util.function.UnaryOperator<Tensor> fn) {
        try (x) {
            return fn.apply(x);
        }
    }

    /** t = a * t + c, elementwise. */
    private void affine(Tensor t, double a, double c) {
        try (Tensor k = backend.empty(t.dtype(), t.shape())) {
            backend.fill(k, c);
            backend.axpby(k, a, t, 1);
            backend.copy(t, k);
        }
    }

    // ------------------------------------------------------------------------------------------------ API

    /**
     * Image [B, 3, H, W] in [-1, 1] (H and W multiples of {@link AutoEncoderConfig#downsampling()}) to the scaled latent
     * [B, z, H / f, W / f] the transformer works with. The caller owns the result.
     */
    public Tensor encode(Tensor image) {
        if (image.rank() != 4 || image.dim(1) != config.inChannels())
            throw new IllegalArgumentException("autoencoder: image must be [B, " + config.inChannels() + ", H, W], got " + image);
        int f = config.downsampling();
        if (image.dim(2) % f != 0 || image.dim(3) % f != 0)
            throw new IllegalArgumentException("autoencoder: image size " + image.dim(2) + "x" + image.dim(3) + " must be a multiple of " + f);
        Backend be = backend;
        Tensor h = conv(encIn, image);
        for (int i = 0; i < down.size(); i++) {
            for (Res r : down.get(i)) h = step(h, x -> res(r, x));
            Conv d = downsample.get(i);
            if (d != null) {
                h = step(h, x -> {
                    try (Tensor p = be.empty(dtype, x.dim(0), x.dim(1), x.dim(2) + 1, x.dim(3) + 1)) {
                        be.pad2d(p, x, 0, 1, 0, 1);
                        return conv(d, p);
                    }
                });
            }
        }
        h = step(h, x -> mid(encMid, x));
        h = step(h, x -> groupNorm(encNorm, x, true));
        h = step(h, x -> conv(encOut, x));
        try (Tensor moments = h) {
            long b = moments.dim(0), z = config.zChannels(), hw = moments.dim(2) * moments.dim(3);
            Tensor latent = be.empty(dtype, b, z, moments.dim(2), moments.dim(3));
            be.copy(latent.reshape(b, z * hw), moments.reshape(b, 2 * z * hw).cols(0, z * hw));
            affine(latent, config.scaleFactor(), -config.scaleFactor() * config.shiftFactor());
            return latent;
        }
    }

    /** Scaled latent [B, z, h, w] to the image [B, 3, h f, w f] (about [-1, 1], not clamped). The caller owns the result. */
    public Tensor decode(Tensor latent) {
        if (latent.rank() != 4 || latent.dim(1) != config.zChannels())
            throw new IllegalArgumentException("autoencoder: latent must be [B, " + config.zChannels() + ", h, w], got " + latent);
        Backend be = backend;
        Tensor h;
        try (Tensor z = be.empty(dtype, latent.shape())) {
            be.copy(z, latent);
            affine(z, 1 / config.scaleFactor(), config.shiftFactor());
            h = conv(decIn, z);
        }
        h = step(h, x -> mid(decMid, x));
        for (int i = up.size() - 1; i >= 0; i--) {
            for (Res r : up.get(i)) h = step(h, x -> res(r, x));
            Conv u = upsample.get(i);
            if (u != null) {
                h = step(h, x -> {
                    try (Tensor p = be.empty(dtype, x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3))) {
                        be.upsampleNearest2x(p, x);
                        return conv(u, p);
                    }
                });
            }
        }
        h = step(h, x -> groupNorm(decNorm, x, true));
        return step(h, x -> conv(decOut, x));
    }

    /**
     * Decodes a latent [1, z, h, w] in overlapping tiles of at most {@code tile} latent pixels a side, {@code overlap}
     * latent pixels shared by neighbours and blended linearly, so peak memory follows the tile, not the image. The
     * mid attention and the GroupNorm statistics then see one tile at a time (as diffusers' tiled decode does), so
     * the result differs slightly from {@link #decode}; a tile covering the latent gives exactly {@link #decode}.
     * Returns the image as CHW floats [3, h f, w f].
     */
    public float[] decodeTiled(Tensor latent, int tile, int overlap) {
        if (latent.rank() != 4 || latent.dim(0) != 1) throw new IllegalArgumentException("tiled decode takes one latent [1, z, h, w], got " + latent);
        if (tile < 2 || overlap < 0 || overlap >= tile) throw new IllegalArgumentException("tile " + tile + " and overlap " + overlap + ": need 0 <= overlap < tile");
        int z = (int) latent.dim(1), h = (int) latent.dim(2), w = (int) latent.dim(3), f = config.downsampling(), oc = config.outCh();
        int bigH = h * f, bigW = w * f;
        float[] acc = new float[oc * bigH * bigW];
        float[] weight = new float[bigH * bigW];
        int[] ys = starts(h, tile, overlap), xs = starts(w, tile, overlap);
        Tensor flat = latent.reshape((long) z * h, w);
        for (int y0 : ys)
            for (int x0 : xs) {
                int th = Math.min(tile, h - y0), tw = Math.min(tile, w - x0);
                float[] img;
                try (Tensor sub = backend.empty(dtype, 1, z, th, tw)) {
                    Tensor subFlat = sub.reshape((long) z * th, tw);
                    for (int c = 0; c < z; c++)
                        backend.copy(subFlat.rows((long) c * th, (long) (c + 1) * th), flat.rows((long) c * h + y0, (long) c * h + y0 + th).cols(x0, x0 + tw));
                    try (Tensor out = decode(sub)) {
                        img = backend.toFloats(out);
                    }
                }
                int ph = th * f, pw = tw * f, ramp = overlap * f;
                for (int yy = 0; yy < ph; yy++) {
                    float wy = rampWeight(yy, ph, ramp, y0 > 0, y0 + th < h);
                    for (int xx = 0; xx < pw; xx++) {
                        float wgt = wy * rampWeight(xx, pw, ramp, x0 > 0, x0 + tw < w);
                        int gy = y0 * f + yy, gx = x0 * f + xx;
                        weight[gy * bigW + gx] += wgt;
                        for (int c = 0; c < oc; c++) acc[(c * bigH + gy) * bigW + gx] += wgt * img[(c * ph + yy) * pw + xx];
                    }
                }
            }
        for (int c = 0; c < oc; c++)
            for (int i = 0; i < bigH * bigW; i++) acc[c * bigH * bigW + i] /= weight[i];
        return acc;
    }

    /** Tile starts covering [0, n): steps of tile - overlap, the last tile ending at n. */
    static int[] starts(int n, int tile, int overlap) {
        if (n <= tile) return new int[] {0};
        int stride = tile - overlap;
        List<Integer> s = new ArrayList<>();
        for (int p = 0; ; p += stride) {
            if (p + tile >= n) {
                s.add(n - tile);
                break;
            }
            s.add(p);
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Linear ramp over the first/last {@code ramp} pixels on sides shared with a neighbour; 1 elsewhere (never 0). */
    static float rampWeight(int i, int n, int ramp, boolean before, boolean after) {
        float wgt = 1;
        if (ramp > 0 && before) wgt = Math.min(wgt, (i + 0.5f) / ramp);
        if (ramp > 0 && after) wgt = Math.min(wgt, (n - i - 0.5f) / ramp);
        return wgt;
    }

    @Override
    public void close() {
        params.close();
    }
}
