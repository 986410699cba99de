package dev.impasto.model;

/**
 * Packing latents into transformer tokens, as FLUX does: {@code b c (h 2) (w 2) -> b (h w) (c 2 2)}. A latent of
 * C channels and H x W pixels becomes (H/2)(W/2) tokens of 4C features, feature index c*4 + ph*2 + pw.
 */
public final class Latents {
    private Latents() {}

    public static float[] pack(float[] chw, int c, int h, int w) {
        check(chw.length, c, h, w);
        int gh = h / 2, gw = w / 2;
        float[] out = new float[chw.length];
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int token = (y / 2) * gw + x / 2;
                    int feature = ch * 4 + (y % 2) * 2 + (x % 2);
                    out[token * 4 * c + feature] = chw[(ch * h + y) * w + x];
                }
        return out;
    }

    public static float[] unpack(float[] tokens, int c, int h, int w) {
        check(tokens.length, c, h, w);
        int gw = w / 2;
        float[] out = new float[tokens.length];
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    out[(ch * h + y) * w + x] = tokens[((y / 2) * gw + x / 2) * 4 * c + ch * 4 + (y % 2) * 2 + (x % 2)];
        return out;
    }

    private static void check(int n, int c, int h, int w) {
        if (h % 2 != 0 || w % 2 != 0) throw new IllegalArgumentException("latent size " + h + "x" + w + " must be even (2x2 patches)");
        if ((long) c * h * w != n) throw new IllegalArgumentException(n + " values do not make a " + c + "x" + h + "x" + w + " latent");
    }
}
