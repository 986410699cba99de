package dev.impasto.cuda;

import java.util.Locale;

/** Device memory ran out: says how much was asked, what the device had free, and what to try. */
public final class CudaOutOfMemoryException extends CudaException {
    private final long requested, free, total, inUse, cached;

    public CudaOutOfMemoryException(long requested, long free, long total, long inUse, long cached, long peak) {
        super(String.format(Locale.ROOT,
                "out of GPU memory: asked for %s; the device has %s free of %s; impasto holds %s in tensors (peak %s) and %s cached. "
                        + "Try gradient checkpointing (train: --training.gradientCheckpointing true), a 4-bit base (train: --model.baseFormat nf4; sample, eval, serve: --base-format nf4), "
                        + "a smaller resolution or batch, or close other GPU programs.",
                human(requested), human(free), human(total), human(inUse), human(peak), human(cached)));
        this.requested = requested;
        this.free = free;
        this.total = total;
        this.inUse = inUse;
        this.cached = cached;
    }

    public long requested() { return requested; }
    public long free() { return free; }
    public long total() { return total; }
    public long inUse() { return inUse; }
    public long cached() { return cached; }

    public static String human(long bytes) {
        if (bytes < 1024) return bytes + " B";
        String[] u = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int i = -1;
        while (v >= 1024 && i < u.length - 1) {
            v /= 1024;
            i++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, u[i]);
    }
}
