package dev.impasto.pipeline;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;

/** A real HTTP server on 127.0.0.1 for protocol tests; the handler plays the remote service. */
public final class LoopbackServer implements AutoCloseable {
    public record Request(String method, String path, String query, Map<String, List<String>> headers, byte[] body) {
        public String header(String name) {
            for (var e : headers.entrySet()) if (e.getKey().equalsIgnoreCase(name)) return e.getValue().getFirst();
            return null;
        }

        public String text() {
            return new String(body, java.nio.charset.StandardCharsets.UTF_8);
        }
    }

    public record Response(int status, Map<String, String> headers, byte[] body, long delayMillis, boolean cutAfterBytes, int cutAt) {
        public static Response json(int status, String body) {
            return new Response(status, Map.of("Content-Type", "application/json"), body.getBytes(), 0, false, 0);
        }

        public Response withHeader(String k, String v) {
            var h = new java.util.HashMap<>(headers);
            h.put(k, v);
            return new Response(status, h, body, delayMillis, cutAfterBytes, cutAt);
        }

        public Response delayed(long ms) {
            return new Response(status, headers, body, ms, cutAfterBytes, cutAt);
        }

        /** Sends the full Content-Length header but closes the connection after {@code n} bytes. */
        public Response cutAfter(int n) {
            return new Response(status, headers, body, delayMillis, true, n);
        }
    }

    public interface Handler {
        Response handle(Request r) throws Exception;
    }

    private final HttpServer server;
    public final List<Request> requests = Collections.synchronizedList(new ArrayList<>());

    public LoopbackServer(Handler handler) throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        server.setExecutor(Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "loopback-http");
            t.setDaemon(true);
            return t;
        }));
        server.createContext("/", ex -> serve(ex, handler));
        server.start();
    }

    private void serve(HttpExchange ex, Handler handler) throws IOException {
        try (ex) {
            byte[] body;
            try (InputStream in = ex.getRequestBody()) {
                body = in.readAllBytes();
            }
            Request req = new Request(ex.getRequestMethod(), ex.getRequestURI().getPath(), ex.getRequestURI().getRawQuery(),
                    Map.copyOf(ex.getRequestHeaders()), body);
            requests.add(req);
            Response resp;
            try {
                resp = handler.handle(req);
            } catch (Throwable t) {
                resp = Response.json(599, "{\"error\": \"test handler threw " + t.toString().replace('"', '\'') + "\"}");
            }
            if (resp.delayMillis() > 0) Thread.sleep(resp.delayMillis());
            resp.headers().forEach((k, v) -> ex.getResponseHeaders().add(k, v));
            long len = resp.body().length == 0 ? -1 : resp.body().length;
            ex.sendResponseHeaders(resp.status(), len);
            try (OutputStream out = ex.getResponseBody()) {
                if (resp.cutAfterBytes()) {
                    out.write(resp.body(), 0, Math.min(resp.cutAt(), resp.body().length));
                    out.flush();
                    throw new IOException("cut on purpose");
                }
                out.write(resp.body());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    public String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    public int port() {
        return server.getAddress().getPort();
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
