package dev.impasto.pipeline.caption;

import dev.impasto.pipeline.Secret;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * API keys with a requests-per-minute budget each. {@link #acquire()} hands out the key that is free soonest,
 * waiting as needed; a key told to back off (429 with retryDelay) sits out that long; a key whose daily quota is
 * spent, or that the server refuses, is retired for the run. Thread-safe.
 */
public final class KeyPool {
    /** All keys are retired. */
    public static final class Exhausted extends Exception {
        public Exhausted(String message) {
            super(message);
        }
    }

    private static final class Key {
        final Secret secret;
        final int index;
        long nextFreeNanos;
        String retired;

        Key(Secret secret, int index) {
            this.secret = secret;
            this.index = index;
        }
    }

    private final List<Key> keys = new ArrayList<>();
    private final long spacingNanos;

    /** @param keys an empty list means a backend without keys: acquire returns null, still rate limited */
    public KeyPool(List<Secret> keys, double requestsPerMinute) {
        if (keys.isEmpty()) this.keys.add(new Key(null, 0));
        for (int i = 0; i < keys.size(); i++) this.keys.add(new Key(keys.get(i), i));
        this.spacingNanos = requestsPerMinute <= 0 ? 0 : (long) (60e9 / requestsPerMinute);
    }

    public record Lease(Secret secret, int index) {}

    public Lease acquire() throws Exhausted, InterruptedException {
        while (true) {
            long wait;
            synchronized (this) {
                Key best = null;
                for (Key k : keys) if (k.retired == null && (best == null || k.nextFreeNanos < best.nextFreeNanos)) best = k;
                if (best == null) {
                    List<String> why = keys.stream().map(k -> "key " + (k.index + 1) + ": " + k.retired).toList();
                    throw new Exhausted("no usable API key left (" + String.join("; ", why) + ")");
                }
                long now = System.nanoTime();
                wait = best.nextFreeNanos - now;
                if (wait <= 0) {
                    best.nextFreeNanos = now + spacingNanos;
                    return new Lease(best.secret, best.index);
                }
            }
            Thread.sleep(Math.max(1, Math.min(wait / 1_000_000, 1000)));
        }
    }

    /** The key may be used again only after {@code pause}. */
    public synchronized void pause(Lease lease, Duration pause) {
        Key k = keys.get(lease.secret == null ? 0 : lease.index);
        k.nextFreeNanos = Math.max(k.nextFreeNanos, System.nanoTime() + pause.toNanos());
    }

    /** @return true if this call retired the key (false if it already was) */
    public synchronized boolean retire(Lease lease, String why) {
        Key k = keys.get(lease.secret == null ? 0 : lease.index);
        if (k.retired != null) return false;
        k.retired = why;
        return true;
    }

    public synchronized int usable() {
        return (int) keys.stream().filter(k -> k.retired == null).count();
    }

    public int size() {
        return keys.size();
    }
}
