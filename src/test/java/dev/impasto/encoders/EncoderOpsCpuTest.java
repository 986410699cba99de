package dev.impasto.encoders;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The CPU reference of the encoder ops against hand-computed values and the properties that define each op. */
class EncoderOpsCpuTest {
    final CpuBackend be = new CpuBackend();

    static double[] random(int n, long seed) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = r.nextGaussian();
        return v;
    }

    @Test
    void embeddingGathersRowsAndRejectsIdsOutsideTheVocabulary() {
        try (Tensor table = be.fromDoubles(new double[] {1, 2, 3, 4, 5, 6}, DType.F32, 3, 2);
             Tensor ids = be.fromDoubles(new double[] {2, 0, 2}, DType.I32, 3); Tensor out = be.empty(DType.F32, 3, 2)) {
            be.embedding(out, ids, table);
            assertArrayEquals(new double[] {5, 6, 1, 2, 5, 6}, be.toDoubles(out));
            try (Tensor bad = be.fromDoubles(new double[] {3}, DType.I32, 1); Tensor o = be.empty(DType.F32, 1, 2)) {
                assertTrue(assertThrows(IllegalArgumentException.class, () -> be.embedding(o, bad, table)).getMessage().contains("outside the vocabulary"));
            }
        }
    }

    @Test
    void rmsNormAndLayerNormMatchTheirFormulas() {
        try (Tensor x = be.fromDoubles(new double[] {1, 2, 3, -4}, DType.F32, 1, 4); Tensor w = be.fromDoubles(new double[] {1, 2, 0.5, 1}, DType.F32, 4);
             Tensor b = be.fromDoubles(new double[] {0, 1, 0, -1}, DType.F32, 4); Tensor out = be.empty(DType.F32, 1, 4)) {
            be.rmsNorm(out, x, w, 1e-6);
            double rs = 1 / Math.sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
            assertArrayEquals(new double[] {rs, 4 * rs, 1.5 * rs, -4 * rs}, be.toDoubles(out), 1e-6);
            be.layerNorm(out, x, w, b, 1e-5);
            double mu = 0.5, var = (0.25 + 2.25 + 6.25 + 20.25) / 4, r = 1 / Math.sqrt(var + 1e-5);
            assertArrayEquals(new double[] {0.5 * r, 1.5 * r * 2 + 1, 2.5 * r * 0.5, -4.5 * r - 1}, be.toDoubles(out), 1e-6);
        }
    }

    @Test
    void quickGeluIsXTimesSigmoidOf1702X() {
        try (Tensor x = be.fromDoubles(new double[] {-2, 0, 1.5}, DType.F32, 3); Tensor out = be.empty(DType.F32, 3)) {
            be.quickGelu(out, x);
            double[] o = be.toDoubles(out);
            for (int i = 0; i < 3; i++) {
                double v = new double[] {-2, 0, 1.5}[i];
                assertEquals(v / (1 + Math.exp(-1.702 * v)), o[i], 1e-6);
            }
        }
    }

    @Test
    void causalAttentionFirstQuerySeesOnlyTheFirstKeyAndBiasShiftsScores() {
        int lq = 3, heads = 2, dh = 2;
        try (Tensor q = be.fromDoubles(random(lq * heads * dh, 1), DType.F32, lq, heads * dh);
             Tensor k = be.fromDoubles(random(lq * heads * dh, 2), DType.F32, lq, heads * dh);
             Tensor v = be.fromDoubles(random(lq * heads * dh, 3), DType.F32, lq, heads * dh);
             Tensor out = be.empty(DType.F32, lq, heads * dh)) {
            be.attentionInference(out, q, k, v, 1, heads, 0.5, null, true);
            double[] o = be.toDoubles(out), vv = be.toDoubles(v);
            for (int c = 0; c < heads * dh; c++) assertEquals(vv[c], o[c], 1e-12, "query 0 attends to key 0 only");
            // a bias of -inf-like size on every key but one selects that key's value
            double[] bias = new double[heads * lq * lq];
            for (int h = 0; h < heads; h++) for (int i = 0; i < lq; i++) for (int j = 0; j < lq; j++) bias[(h * lq + i) * lq + j] = j == 2 ? 0 : -1e4;
            try (Tensor bt = be.fromDoubles(bias, DType.F32, heads, lq, lq)) {
                be.attentionInference(out, q, k, v, 1, heads, 1.0, bt, false);
                double[] o2 = be.toDoubles(out);
                for (int i = 0; i < lq; i++) for (int c = 0; c < heads * dh; c++) assertEquals(vv[2 * heads * dh + c], o2[i * heads * dh + c], 1e-9);
            }
        }
    }

    @Test
    void conv2dMatchesADirectSumWithStrideAndPadding() {
        int b = 2, cin = 3, h = 5, w = 4, cout = 2, k = 3, stride = 2, pad = 1;
        double[] x = random(b * cin * h * w, 4), wt = random(cout * cin * k * k, 5), bias = {0.5, -1};
        int ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
        try (Tensor xt = be.fromDoubles(x, DType.F32, b, cin, h, w); Tensor wtt = be.fromDoubles(wt, DType.F32, cout, cin, k, k);
             Tensor bt = be.fromDoubles(bias, DType.F32, cout); Tensor out = be.empty(DType.F32, b, cout, ho, wo)) {
            be.conv2d(out, xt, wtt, bt, stride, pad);
            double[] o = be.toDoubles(out);
            for (int n = 0; n < b; n++)
                for (int co = 0; co < cout; co++)
                    for (int oy = 0; oy < ho; oy++)
                        for (int ox = 0; ox < wo; ox++) {
                            double s = bias[co];
                            for (int ci = 0; ci < cin; ci++)
                                for (int ky = 0; ky < k; ky++)
                                    for (int kx = 0; kx < k; kx++) {
                                        int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                        if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                            s += wt[((co * cin + ci) * k + ky) * k + kx] * x[((n * cin + ci) * h + iy) * w + ix];
                                    }
                            assertEquals(s, o[((n * cout + co) * ho + oy) * wo + ox], 1e-5);
                        }
            try (Tensor wrong = be.empty(DType.F32, b, cout, ho + 1, wo)) {
                assertThrows(IllegalArgumentException.class, () -> be.conv2d(wrong, xt, wtt, bt, stride, pad));
            }
        }
    }

    @Test
    void groupNormNormalisesEachGroupThenAppliesAffineAndSilu() {
        int b = 2, c = 4, hw = 6, groups = 2;
        double[] w = {1, 2, 3, 4}, bias = {0.1, 0.2, 0.3, 0.4};
        try (Tensor x = be.fromDoubles(random(b * c * hw, 6), DType.F32, b, c, 2, 3); Tensor wt = be.fromDoubles(w, DType.F32, c);
             Tensor bt = be.fromDoubles(bias, DType.F32, c); Tensor plain = be.empty(DType.F32, b, c, 2, 3); Tensor silu = be.empty(DType.F32, b, c, 2, 3);
             Tensor one = be.fromDoubles(new double[] {1, 1, 1, 1}, DType.F32, c); Tensor zero = be.zeros(DType.F32, c)) {
            be.groupNorm(plain, x, groups, one, zero, 1e-6, false);
            double[] p = be.toDoubles(plain);
            for (int g = 0; g < b * groups; g++) {
                double mu = 0, sq = 0;
                for (int i = 0; i < 2 * hw; i++) mu += p[g * 2 * hw + i];
                for (int i = 0; i < 2 * hw; i++) sq += p[g * 2 * hw + i] * p[g * 2 * hw + i];
                assertEquals(0, mu / (2 * hw), 1e-6);
                assertEquals(1, sq / (2 * hw), 1e-5);
            }
            be.groupNorm(silu, x, groups, wt, bt, 1e-6, true);
            double[] s = be.toDoubles(silu);
            for (int i = 0; i < s.length; i++) {
                int ch = (i / hw) % c;
                double v = p[i] * w[ch] + bias[ch];
                assertEquals(v / (1 + Math.exp(-v)), s[i], 1e-5);
            }
        }
    }

    @Test
    void upsamplePadAndTransposeMoveElementsWhereExpected() {
        try (Tensor x = be.fromDoubles(new double[] {1, 2, 3, 4, 5, 6}, DType.F32, 1, 1, 2, 3); Tensor up = be.empty(DType.F32, 1, 1, 4, 6);
             Tensor pad = be.empty(DType.F32, 1, 1, 3, 4); Tensor tr = be.empty(DType.F32, 1, 3, 2)) {
            be.upsampleNearest2x(up, x);
            assertArrayEquals(new double[] {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6}, be.toDoubles(up));
            be.pad2d(pad, x, 0, 1, 0, 1);
            assertArrayEquals(new double[] {1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0, 0}, be.toDoubles(pad));
            be.transpose(tr, x.reshape(1, 2, 3));
            assertArrayEquals(new double[] {1, 4, 2, 5, 3, 6}, be.toDoubles(tr));
        }
    }

    @Test
    void t5BucketsMatchTheTransformersTable() {
        // transformers' _relative_position_bucket, bidirectional, 32 buckets, max distance 128 (key minus query)
        int[][] expected = {{0, 0}, {-1, 1}, {1, 17}, {-7, 7}, {7, 23}, {-8, 8}, {-11, 8}, {-12, 9}, {-16, 10}, {-22, 10}, {-23, 11}, {-32, 12},
                {-45, 12}, {-46, 13}, {-64, 14}, {-90, 14}, {-91, 15}, {-128, 15}, {-511, 15}, {16, 26}, {511, 31}};
        for (int[] e : expected) assertEquals(e[1], T5Encoder.bucket(e[0], 32, 128), "relative position " + e[0]);
    }
}
