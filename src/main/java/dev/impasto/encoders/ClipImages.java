package dev.impasto.encoders;

import java.awt.image.BufferedImage;

/**
 * Pictures to CLIP's pixel values as transformers' CLIPImageProcessor prepares them for openai/clip-vit-large-patch14:
 * RGB; shortest side resized to the model's size with PIL's bicubic filter (the other side int(size * long / short),
 * so the aspect is kept); a centred size x size crop (top = (h - size) // 2, left likewise); values / 255; then
 * (v - mean) / std per channel with OpenAI's statistics; channels first.
 *
 * <p>The resize is PIL's (Image.resize with BICUBIC, as transformers 4's CLIPImageProcessor calls it; transformers 5's
 * uses torchvision's antialiased bicubic, the same filter): separable, horizontal pass first, each pass rounded to 8
 * bits; the cubic kernel (a = -0.5) is widened by the scale factor when shrinking, so every source pixel contributes
 * (antialiasing). PIL and torchvision compute the weights in fixed point, this class in doubles: an output value can
 * differ by one level where a sum lands on a rounding boundary (ClipModelGoldenTest: at most 1 level, 0.012 on
 * average, against both).
 */
public final class ClipImages {
    private ClipImages() {}

    /** OpenAI CLIP's per-channel mean and standard deviation (image_mean, image_std in preprocessor_config.json). */
    public static final double[] MEAN = {0.48145466, 0.4578275, 0.40821073};
    public static final double[] STD = {0.26862954, 0.26130258, 0.27577711};

    /** Pixel values [3, size, size] of a picture, ready for {@link ClipVisionEncoder#forward}. */
    public static float[] pixelValues(BufferedImage img, int size) {
        int[] wh = resizedSize(img.getWidth(), img.getHeight(), size);
        int[] rgb = resize(rgb(img), img.getWidth(), img.getHeight(), wh[0], wh[1]);
        int top = (wh[1] - size) / 2, left = (wh[0] - size) / 2;
        float[] out = new float[3 * size * size];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) {
                int p = rgb[(top + y) * wh[0] + left + x];
                for (int c = 0; c < 3; c++) {
                    int v = (p >> (16 - 8 * c)) & 0xff;
                    out[(c * size + y) * size + x] = (float) ((v / 255.0 - MEAN[c]) / STD[c]);
                }
            }
        return out;
    }

    /** {width, height} after the shortest side becomes {@code size} (transformers' get_resize_output_image_size). */
    public static int[] resizedSize(int width, int height, int size) {
        if (width <= 0 || height <= 0) throw new IllegalArgumentException("empty picture " + width + "x" + height);
        if (width <= height) return new int[] {size, (int) ((double) size * height / width)};
        return new int[] {(int) ((double) size * width / height), size};
    }

    /** The picture's pixels as 0xRRGGBB (alpha dropped, as PIL's convert("RGB") drops it). */
    static int[] rgb(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        int[] px = img.getRGB(0, 0, w, h, null, 0, w);
        for (int i = 0; i < px.length; i++) px[i] &= 0xffffff;
        return px;
    }

    /** PIL's bicubic resize of 0xRRGGBB pixels (see the class comment); a side that keeps its size is not resampled. */
    public static int[] resize(int[] rgb, int w, int h, int newW, int newH) {
        int[] out = rgb;
        if (newW != w) out = pass(out, w, h, newW, true);
        if (newH != h) out = pass(out, newW, h, newH, false);
        return out;
    }

    /** Cubic convolution kernel with a = -0.5 (PIL's bicubic_filter), support 2. */
    static double cubic(double x) {
        double a = -0.5;
        x = Math.abs(x);
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    /** One resampling pass along x (horizontal) or y, as PIL's precompute_coeffs places and normalises the taps. */
    private static int[] pass(int[] in, int w, int h, int outSize, boolean horizontal) {
        int inSize = horizontal ? w : h;
        double scale = (double) inSize / outSize, filterScale = Math.max(scale, 1), support = 2 * filterScale;
        int[] first = new int[outSize];
        double[][] taps = new double[outSize][];
        for (int i = 0; i < outSize; i++) {
            double center = (i + 0.5) * scale;
            int lo = Math.max(0, (int) (center - support + 0.5)), hi = Math.min(inSize, (int) (center + support + 0.5));
            double[] k = new double[hi - lo];
            double sum = 0;
            for (int j = lo; j < hi; j++) sum += k[j - lo] = cubic((j - center + 0.5) / filterScale);
            if (sum != 0) for (int j = 0; j < k.length; j++) k[j] /= sum;
            first[i] = lo;
            taps[i] = k;
        }
        int ow = horizontal ? outSize : w, oh = horizontal ? h : outSize;
        int[] out = new int[ow * oh];
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                int i = horizontal ? x : y;
                double[] k = taps[i];
                double r = 0, g = 0, b = 0;
                for (int t = 0; t < k.length; t++) {
                    int j = first[i] + t;
                    int p = horizontal ? in[y * w + j] : in[j * w + x];
                    r += k[t] * ((p >> 16) & 0xff);
                    g += k[t] * ((p >> 8) & 0xff);
                    b += k[t] * (p & 0xff);
                }
                out[y * ow + x] = byte8(r) << 16 | byte8(g) << 8 | byte8(b);
            }
        return out;
    }

    private static int byte8(double v) {
        return (int) Math.max(0, Math.min(255, Math.floor(v + 0.5)));
    }
}
