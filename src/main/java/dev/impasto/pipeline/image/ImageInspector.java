package dev.impasto.pipeline.image;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.stream.ImageInputStream;

/**
 * Reads untrusted image bytes without trusting them: the size comes from the header before any pixel is
 * decoded (so a decompression bomb is refused, not allocated), truncated files are caught through the
 * reader's warnings (the JPEG reader otherwise pads them with grey), and CMYK / 16-bit / alpha / grey /
 * palette images are brought to 8-bit sRGB.
 */
public final class ImageInspector {
    private ImageInspector() {}

    /** Why an image cannot be used; {@code code} is stable (reports count by it), {@code detail} is for people. */
    public static final class Rejected extends Exception {
        public final String code;

        public Rejected(String code, String detail) {
            super(detail);
            this.code = code;
        }
    }

    /** Width and height from the header only. */
    public record Header(int width, int height, String format) {}

    public static Header header(byte[] bytes) throws Rejected {
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(bytes))) {
            ImageReader reader = readerFor(in);
            try {
                reader.setInput(in, true, true);
                return new Header(reader.getWidth(0), reader.getHeight(0), reader.getFormatName().toLowerCase(Locale.ROOT));
            } finally {
                reader.dispose();
            }
        } catch (IOException | RuntimeException e) {
            throw new Rejected("undecodable", "cannot read the image header: " + e.getMessage());
        }
    }

    /**
     * Decodes to 8-bit sRGB.
     * @param maxPixels images with more pixels than this are refused before decoding
     */
    public static DecodedImage decode(byte[] bytes, long maxPixels) throws Rejected {
        if (bytes == null || bytes.length == 0) throw new Rejected("undecodable", "empty image bytes");
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(bytes))) {
            ImageReader reader = readerFor(in);
            try {
                reader.setInput(in, true, false);
                String format = reader.getFormatName().toLowerCase(Locale.ROOT);
                int w = reader.getWidth(0), h = reader.getHeight(0);
                if (w <= 0 || h <= 0) throw new Rejected("undecodable", "header gives size " + w + "x" + h);
                if ((long) w * h > maxPixels)
                    throw new Rejected("huge", w + "x" + h + " = " + ((long) w * h / 1_000_000) + " MP, over the limit of "
                            + maxPixels / 1_000_000 + " MP");
                List<String> warnings = new ArrayList<>();
                reader.addIIOReadWarningListener((src, warning) -> warnings.add(warning));
                String conversion = "";
                ImageTypeSpecifier raw = rawType(reader);
                if (raw != null && raw.getColorModel().getColorSpace().getType() == ColorSpace.TYPE_CMYK) conversion = "cmyk->rgb";
                BufferedImage img = reader.read(0);
                if (format.startsWith("jp") && !hasJpegEnd(bytes)) warnings.add("no end-of-image marker");
                for (String w0 : warnings) {
                    String lw = w0.toLowerCase(Locale.ROOT);
                    if (lw.contains("premature") || lw.contains("end-of-image") || lw.contains("truncat") || lw.contains("corrupt"))
                        throw new Rejected("truncated", "image data ends early (" + w0 + ")");
                }
                if (img.getColorModel().getColorSpace().getType() == ColorSpace.TYPE_CMYK) conversion = "cmyk->rgb";
                int bits = img.getColorModel().getComponentSize(0);
                if (bits > 8) conversion = join(conversion, bits + "-bit->8-bit");
                if (img.getColorModel().hasAlpha()) conversion = join(conversion, "alpha->white");
                if (!format.startsWith("jp") && !format.equals("png")) conversion = join(conversion, format + "->re-encoded");
                return new DecodedImage(toRgb(img), w, h, format, conversion);
            } finally {
                reader.dispose();
            }
        } catch (Rejected r) {
            throw r;
        } catch (IOException | RuntimeException e) {
            String m = String.valueOf(e.getMessage()).toLowerCase(Locale.ROOT);
            if (m.contains("eof") || m.contains("premature") || m.contains("truncat") || m.contains("unexpected end"))
                throw new Rejected("truncated", "image data ends early (" + e.getMessage() + ")");
            throw new Rejected("undecodable", "cannot decode: " + e.getClass().getSimpleName() + ": " + e.getMessage());
        } catch (OutOfMemoryError e) {
            throw new Rejected("huge", "not enough memory to decode this image");
        }
    }

    private static ImageReader readerFor(ImageInputStream in) throws IOException {
        if (in == null) throw new IOException("no image input stream");
        Iterator<ImageReader> it = ImageIO.getImageReaders(in);
        if (!it.hasNext()) throw new IOException("unknown image format (magic bytes match no reader)");
        return it.next();
    }

    private static ImageTypeSpecifier rawType(ImageReader reader) {
        try {
            return reader.getRawImageType(0);
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /**
     * Whether an end-of-image marker follows the first start-of-scan. The marker segments before it are walked by
     * their lengths (so an EXIF thumbnail's own markers are skipped); entropy-coded data stuffs every 0xFF as FF 00,
     * so an FF D9 after the first SOS is the real end, whatever bytes trail it.
     */
    static boolean hasJpegEnd(byte[] b) {
        int pos = 2;
        int sos = -1;
        while (pos + 4 <= b.length) {
            if ((b[pos] & 0xff) != 0xFF) return false;
            int marker = b[pos + 1] & 0xff;
            if (marker == 0xFF) { pos++; continue; } // fill byte
            if (marker == 0xDA) { sos = pos; break; }
            if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) { pos += 2; continue; }
            int len = ((b[pos + 2] & 0xff) << 8) | (b[pos + 3] & 0xff);
            if (len < 2) return false;
            pos += 2 + len;
        }
        if (sos < 0) return false;
        for (int i = sos + 2; i < b.length - 1; i++)
            if ((b[i] & 0xff) == 0xFF && (b[i + 1] & 0xff) == 0xD9) return true;
        return false;
    }

    private static String join(String a, String b) {
        return a.isEmpty() ? b : a + "," + b;
    }

    /** Any BufferedImage as TYPE_INT_RGB (alpha over white; 16-bit and grey through Java2D's colour conversion). */
    public static BufferedImage toRgb(BufferedImage img) {
        if (img.getType() == BufferedImage.TYPE_INT_RGB) return img;
        BufferedImage out = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, img.getWidth(), img.getHeight());
            g.drawImage(img, 0, 0, null);
        } finally {
            g.dispose();
        }
        return out;
    }
}
