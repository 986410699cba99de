package dev.impasto.pipeline;

import dev.impasto.util.ProgressBar;
import java.io.PrintStream;
import java.util.Locale;

/** Progress bars for the pipeline: redrawn in place on a terminal, plain lines in logs and tests. */
public final class Progress {
    private Progress() {}

    public static ProgressBar bar(String label, long total, String unit, PrintStream out) {
        boolean tty = out == System.err && System.console() != null;
        return new ProgressBar(label, total, unit, out, tty, System::nanoTime);
    }

    /** "1.5 GB" style sizes for status lines. */
    public static String bytes(double n) {
        String[] units = {"B", "KB", "MB", "GB", "TB"};
        int u = 0;
        while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
        return String.format(Locale.ROOT, u == 0 ? "%.0f %s" : "%.1f %s", n, units[u]);
    }
}
