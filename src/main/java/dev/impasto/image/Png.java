package dev.impasto.image;

import dev.impasto.io.AtomicFiles;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageOutputStream;

/** PNG output with tEXt chunks (prompt, seed, settings travel inside the picture), written atomically. */
public final class Png {
    private Png() {}

    public static void write(BufferedImage img, Path file, Map<String, String> text) throws IOException {
        AtomicFiles.writeStream(file, os -> write(img, os, text));
    }

    public static void write(BufferedImage img, OutputStream os, Map<String, String> text) throws IOException {
        Iterator<ImageWriter> it = ImageIO.getImageWritersByFormatName("png");
        ImageWriter w = it.next();
        try (ImageOutputStream ios = ImageIO.createImageOutputStream(os)) {
            w.setOutput(ios);
            IIOMetadata meta = w.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(img), null);
            if (text != null && !text.isEmpty()) {
                IIOMetadataNode root = new IIOMetadataNode("javax_imageio_png_1.0");
                IIOMetadataNode t = new IIOMetadataNode("tEXt");
                for (var e : text.entrySet()) {
                    IIOMetadataNode entry = new IIOMetadataNode("tEXtEntry");
                    entry.setAttribute("keyword", e.getKey());
                    entry.setAttribute("value", latin1(e.getValue()));
                    t.appendChild(entry);
                }
                root.appendChild(t);
                meta.mergeTree("javax_imageio_png_1.0", root);
            }
            w.write(null, new IIOImage(img, null, meta), null);
        } finally {
            w.dispose();
        }
    }

    /** tEXt is Latin-1: other characters become '?' (iTXt would carry them; the values here are ASCII). */
    private static String latin1(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        for (char c : s.toCharArray()) sb.append(c < 256 ? c : '?');
        return sb.toString();
    }

    /** The tEXt entries of a PNG file. */
    public static Map<String, String> readText(Path file) throws IOException {
        try (var in = ImageIO.createImageInputStream(file.toFile())) {
            var readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) throw new IOException(file + ": not an image");
            var r = readers.next();
            r.setInput(in);
            IIOMetadata meta = r.getImageMetadata(0);
            var root = (IIOMetadataNode) meta.getAsTree("javax_imageio_png_1.0");
            var out = new java.util.LinkedHashMap<String, String>();
            var entries = root.getElementsByTagName("tEXtEntry");
            for (int i = 0; i < entries.getLength(); i++) {
                var e = (IIOMetadataNode) entries.item(i);
                out.put(e.getAttribute("keyword"), e.getAttribute("value"));
            }
            r.dispose();
            return out;
        }
    }
}
