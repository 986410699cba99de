package dev.impasto.pipeline.caption;

import java.time.Duration;

/** What one request to a captioning backend came to. */
public sealed interface Reply {
    /** A caption that parsed and validated. */
    record Caption(String text) implements Reply {}

    /** Worth another try after {@code after} (null: use backoff): 429 per minute, 5xx, timeouts, resets. */
    record Retry(String why, Duration after) implements Reply {}

    /** The answer came but was not the JSON asked for; retried a bounded number of times. */
    record Malformed(String why) implements Reply {}

    /** This key can't be used any more in this run (PerDay quota, key refused); the item is tried with another key. */
    record KeyExhausted(String why, boolean itemFails) implements Reply {}

    /** No retry: 400, 403, a blocked prompt. The item is reported failed. */
    record Fatal(String why) implements Reply {}
}
