package dev.impasto.pipeline;

import dev.impasto.pipeline.image.ImageOps;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Random;
import javax.imageio.ImageIO;

/** Synthetic "paintings": strokes of colour with texture, different per seed, so pHash and JPEG size behave like art. */
public final class TestImages {
    private TestImages() {}

    public static BufferedImage painting(long seed, int w, int h) {
        Random r = new Random(seed);
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(new Color(r.nextInt(256), r.nextInt(256), r.nextInt(256)));
        g.fillRect(0, 0, w, h);
        for (int i = 0; i < 40; i++) {
            g.setColor(new Color(r.nextInt(256), r.nextInt(256), r.nextInt(256)));
            int x = r.nextInt(w), y = r.nextInt(h);
            g.fillOval(x - w / 6, y - h / 6, r.nextInt(w / 3) + 8, r.nextInt(h / 3) + 8);
        }
        g.dispose();
        int[] px = img.getRGB(0, 0, w, h, null, 0, w);
        for (int i = 0; i < px.length; i++) {
            int n = r.nextInt(41) - 20;
            int p = px[i];
            int rr = clamp(((p >> 16) & 255) + n), gg = clamp(((p >> 8) & 255) + n), bb = clamp((p & 255) + n);
            px[i] = rr << 16 | gg << 8 | bb;
        }
        img.setRGB(0, 0, w, h, px, 0, w);
        return img;
    }

    private static int clamp(int v) {
        return Math.max(0, Math.min(255, v));
    }

    public static byte[] jpeg(long seed, int w, int h) {
        return ImageOps.jpeg(painting(seed, w, h), 0.9f);
    }

    /** A flat single-colour image: tiny as JPEG, fails the bytes-per-pixel floor. */
    public static byte[] flatJpeg(int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(new Color(120, 140, 160));
        g.fillRect(0, 0, w, h);
        g.dispose();
        return ImageOps.jpeg(img, 0.9f);
    }

    public static byte[] png16(long seed, int w, int h) throws IOException {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_USHORT_GRAY);
        Random r = new Random(seed);
        short[] data = ((java.awt.image.DataBufferUShort) img.getRaster().getDataBuffer()).getData();
        for (int i = 0; i < data.length; i++) data[i] = (short) Math.min(65535, (i % w) * 65535 / w + r.nextInt(2000));
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        ImageIO.write(img, "png", bos);
        return bos.toByteArray();
    }

    /** A PNG whose header claims {@code w x h} but has no pixel data. */
    public static byte[] pngHeaderOnly(int w, int h) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8 + 25 + 12);
        b.put(new byte[] {(byte) 0x89, 'P', 'N', 'G', 13, 10, 26, 10});
        byte[] ihdr = java.nio.ByteBuffer.allocate(17).put("IHDR".getBytes()).putInt(w).putInt(h).put((byte) 8).put((byte) 2)
                .put((byte) 0).put((byte) 0).put((byte) 0).array();
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(ihdr);
        b.putInt(13).put(ihdr).putInt((int) crc.getValue());
        java.util.zip.CRC32 c2 = new java.util.zip.CRC32();
        c2.update("IEND".getBytes());
        b.putInt(0).put("IEND".getBytes()).putInt((int) c2.getValue());
        return b.array();
    }
}
