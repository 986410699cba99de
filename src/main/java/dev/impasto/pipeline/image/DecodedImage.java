package dev.impasto.pipeline.image;

import java.awt.image.BufferedImage;

/**
 * An image decoded to 8-bit sRGB.
 * @param format the container format as ImageIO names it ("jpeg", "png", ...)
 * @param conversion what was done to reach 8-bit RGB ("" when nothing: the original bytes can be kept as they are)
 */
public record DecodedImage(BufferedImage rgb, int width, int height, String format, String conversion) {
    public boolean keptAsIs() {
        return conversion.isEmpty();
    }
}
