package dev.impasto.encoders;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.awt.image.BufferedImage;
import org.junit.jupiter.api.Test;

/** CLIPImageProcessor's steps on pictures small enough to check by hand. */
class ClipImagesTest {

    static BufferedImage picture(int w, int h, java.util.function.IntBinaryOperator rgb) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, rgb.applyAsInt(x, y));
        return img;
    }

    @Test
    void aSolidColourBecomesItsNormalisedValueEverywhere() {
        // 2 wide, 3 tall -> shortest side 4: 4 x int(4 * 3 / 2) = 4 x 6, cropped to 4 x 4; a solid colour stays solid
        float[] v = ClipImages.pixelValues(picture(2, 3, (x, y) -> 0xFF8000), 4);
        assertEquals(3 * 16, v.length);
        // (255 / 255 - 0.48145466) / 0.26862954, (128 / 255 - 0.4578275) / 0.26130258, (0 - 0.40821073) / 0.27577711
        double[] expect = {1.930336254158794, 0.16889723903118556, -1.4802197687835659};
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 16; i++) assertEquals(expect[c], v[c * 16 + i], 1e-6, "channel " + c + " pixel " + i);
    }

    @Test
    void theShortestSideIsResizedAndTheLongerOneKeepsTheAspect() {
        assertArrayEquals(new int[] {20, 10}, ClipImages.resizedSize(40, 20, 10));
        assertArrayEquals(new int[] {10, 20}, ClipImages.resizedSize(20, 40, 10));
        assertArrayEquals(new int[] {224, 224}, ClipImages.resizedSize(1024, 1024, 224));
        assertArrayEquals(new int[] {224, 745}, ClipImages.resizedSize(100, 333, 224)); // int(224 * 3.33) = int(745.92)
        assertArrayEquals(new int[] {336, 224}, ClipImages.resizedSize(3, 2, 224));
        assertArrayEquals(new int[] {224, 224}, ClipImages.resizedSize(1023, 1024, 224)); // int(224.2) = 224
    }

    @Test
    void theCropIsCentredRoundingTheOffsetDown() {
        // 13 wide x 4 tall, shortest side already 4: no resampling (int(4 * 13 / 4) = 13); left = (13 - 4) // 2 = 4
        float[] v = ClipImages.pixelValues(picture(13, 4, (x, y) -> (10 * x) << 16), 4);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                assertEquals((10 * (4 + x) / 255.0 - ClipImages.MEAN[0]) / ClipImages.STD[0], v[y * 4 + x], 1e-6, "x " + x + " y " + y);
        // 4 wide x 9 tall: top = (9 - 4) // 2 = 2
        v = ClipImages.pixelValues(picture(4, 9, (x, y) -> 20 * y), 4);
        for (int y = 0; y < 4; y++) assertEquals((20 * (2 + y) / 255.0 - ClipImages.MEAN[2]) / ClipImages.STD[2], v[2 * 16 + y * 4 + 1], 1e-6, "y " + y);
    }

    @Test
    void downscalingUsesPilsWidenedBicubicKernel() {
        // 4 -> 2 pixels: scale 2, so the kernel (a = -0.5) is stretched to support 4 and every input pixel is a tap.
        // Output 0 is centred at 1.0: taps at distances 0.25, 0.25, 0.75, 1.25 (in output pixels) weigh
        // 0.8671875, 0.8671875, 0.2265625, -0.0703125 (sum 1.890625); with inputs 0, 0, 255, 255:
        // 255 * 0.15625 / 1.890625 = 21.07 -> 21, and by symmetry 233.93 -> 234.
        int[] out = ClipImages.resize(new int[] {0, 0, 0xFFFFFF, 0xFFFFFF}, 4, 1, 2, 1);
        assertArrayEquals(new int[] {0x151515, 0xEAEAEA}, out);
        assertEquals(0.8671875, ClipImages.cubic(0.25), 1e-15);
        assertEquals(-0.0703125, ClipImages.cubic(1.25), 1e-15);
        // upscaling keeps the kernel's own width: 2 -> 4 of 0, 255 gives a monotone ramp with overshoot clipped
        int[] up = ClipImages.resize(new int[] {0, 0xFFFFFF}, 2, 1, 4, 1);
        for (int i = 1; i < 4; i++) assertEquals(true, (up[i] & 0xff) >= (up[i - 1] & 0xff), "monotone " + java.util.Arrays.toString(up));
        assertEquals(0, up[0] & 0xff);
        assertEquals(255, up[3] & 0xff);
    }

    @Test
    void aNonSquarePictureIsCutFromItsMiddle() {
        // 40 x 20, red left of x = 20 and blue from it: shortest side 10 -> 20 x 10, crop columns 5..14 = source 10..29,
        // so the crop is half red, half blue, blended only next to the boundary (crop column 5)
        float[] v = ClipImages.pixelValues(picture(40, 20, (x, y) -> x < 20 ? 0xFF0000 : 0x0000FF), 10);
        double red = (1 - ClipImages.MEAN[0]) / ClipImages.STD[0], noRed = -ClipImages.MEAN[0] / ClipImages.STD[0];
        for (int y = 0; y < 10; y++) {
            for (int x = 0; x < 3; x++) assertEquals(red, v[y * 10 + x], 1e-6, "x " + x);
            for (int x = 7; x < 10; x++) assertEquals(noRed, v[y * 10 + x], 1e-6, "x " + x);
        }
    }
}
