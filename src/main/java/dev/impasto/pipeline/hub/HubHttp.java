package dev.impasto.pipeline.hub;

import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.Secret;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * HTTP to the Hugging Face Hub (or anything speaking its API at {@code baseUrl}). The token goes only to the Hub
 * host: redirects are followed by hand so that a redirect to a storage host never carries it.
 */
public final class HubHttp {
    private final HttpClient client;
    private final URI base;
    private final Secret token;
    private final Backoff backoff;
    private final Duration requestTimeout;

    public HubHttp(String baseUrl, Secret token, Backoff backoff, Duration requestTimeout) {
        String b = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.base = URI.create(b);
        if (base.getScheme() == null || base.getHost() == null)
            throw new PipelineException("hub URL '" + baseUrl + "' is not an absolute http(s) URL");
        this.token = token;
        this.backoff = backoff;
        this.requestTimeout = requestTimeout;
        this.client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(20))
                .followRedirects(HttpClient.Redirect.NEVER).version(HttpClient.Version.HTTP_1_1).build();
    }

    public URI base() {
        return base;
    }

    public Backoff backoff() {
        return backoff;
    }

    public URI url(String path) {
        return URI.create(base + (path.startsWith("/") ? path : "/" + path));
    }

    /** A request builder with the timeout and, for Hub URLs, the token. */
    public HttpRequest.Builder request(URI uri) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(requestTimeout).header("User-Agent", "impasto/0.1");
        if (token != null && sameHost(uri)) b.header("Authorization", "Bearer " + token.reveal());
        return b;
    }

    public boolean sameHost(URI uri) {
        return base.getHost().equalsIgnoreCase(uri.getHost()) && port(base) == port(uri) && base.getScheme().equals(uri.getScheme());
    }

    private static int port(URI u) {
        return u.getPort() >= 0 ? u.getPort() : ("https".equals(u.getScheme()) ? 443 : 80);
    }

    public <T> HttpResponse<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler) throws IOException {
        try {
            return client.send(request, handler);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    /** Sends, following up to 5 redirects by hand (a GET without the token when the host changes). */
    public <T> HttpResponse<T> sendFollowing(HttpRequest request, HttpResponse.BodyHandler<T> handler) throws IOException {
        HttpRequest r = request;
        for (int hop = 0; hop < 6; hop++) {
            HttpResponse<T> resp = send(r, handler);
            int s = resp.statusCode();
            if (s != 301 && s != 302 && s != 303 && s != 307 && s != 308) return resp;
            Optional<String> loc = resp.headers().firstValue("Location");
            if (loc.isEmpty()) return resp;
            URI next = r.uri().resolve(loc.get());
            HttpRequest.Builder b = request(next).GET();
            request.headers().firstValue("Range").ifPresent(v -> b.header("Range", v));
            r = b.build();
        }
        throw new IOException("too many redirects from " + request.uri());
    }

    /**
     * Sends with retries on connection errors, 429 and 5xx (Retry-After honoured). Other statuses are returned to the
     * caller. {@code what} names the operation in errors.
     */
    public <T> HttpResponse<T> sendRetrying(Supplier<HttpRequest> request, HttpResponse.BodyHandler<T> handler, String what) {
        IOException lastError = null;
        HttpResponse<T> last = null;
        for (int attempt = 0; attempt < backoff.maxAttempts(); attempt++) {
            try {
                last = send(request.get(), handler);
                int s = last.statusCode();
                if (s != 429 && s < 500) return last;
                lastError = null;
                Backoff.sleep(backoff.delay(attempt, Backoff.retryAfter(last.headers().firstValue("Retry-After").orElse(null))));
            } catch (IOException e) {
                lastError = e;
                Backoff.sleep(backoff.delay(attempt));
            }
        }
        if (lastError != null)
            throw new PipelineException(what + " failed after " + backoff.maxAttempts() + " attempts: " + lastError.getMessage(), lastError);
        throw new PipelineException(what + " failed after " + backoff.maxAttempts() + " attempts: HTTP " + last.statusCode()
                + " " + brief(last.body()));
    }

    /** The first 300 characters of a response body, for error messages. */
    public static String brief(Object body) {
        if (body == null) return "";
        String s = body instanceof byte[] b ? new String(b, java.nio.charset.StandardCharsets.UTF_8) : body.toString();
        s = s.replaceAll("\\s+", " ").strip();
        return s.length() > 300 ? s.substring(0, 300) + "..." : s;
    }
}
