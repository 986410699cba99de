package dev.impasto.util;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The progress line: count, percentage, rate and ETA from a fake clock; a resumed run's earlier work is not its rate. */
class ProgressBarTest {
    final AtomicLong now = new AtomicLong(1_000_000_000L);
    final ByteArrayOutputStream sink = new ByteArrayOutputStream();

    ProgressBar bar() {
        return new ProgressBar("train", 100, "it", new PrintStream(sink, true, StandardCharsets.UTF_8), false, now::get);
    }

    @Test
    void rateAndEtaFollowTheClock() {
        try (ProgressBar b = bar()) {
            now.addAndGet(10_000_000_000L); // 10 s
            b.set(25);
            String line = b.line();
            assertTrue(line.contains("25/100 it  25%"), line);
            assertTrue(line.contains("2.50 it/s"), line);
            assertTrue(line.contains("ETA 00:30"), line);
        }
    }

    @Test
    void resumedWorkIsNotCountedInTheRate() {
        try (ProgressBar b = bar()) {
            b.resumeAt(60); // a checkpoint at step 60, no time spent in this run yet
            String first = b.line();
            assertTrue(first.contains("60/100 it  60%"), first);
            assertTrue(first.contains("0.00 it/s"), first);
            assertFalse(first.contains("ETA"), "no ETA before this run has a rate: " + first);
            now.addAndGet(4_000_000_000L); // 4 s for 8 more steps
            b.set(68);
            String line = b.line();
            assertTrue(line.contains("2.00 it/s"), line);
            assertTrue(line.contains("ETA 00:16"), line);
            assertEquals(68, b.done());
        }
    }
}
