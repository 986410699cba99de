package dev.impasto.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.api.ToyGenerator;
import dev.impasto.eval.ToyEvalFixtures;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end in headless Chromium (Debian's chromium + chromedriver): the page loads the toy model's settings, a
 * prompt is submitted, the progress ends in a picture, which is a valid PNG of the requested size, and lands in the
 * gallery. The screenshot is kept as target/test-artifacts/serve-e2e.png.
 */
class ServeBrowserTest {
    static final byte[] PNG_SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    @Test
    void generateInTheBrowser(@TempDir Path tmp) throws Exception {
        Assumptions.assumeTrue(WebDriver.available(), "needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)");
        ToyEvalFixtures.baseFile();
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        Path profile = Files.createDirectories(tmp.resolve("profile"));
        try (ToyGenerator gen = new ToyGenerator(ToyEvalFixtures.BASE_DIR, Map.of(), quiet);
             DemoServer server = new DemoServer(gen, DemoServer.Options.defaults().withPort(0), quiet).start();
             WebDriver browser = new WebDriver(profile)) {
            browser.open(server.uri());
            browser.await("return document.body.dataset.ready === 'true'", JsonNode::asBoolean, Duration.ofSeconds(15));
            assertTrue(browser.script("return document.getElementById('model').textContent").asText().startsWith("flux-toy"));
            String prompt = browser.find("#prompt");
            browser.clear(prompt);
            browser.type(prompt, "a ring");
            for (String[] f : new String[][] {{"#seed", "11"}, {"#steps", "6"}, {"#width", "96"}, {"#height", "64"}}) {
                String el = browser.find(f[0]);
                browser.clear(el);
                browser.type(el, f[1]);
            }
            browser.click(browser.find("#generate"));
            JsonNode size = browser.await("const i = document.getElementById('result');"
                    + "return i.dataset.job && i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight, i.getAttribute('src')] : null",
                    v -> !v.isNull(), Duration.ofSeconds(20));
            assertEquals(96, size.get(0).asInt());
            assertEquals(64, size.get(1).asInt());
            assertTrue(browser.script("return document.getElementById('status').textContent").asText().startsWith("done in"));
            assertEquals(1, browser.script("return document.querySelectorAll('#gallery img').length").asInt());
            assertTrue(browser.script("return document.getElementById('download').getAttribute('download')").asText().matches("impasto-11-[0-9a-f]{16}\\.png"));

            byte[] png = HttpClient.newHttpClient().send(HttpRequest.newBuilder(server.uri().resolve(size.get(2).asText())).build(),
                    HttpResponse.BodyHandlers.ofByteArray()).body();
            assertArrayEquals(PNG_SIGNATURE, Arrays.copyOf(png, 8));
            BufferedImage img = ImageIO.read(new ByteArrayInputStream(png));
            assertEquals(96, img.getWidth());
            assertEquals(64, img.getHeight());
            assertEquals("a ring", dev.impasto.image.Png.readText(writeTo(tmp.resolve("got.png"), png)).get("prompt"));

            byte[] shot = browser.screenshot();
            assertArrayEquals(PNG_SIGNATURE, Arrays.copyOf(shot, 8));
            Path artifacts = Files.createDirectories(Path.of("target", "test-artifacts"));
            Files.write(artifacts.resolve("serve-e2e.png"), shot);
        }
    }

    private static Path writeTo(Path p, byte[] b) throws java.io.IOException {
        Files.write(p, b);
        return p;
    }
}
