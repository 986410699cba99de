package dev.impasto.pipeline.hub;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Exponential backoff with full jitter: attempt n waits a random time in [base*2^n / 2, base*2^n], capped. The
 * random half keeps many clients that failed together from retrying together.
 */
public record Backoff(Duration base, Duration cap, int maxAttempts) {
    public static Backoff standard() {
        return new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(60), 6);
    }

    public Duration delay(int attempt) {
        double ms = Math.min(cap.toMillis(), base.toMillis() * Math.pow(2, Math.min(attempt, 30)));
        return Duration.ofMillis((long) (ms / 2 + ThreadLocalRandom.current().nextDouble() * ms / 2));
    }

    /** A server-given delay when there is one (never above the cap), else the backoff delay. */
    public Duration delay(int attempt, Duration serverSays) {
        if (serverSays != null && !serverSays.isNegative())
            return serverSays.compareTo(cap) > 0 ? cap : serverSays.plusMillis(ThreadLocalRandom.current().nextLong(0, 1 + base.toMillis() / 4));
        return delay(attempt);
    }

    public static void sleep(Duration d) {
        try {
            Thread.sleep(d);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting to retry", e);
        }
    }

    /** Retry-After as seconds or an HTTP date; null when absent or unreadable. */
    public static Duration retryAfter(String header) {
        if (header == null || header.isBlank()) return null;
        String h = header.strip();
        try {
            return Duration.ofMillis((long) (Double.parseDouble(h) * 1000));
        } catch (NumberFormatException e) {
            try {
                var when = java.time.ZonedDateTime.parse(h, java.time.format.DateTimeFormatter.RFC_1123_DATE_TIME);
                Duration d = Duration.between(java.time.ZonedDateTime.now(when.getZone()), when);
                return d.isNegative() ? Duration.ZERO : d;
            } catch (RuntimeException e2) {
                return null;
            }
        }
    }
}
