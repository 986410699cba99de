package dev.impasto.pipeline.image;

import static org.junit.jupiter.api.Assertions.*;

import dev.impasto.pipeline.TestImages;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import org.junit.jupiter.api.Test;

class ImageInspectorTest {
    static String code(byte[] b, long maxPixels) {
        try {
            ImageInspector.decode(b, maxPixels);
            return "ok";
        } catch (ImageInspector.Rejected r) {
            return r.code;
        }
    }

    @Test
    void sortsBadInputIntoReasons() throws Exception {
        byte[] good = TestImages.jpeg(1, 200, 150);
        assertEquals("ok", code(good, 1_000_000));
        assertEquals("truncated", code(Arrays.copyOf(good, good.length / 2), 1_000_000));
        byte[] garbage = new byte[500];
        new java.util.Random(3).nextBytes(garbage);
        assertEquals("undecodable", code(garbage, 1_000_000));
        assertEquals("undecodable", code(new byte[0], 1_000_000));
        assertEquals("huge", code(good, 10_000), "30000 px over a 10000 px limit");
        // a 100000 x 100000 PNG header is refused from the header, before any allocation
        assertEquals("huge", code(TestImages.pngHeaderOnly(100_000, 100_000), 50_000_000));
        // trailing bytes after the end marker are not truncation
        byte[] padded = Arrays.copyOf(good, good.length + 1000);
        assertEquals("ok", code(padded, 1_000_000));
    }

    @Test
    void sixteenBitGreyBecomesEightBitRgb() throws Exception {
        DecodedImage d = ImageInspector.decode(TestImages.png16(2, 64, 32), 1_000_000);
        assertEquals(BufferedImage.TYPE_INT_RGB, d.rgb().getType());
        assertTrue(d.conversion().contains("16-bit->8-bit"), d.conversion());
        int p = d.rgb().getRGB(60, 10);
        assertEquals((p >> 16) & 255, p & 255, "grey stays grey");
        assertTrue(((p >> 16) & 255) > 180, "the gradient is bright at the right edge: " + ((p >> 16) & 255));
    }

    @Test
    void cmykJpegIsConvertedToRgb() throws Exception {
        // a 4-channel JPEG written by the JDK encoder: decoders read it as CMYK (Adobe APP14)
        WritableRaster r = Raster.createInterleavedRaster(java.awt.image.DataBuffer.TYPE_BYTE, 64, 48, 4, null);
        for (int y = 0; y < 48; y++) for (int x = 0; x < 64; x++) r.setPixel(x, y, new int[] {0, 200, 200, 0}); // red in CMYK
        ImageWriter w = ImageIO.getImageWritersByFormatName("jpeg").next();
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try (ImageOutputStream ios = ImageIO.createImageOutputStream(bos)) {
            w.setOutput(ios);
            w.write(null, new IIOImage(r, null, null), null);
        } catch (Exception e) {
            org.junit.jupiter.api.Assumptions.abort("this JDK cannot write a 4-channel JPEG: " + e);
        }
        // mark it as Adobe CMYK (APP14, transform 0), as Photoshop writes them
        byte[] plain = bos.toByteArray();
        byte[] app14 = {(byte) 0xFF, (byte) 0xEE, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0};
        byte[] cmyk = new byte[plain.length + app14.length];
        System.arraycopy(plain, 0, cmyk, 0, 2);
        System.arraycopy(app14, 0, cmyk, 2, app14.length);
        System.arraycopy(plain, 2, cmyk, 2 + app14.length, plain.length - 2);
        DecodedImage d = ImageInspector.decode(cmyk, 1_000_000);
        assertEquals(BufferedImage.TYPE_INT_RGB, d.rgb().getType());
        assertTrue(d.conversion().contains("cmyk->rgb"), d.conversion());
        assertFalse(d.keptAsIs(), "a CMYK JPEG is re-encoded as RGB, not copied");
    }

    @Test
    void perceptualHashMatchesRescaledReencodesAndSeparatesDifferentPictures() throws Exception {
        BufferedImage a = TestImages.painting(10, 300, 240);
        BufferedImage aSmall = ImageIO.read(new java.io.ByteArrayInputStream(ImageOps.jpeg(ImageOps.resize(a, 150, 120), 0.6f)));
        long ha = PerceptualHash.of(a), ha2 = PerceptualHash.of(aSmall);
        assertTrue(PerceptualHash.distance(ha, ha2) <= 4, "same picture: " + PerceptualHash.distance(ha, ha2));
        int min = 64;
        for (int s = 11; s < 31; s++) min = Math.min(min, PerceptualHash.distance(ha, PerceptualHash.of(TestImages.painting(s, 300, 240))));
        assertTrue(min > 10, "different pictures are far apart: min distance " + min);
        assertEquals("000000000000000f", PerceptualHash.hex(15));
    }

    @Test
    void colourfulnessAndQualityFloor() {
        BufferedImage grey = new BufferedImage(50, 50, BufferedImage.TYPE_INT_RGB);
        assertEquals(0.0, ImageOps.colourfulness(grey), 1e-9);
        BufferedImage half = new BufferedImage(2, 1, BufferedImage.TYPE_INT_RGB);
        half.setRGB(0, 0, 0xff0000);
        half.setRGB(1, 0, 0x0000ff);
        // rg = {255, 0}, yb = {127.5, -255}: sd_rg 127.5, sd_yb 191.25, means 127.5 / -63.75
        double expected = Math.sqrt(127.5 * 127.5 + 191.25 * 191.25) + 0.3 * Math.sqrt(127.5 * 127.5 + 63.75 * 63.75);
        assertEquals(expected, ImageOps.colourfulness(half), 1e-6);
        assertTrue(ImageOps.jpegQ95BytesPerPixel(new BufferedImage(512, 512, BufferedImage.TYPE_INT_RGB)) < 0.1, "flat 512x512");
        assertTrue(ImageOps.jpegQ95BytesPerPixel(TestImages.painting(3, 200, 200)) > 0.3);
    }
}
