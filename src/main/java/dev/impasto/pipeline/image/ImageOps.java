package dev.impasto.pipeline.image;

import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.Iterator;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;

/** Encoding, scaling and pixel statistics of 8-bit RGB images. */
public final class ImageOps {
    private ImageOps() {}

    public static byte[] jpeg(BufferedImage rgb, float quality) {
        ByteArrayOutputStream bos = new ByteArrayOutputStream(Math.max(1024, rgb.getWidth() * rgb.getHeight() / 4));
        writeJpeg(rgb, quality, bos);
        return bos.toByteArray();
    }

    public static void writeJpeg(BufferedImage rgb, float quality, OutputStream out) {
        Iterator<ImageWriter> it = ImageIO.getImageWritersByFormatName("jpeg");
        if (!it.hasNext()) throw new IllegalStateException("no JPEG writer");
        ImageWriter writer = it.next();
        try (ImageOutputStream ios = ImageIO.createImageOutputStream(out)) {
            ImageWriteParam p = writer.getDefaultWriteParam();
            p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            p.setCompressionQuality(quality);
            writer.setOutput(ios);
            writer.write(null, new IIOImage(ImageInspector.toRgb(rgb), null, null), p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            writer.dispose();
        }
    }

    public static byte[] png(BufferedImage img) {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try {
            ImageIO.write(img, "png", bos);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bos.toByteArray();
    }

    /** Bytes per pixel of the image re-encoded as JPEG at quality 95: flat, blurry or upscaled images score low. */
    public static double jpegQ95BytesPerPixel(BufferedImage rgb) {
        return jpeg(rgb, 0.95f).length / (double) ((long) rgb.getWidth() * rgb.getHeight());
    }

    /** Scales so that the longer side is at most {@code maxSide} (never up), with progressive halving for quality. */
    public static BufferedImage fit(BufferedImage src, int maxSide) {
        int w = src.getWidth(), h = src.getHeight();
        double s = Math.min(1.0, maxSide / (double) Math.max(w, h));
        return resize(src, Math.max(1, (int) Math.round(w * s)), Math.max(1, (int) Math.round(h * s)));
    }

    public static BufferedImage resize(BufferedImage src, int tw, int th) {
        BufferedImage cur = ImageInspector.toRgb(src);
        int w = cur.getWidth(), h = cur.getHeight();
        while (w / 2 >= tw && h / 2 >= th) {
            w /= 2;
            h /= 2;
            cur = draw(cur, w, h);
        }
        return (w == tw && h == th) ? cur : draw(cur, tw, th);
    }

    private static BufferedImage draw(BufferedImage src, int w, int h) {
        BufferedImage out = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
            g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
            g.drawImage(src, 0, 0, w, h, null);
        } finally {
            g.dispose();
        }
        return out;
    }

    /** Hasler-Suesstrunk colourfulness: sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2), on 0-255 values. */
    public static double colourfulness(BufferedImage rgb) {
        int w = rgb.getWidth(), h = rgb.getHeight();
        int[] px = rgb.getRGB(0, 0, w, h, null, 0, w);
        double srg = 0, syb = 0, srg2 = 0, syb2 = 0;
        for (int p : px) {
            int r = (p >> 16) & 255, g = (p >> 8) & 255, b = p & 255;
            double rg = r - g, yb = 0.5 * (r + g) - b;
            srg += rg;
            syb += yb;
            srg2 += rg * rg;
            syb2 += yb * yb;
        }
        int n = px.length;
        double mrg = srg / n, myb = syb / n;
        double vrg = Math.max(0, srg2 / n - mrg * mrg), vyb = Math.max(0, syb2 / n - myb * myb);
        return Math.sqrt(vrg + vyb) + 0.3 * Math.sqrt(mrg * mrg + myb * myb);
    }

    /** Mean HSV saturation in [0, 1]. */
    public static double meanSaturation(BufferedImage rgb) {
        int w = rgb.getWidth(), h = rgb.getHeight();
        int[] px = rgb.getRGB(0, 0, w, h, null, 0, w);
        double s = 0;
        for (int p : px) {
            int r = (p >> 16) & 255, g = (p >> 8) & 255, b = p & 255;
            int max = Math.max(r, Math.max(g, b)), min = Math.min(r, Math.min(g, b));
            s += max == 0 ? 0 : (max - min) / (double) max;
        }
        return s / px.length;
    }
}
