package dev.impasto.encoders;

import java.awt.image.BufferedImage;

/**
 * Pictures to and from the autoencoder's pixel space: CHW floats in [-1, 1], v / 127.5 - 1 as BFL's sampling code
 * prepares an image; back to 8-bit with clamp((x + 1) / 2, 0, 1) * 255 rounded, as diffusers' image processor does.
 */
public final class ImageTensors {
    private ImageTensors() {}

    /** RGB pixels as CHW [3, H, W] in [-1, 1]; {@code flip} mirrors left-right. */
    public static float[] toChw(BufferedImage img, boolean flip) {
        int w = img.getWidth(), h = img.getHeight();
        int[] px = img.getRGB(0, 0, w, h, null, 0, w);
        float[] out = new float[3 * h * w];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int p = px[y * w + (flip ? w - 1 - x : x)];
                out[y * w + x] = ((p >> 16) & 0xff) / 127.5f - 1;
                out[(h + y) * w + x] = ((p >> 8) & 0xff) / 127.5f - 1;
                out[(2 * h + y) * w + x] = (p & 0xff) / 127.5f - 1;
            }
        return out;
    }

    /** CHW [3, H, W] floats around [-1, 1] to an RGB image. */
    public static BufferedImage fromChw(float[] chw, int h, int w) {
        if (chw.length != 3 * h * w) throw new IllegalArgumentException(chw.length + " values are not a 3x" + h + "x" + w + " image");
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        int[] px = new int[h * w];
        for (int i = 0; i < h * w; i++) px[i] = (byte8(chw[i]) << 16) | (byte8(chw[h * w + i]) << 8) | byte8(chw[2 * h * w + i]);
        img.setRGB(0, 0, w, h, px, 0, w);
        return img;
    }

    static int byte8(float v) {
        if (Float.isNaN(v)) return 0;
        double u = Math.max(0, Math.min(1, (v + 1) / 2.0));
        return (int) Math.round(u * 255);
    }
}
