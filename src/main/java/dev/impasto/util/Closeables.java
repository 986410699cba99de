package dev.impasto.util;

import java.util.List;

/** Closing what an object owns. */
public final class Closeables {
    private Closeables() {}

    /**
     * Closes {@code owned} last-first (a thing may depend on what was made before it) and empties the list. A failing
     * close stops there with an IllegalStateException around its exception, leaving the list as it was.
     */
    public static void closeReversed(List<? extends AutoCloseable> owned) {
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        owned.clear();
    }

    /** Closes each of {@code cs} that is not null, best effort: for unwinding a failed load, where the first error is the one to report. */
    public static void closeQuietly(AutoCloseable... cs) {
        for (AutoCloseable c : cs) {
            if (c == null) continue;
            try {
                c.close();
            } catch (Exception ignored) {
                // the caller is already reporting a failure
            }
        }
    }
}
