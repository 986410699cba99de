package dev.impasto.util;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * A one-line progress bar for long work: count, rate, ETA and a free-form status (loss, memory, ...).
 *
 * <p>On a terminal the line redraws in place at most every 100 ms; when the output is a file or pipe (CI logs),
 * it prints a plain line every 5 seconds instead, so logs stay readable. Thread-safe.
 */
public final class ProgressBar implements AutoCloseable {
    private static final int WIDTH = 28;
    private final String label;
    private final long total;
    private final String unit;
    private final PrintStream out;
    private final boolean interactive;
    private final LongSupplier clock;
    private final long startNanos;
    private long done;
    /** Work that was already done when the bar started (a resumed run): not counted in the rate. */
    private long resumedAt;
    private String status = "";
    private long lastDrawNanos = Long.MIN_VALUE;
    private boolean closed;

    public ProgressBar(String label, long total, String unit) {
        this(label, total, unit, System.err, System.console() != null, System::nanoTime);
    }

    public ProgressBar(String label, long total, String unit, PrintStream out, boolean interactive, LongSupplier nanoClock) {
        this.label = label;
        this.total = total;
        this.unit = unit;
        this.out = out;
        this.interactive = interactive;
        this.clock = nanoClock;
        this.startNanos = nanoClock.getAsLong();
    }

    /** Starts the count at {@code value} without crediting it to this run's rate (resuming from a checkpoint). */
    public synchronized void resumeAt(long value) {
        done = value;
        resumedAt = value;
        maybeDraw(false);
    }

    public synchronized void step(long n) {
        set(done + n);
    }

    public synchronized void set(long value) {
        done = value;
        maybeDraw(false);
    }

    public synchronized void status(String s) {
        status = s == null ? "" : s;
        maybeDraw(false);
    }

    public synchronized long done() {
        return done;
    }

    /** The current line, as it would be printed. */
    public synchronized String line() {
        double secs = Math.max(1e-9, (clock.getAsLong() - startNanos) / 1e9);
        double rate = Math.max(0, done - resumedAt) / secs;
        StringBuilder sb = new StringBuilder(label).append(' ');
        if (total > 0) {
            int filled = (int) Math.min(WIDTH, WIDTH * done / total);
            sb.append('[').append("#".repeat(filled)).append(".".repeat(WIDTH - filled)).append("] ");
            sb.append(done).append('/').append(total).append(' ').append(unit);
            sb.append(String.format(Locale.ROOT, " %3.0f%%", 100.0 * done / total));
        } else {
            sb.append(done).append(' ').append(unit);
        }
        sb.append(rate >= 1 || rate == 0 ? String.format(Locale.ROOT, " | %.2f %s/s", rate, unit)
                : String.format(Locale.ROOT, " | %.2f s/%s", 1 / rate, unit));
        sb.append(" | ").append(formatDuration(secs));
        if (total > 0 && rate > 0 && done < total) sb.append(" ETA ").append(formatDuration((total - done) / rate));
        if (!status.isEmpty()) sb.append(" | ").append(status);
        return sb.toString();
    }

    private void maybeDraw(boolean force) {
        long now = clock.getAsLong();
        long every = interactive ? 100_000_000L : 5_000_000_000L;
        if (!force && lastDrawNanos != Long.MIN_VALUE && now - lastDrawNanos < every) return;
        lastDrawNanos = now;
        if (interactive) out.print("\r\033[2K" + line());
        else out.println(line());
        out.flush();
    }

    public static String formatDuration(double seconds) {
        if (!Double.isFinite(seconds)) return "--:--";
        Duration d = Duration.ofMillis((long) (seconds * 1000));
        long h = d.toHours();
        return h > 0 ? String.format(Locale.ROOT, "%d:%02d:%02d", h, d.toMinutesPart(), d.toSecondsPart())
                : String.format(Locale.ROOT, "%02d:%02d", d.toMinutesPart(), d.toSecondsPart());
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        maybeDraw(true);
        if (interactive) out.println();
    }
}
