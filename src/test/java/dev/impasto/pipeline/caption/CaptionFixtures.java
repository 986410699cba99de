package dev.impasto.pipeline.caption;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.image.ImageOps;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;

/** A small imagefolder whose images carry their index in the red channel, so a fake server knows which one it got. */
final class CaptionFixtures {
    private CaptionFixtures() {}

    static final String[] GENRES = {"landscape", "portrait", "urban", "still_life"};

    static Path dataset(Path root, int n) throws IOException {
        Path train = root.resolve("train");
        Files.createDirectories(train);
        StringBuilder meta = new StringBuilder();
        for (int i = 0; i < n; i++) {
            BufferedImage img = new BufferedImage(96, 80, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = img.createGraphics();
            g.setColor(new Color(10 * i + 5, 128, 128));
            g.fillRect(0, 0, 96, 80);
            g.dispose();
            String name = String.format("img_%03d.jpg", i);
            Files.write(train.resolve(name), ImageOps.jpeg(img, 0.95f));
            meta.append("{\"file_name\": \"").append(name).append("\", \"genre\": \"").append(GENRES[i % 4]).append("\", \"genre_id\": 4}\n");
        }
        Files.writeString(train.resolve("metadata.jsonl"), meta);
        return root;
    }

    /** The image index a request carries (Gemini inline_data or OpenAI data URL). */
    static int imageIndex(byte[] body) throws IOException {
        JsonNode root = Json.parse(new String(body));
        String b64 = null;
        for (JsonNode p : root.path("contents").path(0).path("parts")) if (p.has("inline_data")) b64 = p.path("inline_data").path("data").asText();
        if (b64 == null)
            for (JsonNode m : root.path("messages"))
                for (JsonNode c : m.path("content"))
                    if (c.path("type").asText().equals("image_url")) b64 = c.path("image_url").path("url").asText().replaceFirst("^data:image/jpeg;base64,", "");
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(b64)));
        int red = (img.getRGB(img.getWidth() / 2, img.getHeight() / 2) >> 16) & 255;
        return Math.round((red - 5) / 10f);
    }

    static String geminiAnswer(String caption) {
        String inner = Json.line(Map.of("caption", caption));
        return Json.line(Map.of("candidates", List.of(Map.of("content", Map.of("role", "model", "parts", List.of(Map.of("text", inner))),
                "finishReason", "STOP"))));
    }

    static String gemini429(String quotaId, String retryDelay) {
        return "{\"error\": {\"code\": 429, \"message\": \"You exceeded your current quota\", \"status\": \"RESOURCE_EXHAUSTED\", \"details\": ["
                + "{\"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\", \"violations\": [{\"quotaMetric\": \"generativelanguage.googleapis.com/generate_content_free_tier_requests\", \"quotaId\": \""
                + quotaId + "\"}]}, {\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": \"" + retryDelay + "\"}]}}";
    }

    /** id -> list of journal lines for it. */
    static Map<String, List<JsonNode>> journal(Path file) throws IOException {
        Map<String, List<JsonNode>> m = new HashMap<>();
        for (String l : Files.readAllLines(file)) {
            if (l.isBlank()) continue;
            JsonNode o = Json.parse(l);
            m.computeIfAbsent(o.path("id").asText(), k -> new ArrayList<>()).add(o);
        }
        return m;
    }

    static long okCount(List<JsonNode> lines) {
        return lines == null ? 0 : lines.stream().filter(o -> o.path("status").asText().equals("ok")).count();
    }
}
