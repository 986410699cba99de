package dev.impasto.pipeline.caption;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.hub.Backoff;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;

/** Shared HTTP plumbing of the remote backends: timeouts, and the status codes every API means the same by. */
abstract class HttpBackend implements CaptionBackend {
    static final HttpClient CLIENT = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(15))
            .version(HttpClient.Version.HTTP_1_1).build();
    final Duration timeout;

    HttpBackend(Duration timeout) {
        this.timeout = timeout;
    }

    /** Posts JSON; transport failures become {@link Reply.Retry}. Returns null in {@code failure[0]} on success. */
    HttpResponse<String> post(URI uri, String body, String headerName, String headerValue, Reply[] failure) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(timeout).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        if (headerName != null) b.header(headerName, headerValue);
        try {
            return CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofString());
        } catch (HttpTimeoutException e) {
            failure[0] = new Reply.Retry("timed out after " + timeout.toSeconds() + " s", null);
        } catch (IOException e) {
            failure[0] = new Reply.Retry("connection failed: " + e.getMessage(), null);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            failure[0] = new Reply.Fatal("interrupted");
        }
        return null;
    }

    /** Classification of non-200 answers that is the same for every API. */
    static Reply byStatus(HttpResponse<String> r, String message) {
        int s = r.statusCode();
        Duration after = Backoff.retryAfter(r.headers().firstValue("Retry-After").orElse(null));
        if (s == 429 || s == 500 || s == 502 || s == 503 || s == 504) return new Reply.Retry("HTTP " + s + " " + message, after);
        // 401: the key itself is refused, so it is retired; 403 may be about this request alone: the item fails, unretried
        if (s == 401) return new Reply.KeyExhausted("HTTP 401 " + message, true);
        return new Reply.Fatal("HTTP " + s + " " + message);
    }

    static JsonNode json(String body) {
        try {
            return Json.parse(body);
        } catch (Exception e) {
            return Json.object();
        }
    }

    static String brief(String s) {
        return CaptionParser.brief(s == null ? "" : s);
    }
}
