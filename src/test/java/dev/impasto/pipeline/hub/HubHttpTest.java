package dev.impasto.pipeline.hub;

import static org.junit.jupiter.api.Assertions.*;

import dev.impasto.pipeline.LoopbackServer;
import dev.impasto.pipeline.LoopbackServer.Response;
import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.Secret;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class HubHttpTest {
    @Test
    void redirectsToAnotherHostDropTheTokenAndKeepTheRange() throws Exception {
        try (LoopbackServer cdn = new LoopbackServer(r -> {
                 assertNull(r.header("Authorization"), "the token stays with the Hub");
                 assertEquals("bytes=5-", r.header("Range"));
                 return new Response(206, Map.of(), "56789".getBytes(), 0, false, 0);
             });
             LoopbackServer hub = new LoopbackServer(r -> {
                 assertEquals("Bearer hf_x", r.header("Authorization"));
                 return new Response(302, Map.of("Location", cdn.url() + "/blob?sig=1"), new byte[0], 0, false, 0);
             })) {
            HubHttp http = new HubHttp(hub.url(), Secret.of("hf_x", "test"), new Backoff(Duration.ofMillis(1), Duration.ofMillis(5), 3), Duration.ofSeconds(5));
            HttpResponse<String> r = http.sendFollowing(http.request(http.url("/datasets/a/b/resolve/main/f")).header("Range", "bytes=5-").GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(206, r.statusCode());
            assertEquals("56789", r.body());
            assertEquals(1, cdn.requests.size());
        }
    }

    @Test
    void retriesServerErrorsThenGivesUpNamingTheOperation() throws Exception {
        AtomicInteger n = new AtomicInteger();
        try (LoopbackServer hub = new LoopbackServer(r -> n.incrementAndGet() < 3 ? Response.json(503, "{}").withHeader("Retry-After", "0")
                : Response.json(200, "{\"ok\": true}"))) {
            HubHttp http = new HubHttp(hub.url(), null, new Backoff(Duration.ofMillis(1), Duration.ofMillis(5), 4), Duration.ofSeconds(5));
            HttpResponse<String> r = http.sendRetrying(() -> http.request(http.url("/x")).GET().build(), HttpResponse.BodyHandlers.ofString(), "listing");
            assertEquals(200, r.statusCode());
            assertEquals(3, n.get());
        }
        try (LoopbackServer hub = new LoopbackServer(r -> Response.json(500, "{\"error\": \"boom\"}"))) {
            HubHttp http = new HubHttp(hub.url(), null, new Backoff(Duration.ofMillis(1), Duration.ofMillis(5), 3), Duration.ofSeconds(5));
            PipelineException e = assertThrows(PipelineException.class,
                    () -> http.sendRetrying(() -> http.request(http.url("/x")).GET().build(), HttpResponse.BodyHandlers.ofString(), "listing x"));
            assertTrue(e.getMessage().startsWith("listing x failed after 3 attempts: HTTP 500"), e.getMessage());
            assertEquals(3, hub.requests.size());
        }
    }
}
