package dev.impasto.quant;

import java.util.stream.IntStream;

/** Splits [0, count) into contiguous chunks and runs them on the common fork-join pool when there is enough work. */
final class Chunks {
    /** Below this many units of work a single thread is faster than the hand-off. */
    private static final long PARALLEL_THRESHOLD = 1 << 16;

    @FunctionalInterface
    interface RangeBody {
        void run(int from, int to);
    }

    private Chunks() {}

    /**
     * Runs {@code body} over [0, count) in chunks of {@code grain} indices.
     *
     * @param workPerIndex rough cost of one index (elements it touches), used only to decide whether to go parallel
     */
    static void run(int count, int grain, long workPerIndex, RangeBody body) {
        if (count <= 0) return;
        int chunks = (count + grain - 1) / grain;
        if (chunks == 1 || (long) count * workPerIndex < PARALLEL_THRESHOLD) {
            body.run(0, count);
            return;
        }
        IntStream.range(0, chunks).parallel().forEach(c -> body.run(c * grain, Math.min(count, (c + 1) * grain)));
    }
}
