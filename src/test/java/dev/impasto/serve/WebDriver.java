package dev.impasto.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.function.Predicate;

/**
 * Just enough of the W3C WebDriver protocol, spoken to chromedriver over java.net.http, to drive headless Chromium in
 * tests: a session, navigation, elements by CSS selector, typing, clicks, scripts and screenshots.
 */
final class WebDriver implements AutoCloseable {
    static final Path CHROMIUM = Path.of("/usr/bin/chromium"), CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String ELEMENT = "element-6066-11e4-a52e-4f735466cecf";
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final Process driver;
    private final URI base;
    private final Path profile;
    private String session;

    static boolean available() {
        return Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER);
    }

    WebDriver(Path profile) throws IOException, InterruptedException {
        this.profile = profile;
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        driver = new ProcessBuilder(CHROMEDRIVER.toString(), "--port=" + port, "--allowed-ips=127.0.0.1")
                .redirectErrorStream(true).redirectOutput(profile.resolveSibling("chromedriver.log").toFile()).start();
        base = URI.create("http://127.0.0.1:" + port + "/");
        for (int i = 0; ; i++) {
            try {
                if (call("GET", "status", null).path("value").path("ready").asBoolean()) break;
            } catch (IOException e) {
                // not listening yet
            }
            if (i > 100) throw new IOException("chromedriver did not start (" + profile.resolveSibling("chromedriver.log") + ")");
            Thread.sleep(50);
        }
        ObjectNode caps = JSON.createObjectNode();
        ObjectNode chrome = caps.putObject("capabilities").putObject("alwaysMatch").putObject("goog:chromeOptions");
        chrome.put("binary", CHROMIUM.toString());
        var args = chrome.putArray("args");
        for (String a : List.of("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1100,900", "--user-data-dir=" + profile))
            args.add(a);
        session = call("POST", "session", caps).path("value").path("sessionId").asText();
    }

    private JsonNode call(String method, String path, JsonNode body) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(30)).header("Content-Type", "application/json");
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)));
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        JsonNode n = JSON.readTree(r.body());
        if (r.statusCode() >= 400) throw new IOException("WebDriver " + method + " " + path + ": " + n.path("value").path("message").asText(r.body()));
        return n;
    }

    private JsonNode session(String method, String path, JsonNode body) throws IOException, InterruptedException {
        return call(method, "session/" + session + "/" + path, body).path("value");
    }

    void open(URI url) throws IOException, InterruptedException {
        session("POST", "url", JSON.createObjectNode().put("url", url.toString()));
    }

    String find(String css) throws IOException, InterruptedException {
        return session("POST", "element", JSON.createObjectNode().put("using", "css selector").put("value", css)).path(ELEMENT).asText();
    }

    void clear(String element) throws IOException, InterruptedException {
        session("POST", "element/" + element + "/clear", JSON.createObjectNode());
    }

    void type(String element, String text) throws IOException, InterruptedException {
        session("POST", "element/" + element + "/value", JSON.createObjectNode().put("text", text));
    }

    void click(String element) throws IOException, InterruptedException {
        session("POST", "element/" + element + "/click", JSON.createObjectNode());
    }

    JsonNode script(String js) throws IOException, InterruptedException {
        ObjectNode b = JSON.createObjectNode().put("script", js);
        b.putArray("args");
        return session("POST", "execute/sync", b);
    }

    /** Polls a script until its value passes the test; returns that value. */
    JsonNode await(String js, Predicate<JsonNode> ok, Duration timeout) throws IOException, InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        JsonNode v;
        while (!ok.test(v = script(js))) {
            if (System.nanoTime() > end) throw new AssertionError("timed out waiting for `" + js + "`, last value " + v);
            Thread.sleep(50);
        }
        return v;
    }

    byte[] screenshot() throws IOException, InterruptedException {
        return Base64.getDecoder().decode(session("GET", "screenshot", null).asText());
    }

    @Override
    public void close() {
        try {
            if (session != null) call("DELETE", "session/" + session, null);
        } catch (IOException | InterruptedException e) {
            // the browser is gone already
        }
        driver.destroy();
        try {
            if (!driver.waitFor(5, java.util.concurrent.TimeUnit.SECONDS)) driver.destroyForcibly();
        } catch (InterruptedException e) {
            driver.destroyForcibly();
        }
    }
}
