package dev.impasto.pipeline.image;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/**
 * A grid of thumbnails with a caption under each, filled cell by cell as images arrive so that only the
 * sheet itself is held in memory, never the images.
 */
public final class ContactSheet {
    private final BufferedImage sheet;
    private final int cell, cols, capacity, labelHeight, fontSize, header;
    private int count;

    public ContactSheet(String title, int capacity, int cols, int cell) {
        this.capacity = Math.max(1, capacity);
        this.cols = Math.max(1, Math.min(cols, this.capacity));
        this.cell = cell;
        this.fontSize = Math.max(10, Math.min(16, cell / 24));
        this.labelHeight = fontSize + 4;
        this.header = title == null ? 0 : 24;
        int rows = (this.capacity + this.cols - 1) / this.cols;
        sheet = new BufferedImage(this.cols * (cell + 4) + 4, header + rows * (cell + labelHeight + 4) + 4, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = sheet.createGraphics();
        g.setColor(new Color(0x20, 0x20, 0x20));
        g.fillRect(0, 0, sheet.getWidth(), sheet.getHeight());
        if (title != null && Charts.fontsAvailable()) { // no fonts (a bare server): the sheet without its title and labels
            g.setColor(Color.WHITE);
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
            g.drawString(title, 6, 17);
        }
        g.dispose();
    }

    public int count() {
        return count;
    }

    /** Adds one image (scaled into the cell); ignored once the sheet is full. */
    public synchronized void add(BufferedImage img, String label) {
        if (count >= capacity) return;
        int col = count % cols, row = count / cols;
        count++;
        BufferedImage t = ImageOps.fit(img, cell);
        int x0 = 4 + col * (cell + 4), y0 = header + 4 + row * (cell + labelHeight + 4);
        Graphics2D g = sheet.createGraphics();
        try {
            g.drawImage(t, x0 + (cell - t.getWidth()) / 2, y0 + (cell - t.getHeight()) / 2, null);
            if (label != null && Charts.fontsAvailable()) {
                g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
                g.setColor(new Color(0xdd, 0xdd, 0xdd));
                g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, fontSize));
                String s = label;
                while (s.length() > 1 && g.getFontMetrics().stringWidth(s) > cell) s = s.substring(0, s.length() - 1);
                g.drawString(s, x0, y0 + cell + fontSize + 1);
            }
        } finally {
            g.dispose();
        }
    }

    public void write(Path png) throws IOException {
        int rows = Math.max(1, (count + cols - 1) / cols);
        int h = Math.min(sheet.getHeight(), header + rows * (cell + labelHeight + 4) + 4);
        ImageIO.write(sheet.getSubimage(0, 0, sheet.getWidth(), h), "png", png.toFile());
    }
}
