package dev.impasto.encoders;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The CLIP vision tower on the CPU against a plain float64 re-implementation written here from transformers'
 * CLIPVisionModelWithProjection: the patch convolution as a direct sum, the class token, positions, pre_layrnorm,
 * bidirectional attention head by head, quick-GELU MLP, post_layernorm of the class token, visual_projection.
 */
class ClipVisionEncoderTest {
    final CpuBackend be = new CpuBackend();
    /** Sizes that differ from each other (hidden 24, 3 heads of 8, MLP 40, 3 x 3 patches of 4, projection 10). */
    static final ClipVisionConfig CFG = new ClipVisionConfig("test-vision", 24, 3, 40, 2, 4, 12, 10, 1e-5);

    static double[] w(Map<String, Object[]> t, String key) {
        Object[] e = t.get(key);
        if (e == null) throw new AssertionError("no recorded tensor " + key);
        float[] f = (float[]) e[1];
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    static double[] layerNorm(double[] x, double[] g, double[] b, double eps) {
        int n = x.length;
        double mu = 0, var = 0;
        for (double v : x) mu += v;
        mu /= n;
        for (double v : x) var += (v - mu) * (v - mu);
        var /= n;
        double[] o = new double[n];
        for (int i = 0; i < n; i++) o[i] = (x[i] - mu) / Math.sqrt(var + eps) * g[i] + b[i];
        return o;
    }

    /** y = W x + b with W [out, in] row-major; b may be null. */
    static double[] linear(double[] W, double[] b, double[] x, int out) {
        int in = x.length;
        double[] y = new double[out];
        for (int o = 0; o < out; o++) {
            double s = b == null ? 0 : b[o];
            for (int i = 0; i < in; i++) s += W[o * in + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    record Ref(double[][][] hidden, double[][] pooled, double[][] embeds) {}

    /** transformers' CLIPVisionModelWithProjection, step by step in doubles. */
    static Ref reference(Map<String, Object[]> t, ClipVisionConfig c, float[] pixels, int batch) {
        int h = c.hidden(), p = c.patch(), s = c.imageSize(), g = c.grid(), T = c.tokens(), heads = c.heads(), dh = c.headDim();
        String e = "vision_model.embeddings.";
        double[] conv = w(t, e + "patch_embedding.weight"), cls = w(t, e + "class_embedding"), pos = w(t, e + "position_embedding.weight");
        double[][][] hid = new double[batch][][];
        double[][] pooled = new double[batch][], embeds = new double[batch][];
        for (int b = 0; b < batch; b++) {
            double[][] x = new double[T][h];
            for (int d = 0; d < h; d++) x[0][d] = cls[d] + pos[d];
            for (int gy = 0; gy < g; gy++)
                for (int gx = 0; gx < g; gx++) {
                    int tok = 1 + gy * g + gx; // flatten(2) of the convolution's [h, g, g] output
                    for (int o = 0; o < h; o++) {
                        double acc = 0;
                        for (int ch = 0; ch < 3; ch++)
                            for (int ky = 0; ky < p; ky++)
                                for (int kx = 0; kx < p; kx++)
                                    acc += conv[((o * 3 + ch) * p + ky) * p + kx] * pixels[((b * 3 + ch) * s + gy * p + ky) * s + gx * p + kx];
                        x[tok][o] = acc + pos[tok * h + o];
                    }
                }
            for (int i = 0; i < T; i++) x[i] = layerNorm(x[i], w(t, "vision_model.pre_layrnorm.weight"), w(t, "vision_model.pre_layrnorm.bias"), c.eps());
            for (int l = 0; l < c.layers(); l++) {
                String pre = "vision_model.encoder.layers." + l + ".";
                double[][] q = new double[T][], k = new double[T][], v = new double[T][];
                for (int i = 0; i < T; i++) {
                    double[] n = layerNorm(x[i], w(t, pre + "layer_norm1.weight"), w(t, pre + "layer_norm1.bias"), c.eps());
                    q[i] = linear(w(t, pre + "self_attn.q_proj.weight"), w(t, pre + "self_attn.q_proj.bias"), n, h);
                    k[i] = linear(w(t, pre + "self_attn.k_proj.weight"), w(t, pre + "self_attn.k_proj.bias"), n, h);
                    v[i] = linear(w(t, pre + "self_attn.v_proj.weight"), w(t, pre + "self_attn.v_proj.bias"), n, h);
                }
                double[][] att = new double[T][h];
                for (int hd = 0; hd < heads; hd++)
                    for (int i = 0; i < T; i++) {
                        double[] sc = new double[T];
                        double max = Double.NEGATIVE_INFINITY, sum = 0;
                        for (int j = 0; j < T; j++) { // every token sees every token: no causal mask
                            double dot = 0;
                            for (int d = 0; d < dh; d++) dot += q[i][hd * dh + d] * k[j][hd * dh + d];
                            sc[j] = dot / Math.sqrt(dh);
                            max = Math.max(max, sc[j]);
                        }
                        for (int j = 0; j < T; j++) sum += sc[j] = Math.exp(sc[j] - max);
                        for (int j = 0; j < T; j++)
                            for (int d = 0; d < dh; d++) att[i][hd * dh + d] += sc[j] / sum * v[j][hd * dh + d];
                    }
                for (int i = 0; i < T; i++) {
                    double[] o = linear(w(t, pre + "self_attn.out_proj.weight"), w(t, pre + "self_attn.out_proj.bias"), att[i], h);
                    for (int d = 0; d < h; d++) x[i][d] += o[d];
                    double[] n = layerNorm(x[i], w(t, pre + "layer_norm2.weight"), w(t, pre + "layer_norm2.bias"), c.eps());
                    double[] f = linear(w(t, pre + "mlp.fc1.weight"), w(t, pre + "mlp.fc1.bias"), n, c.intermediate());
                    for (int j = 0; j < f.length; j++) f[j] = f[j] / (1 + Math.exp(-1.702 * f[j]));
                    double[] y = linear(w(t, pre + "mlp.fc2.weight"), w(t, pre + "mlp.fc2.bias"), f, h);
                    for (int d = 0; d < h; d++) x[i][d] += y[d];
                }
            }
            hid[b] = x;
            pooled[b] = layerNorm(x[0], w(t, "vision_model.post_layernorm.weight"), w(t, "vision_model.post_layernorm.bias"), c.eps());
            embeds[b] = linear(w(t, "visual_projection.weight"), null, pooled[b], c.projection());
        }
        return new Ref(hid, pooled, embeds);
    }

    static double[] flat(double[][] a) {
        return java.util.Arrays.stream(a).flatMapToDouble(java.util.Arrays::stream).toArray();
    }

    static float[] randomPixels(int n, long seed) {
        Random r = new Random(seed);
        float[] p = new float[n];
        for (int i = 0; i < n; i++) p[i] = (float) r.nextGaussian();
        return p;
    }

    @Test
    void cpuF32MatchesAFloat64ReimplementationOfTransformers() {
        RecordingWeights rec = new RecordingWeights(5);
        int batch = 2, s = CFG.imageSize();
        float[] pixels = randomPixels(batch * 3 * s * s, 9);
        try (ClipVisionEncoder enc = ClipVisionEncoder.load(CFG, be, DType.F32, rec, BaseFormat.F32);
             ClipVisionEncoder.Output o = enc.forward(pixels, batch)) {
            assertArrayEquals(new long[] {batch, CFG.tokens(), CFG.hidden()}, o.hidden().shape());
            assertArrayEquals(new long[] {batch, CFG.hidden()}, o.pooled().shape());
            assertArrayEquals(new long[] {batch, CFG.projection()}, o.embeds().shape());
            Ref ref = reference(rec.tensors, CFG, pixels, batch);
            double eh = GradCheck.relL2(be.toDoubles(o.hidden()), java.util.Arrays.stream(ref.hidden()).flatMapToDouble(x -> java.util.Arrays.stream(flat(x))).toArray());
            double ep = GradCheck.relL2(be.toDoubles(o.pooled()), flat(ref.pooled()));
            double ee = GradCheck.relL2(be.toDoubles(o.embeds()), flat(ref.embeds()));
            System.out.println("CLIP vision vs float64 reference, rel L2: hidden " + eh + ", pooled " + ep + ", embeds " + ee);
            assertTrue(eh <= 1e-5 && ep <= 1e-5 && ee <= 1e-5, "hidden " + eh + ", pooled " + ep + ", embeds " + ee);
            // the two pictures differ, and so do their embeddings: no row is computed from the wrong picture
            double[] e = be.toDoubles(o.embeds());
            double diff = 0;
            for (int i = 0; i < CFG.projection(); i++) diff += Math.abs(e[i] - e[CFG.projection() + i]);
            assertTrue(diff > 0.1, "embeddings of two random pictures: " + diff);
        }
    }

    @Test
    void aPictureEmbedsTheSameAloneAndInABatch() {
        int s = CFG.imageSize(), plane = 3 * s * s;
        float[] two = randomPixels(2 * plane, 3);
        try (ClipVisionEncoder enc = ClipVisionEncoder.load(CFG, be, DType.F32, new RandomEncoderWeights(2), BaseFormat.F32);
             ClipVisionEncoder.Output both = enc.forward(two, 2);
             ClipVisionEncoder.Output second = enc.forward(java.util.Arrays.copyOfRange(two, plane, 2 * plane), 1)) {
            float[] b = be.toFloats(both.embeds()), one = be.toFloats(second.embeds());
            for (int i = 0; i < CFG.projection(); i++) assertEquals(one[i], b[CFG.projection() + i], 1e-6f);
        }
    }

    @Test
    void im2colRowsFollowTheConvolutionWeightsOrder() {
        // one 4x4 picture, patches of 2: value = channel * 100 + y * 10 + x
        float[] px = new float[3 * 16];
        for (int c = 0; c < 3; c++) for (int y = 0; y < 4; y++) for (int x = 0; x < 4; x++) px[(c * 4 + y) * 4 + x] = c * 100 + y * 10 + x;
        float[] rows = ClipVisionEncoder.im2col(px, 1, 4, 2);
        assertEquals(4 * 12, rows.length);
        // patch (gy 1, gx 0) is row 2: channel 0 rows y = 2, 3, columns x = 0, 1; then channel 1, then 2
        float[] expect = {20, 21, 30, 31, 120, 121, 130, 131, 220, 221, 230, 231};
        assertArrayEquals(expect, java.util.Arrays.copyOfRange(rows, 2 * 12, 3 * 12));
    }

    @Test
    void configsAndInputsAreChecked() {
        ClipVisionConfig l = ClipVisionConfig.large();
        assertEquals(257, l.tokens());
        assertEquals(588, l.patchDim());
        assertEquals(64, l.headDim());
        assertEquals(303_966_208L, l.parameterCount());
        var e = assertThrows(IllegalArgumentException.class, () -> new ClipVisionConfig("odd", 16, 2, 32, 1, 5, 32, 8, 1e-5));
        assertTrue(e.getMessage().contains("not a multiple of the patch size 5"), e.getMessage());
        try (ClipVisionEncoder enc = ClipVisionEncoder.load(ClipVisionConfig.tiny(), be, DType.F32, new RandomEncoderWeights(1), BaseFormat.F32)) {
            var e2 = assertThrows(IllegalArgumentException.class, () -> enc.forward(new float[10], 1));
            assertTrue(e2.getMessage().contains("1 x 3 x 32 x 32"), e2.getMessage());
        }
    }
}
