package dev.impasto.image;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.util.List;

/**
 * Pictures from latents: RGB latents (the toy world) are shown as they are; FLUX's 16-channel latents get a quick
 * linear preview (the per-channel RGB factors ComfyUI uses for FLUX previews, comfy/latent_formats.py) until they
 * go through the VAE decoder. Plus labelled grids.
 */
public final class LatentImages {
    private LatentImages() {}

    /** FLUX latent (model space) -> RGB preview factors [16][3] and bias (ComfyUI latent_formats.Flux). */
    static final double[][] FLUX_RGB = {
        {-0.0346, 0.0244, 0.0681}, {0.0034, 0.0210, 0.0687}, {0.0275, -0.0668, -0.0433}, {-0.0174, 0.0160, 0.0617},
        {0.0859, 0.0721, 0.0329}, {0.0004, 0.0383, 0.0115}, {0.0405, 0.0861, 0.0915}, {-0.0236, -0.0185, -0.0259},
        {-0.0245, 0.0250, 0.1180}, {0.1008, 0.0755, -0.0421}, {-0.0515, 0.0201, 0.0011}, {0.0428, -0.0012, -0.0036},
        {0.0817, 0.0765, 0.0749}, {-0.1264, -0.0522, -0.1103}, {-0.0280, -0.0881, -0.0499}, {-0.1262, -0.0982, -0.0778}};
    static final double[] FLUX_RGB_BIAS = {-0.0329, -0.0718, -0.0851};

    /** An unpacked latent [C, H, W] as an image: C = 3 taken as RGB in [-1, 1], C = 16 previewed linearly. */
    public static BufferedImage fromLatent(float[] chw, int c, int h, int w, int scale) {
        BufferedImage img = new BufferedImage(w * scale, h * scale, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double[] rgb = new double[3];
                if (c == 3) {
                    for (int k = 0; k < 3; k++) rgb[k] = (chw[(k * h + y) * w + x] + 1) / 2;
                } else if (c == 16) {
                    for (int k = 0; k < 3; k++) {
                        double v = FLUX_RGB_BIAS[k];
                        for (int ch = 0; ch < 16; ch++) v += chw[(ch * h + y) * w + x] * FLUX_RGB[ch][k];
                        rgb[k] = (v + 1) / 2;
                    }
                } else {
                    double v = (chw[y * w + x] + 1) / 2;
                    rgb[0] = rgb[1] = rgb[2] = v;
                }
                int p = (clamp(rgb[0]) << 16) | (clamp(rgb[1]) << 8) | clamp(rgb[2]);
                for (int dy = 0; dy < scale; dy++) for (int dx = 0; dx < scale; dx++) img.setRGB(x * scale + dx, y * scale + dy, p);
            }
        return img;
    }

    public static BufferedImage fromRgb(float[] chw, int h, int w) {
        return fromLatent(chw, 3, h, w, 1);
    }

    private static int clamp(double v) {
        return (int) Math.round(Math.max(0, Math.min(1, v)) * 255);
    }

    /** A grid: rows of cells with a label per row (left) and per column (top). */
    public static BufferedImage grid(List<List<BufferedImage>> rows, List<String> rowLabels, List<String> colLabels, String title) {
        int cw = 0, ch = 0;
        for (List<BufferedImage> r : rows)
            for (BufferedImage b : r) {
                cw = Math.max(cw, b.getWidth());
                ch = Math.max(ch, b.getHeight());
            }
        int cols = rows.stream().mapToInt(List::size).max().orElse(0);
        int labelW = rowLabels == null ? 0 : 150, top = (title == null ? 0 : 24) + (colLabels == null ? 0 : 20), pad = 4;
        BufferedImage out = new BufferedImage(labelW + cols * (cw + pad) + pad, top + rows.size() * (ch + pad) + pad, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(new Color(245, 243, 238));
        g.fillRect(0, 0, out.getWidth(), out.getHeight());
        g.setColor(new Color(30, 30, 30));
        boolean text = dev.impasto.pipeline.image.Charts.fontsAvailable();
        if (text) try {
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
            if (title != null) g.drawString(title, pad, 17);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            if (colLabels != null)
                for (int c = 0; c < Math.min(cols, colLabels.size()); c++) g.drawString(colLabels.get(c), labelW + pad + c * (cw + pad), top - 6);
        } catch (RuntimeException | Error e) {
            text = false; // no fonts on this machine (a headless server without fontconfig): the grid without labels
        }
        for (int r = 0; r < rows.size(); r++) {
            int y = top + pad + r * (ch + pad);
            if (text && rowLabels != null && r < rowLabels.size()) g.drawString(shorten(rowLabels.get(r), 22), pad, y + ch / 2 + 5);
            for (int c = 0; c < rows.get(r).size(); c++) g.drawImage(rows.get(r).get(c), labelW + pad + c * (cw + pad), y, null);
        }
        g.dispose();
        return out;
    }

    private static String shorten(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "…";
    }
}
