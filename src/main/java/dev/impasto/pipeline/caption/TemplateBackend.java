package dev.impasto.pipeline.caption;

import dev.impasto.pipeline.Secret;
import dev.impasto.pipeline.image.ImageOps;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * Offline captions from the genre and simple pixel facts (orientation, brightness, dominant colour): no network,
 * deterministic, good for tests and for a first training run before a VLM is at hand. The {@code [trigger]}
 * placeholder marks where the trigger word goes.
 */
public final class TemplateBackend implements CaptionBackend {
    @Override
    public String describe() {
        return "offline template captioner";
    }

    @Override
    public boolean needsKey() {
        return false;
    }

    @Override
    public Reply caption(CaptionItem item, byte[] jpeg, String system, String user, Secret key) {
        BufferedImage img;
        try {
            img = ImageIO.read(new ByteArrayInputStream(jpeg));
        } catch (IOException e) {
            img = null;
        }
        if (img == null) return new Reply.Fatal("cannot decode " + item.id());
        BufferedImage small = ImageOps.fit(img, 64);
        long r = 0, g = 0, b = 0;
        int n = small.getWidth() * small.getHeight();
        for (int p : small.getRGB(0, 0, small.getWidth(), small.getHeight(), null, 0, small.getWidth())) {
            r += (p >> 16) & 255;
            g += (p >> 8) & 255;
            b += p & 255;
        }
        double mr = r / (double) n, mg = g / (double) n, mb = b / (double) n;
        double luma = 0.2126 * mr + 0.7152 * mg + 0.0722 * mb;
        String light = luma < 70 ? "dim, dark" : luma > 180 ? "bright, pale" : "soft, even";
        String hue = mb > mr && mb > mg ? "blue" : mg > mr ? "green" : mr - mb > 30 ? "warm red and ochre" : "muted";
        String shape = img.getWidth() > img.getHeight() * 1.15 ? "wide" : img.getHeight() > img.getWidth() * 1.15 ? "tall" : "square";
        String subject = switch (item.genre() == null ? "" : item.genre()) {
            case "landscape" -> "a landscape with open ground under a broad sky";
            case "portrait" -> "a portrait of a single person facing the viewer";
            case "cityscape", "urban" -> "a city view with buildings along a street";
            case "still_life" -> "a still life of objects arranged on a table";
            default -> "a scene";
        };
        return new Reply.Caption(String.format(Locale.ROOT, "[trigger], %s, in a %s composition with %s light and mostly %s colours.",
                subject, shape, light, hue));
    }
}
