package dev.impasto.pipeline.caption;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.Secret;
import java.net.URI;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Base64;
import java.util.Locale;

/** Gemini {@code models/{model}:generateContent} with the image inline and a JSON answer asked for. */
public final class GeminiBackend extends HttpBackend {
    private final URI endpoint;
    private final String model;
    private final int maxOutputTokens;

    /** @param baseUrl e.g. https://generativelanguage.googleapis.com */
    public GeminiBackend(String baseUrl, String model, int maxOutputTokens, Duration timeout) {
        super(timeout);
        String b = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.endpoint = URI.create(b + "/v1beta/models/" + model + ":generateContent");
        this.model = model;
        this.maxOutputTokens = maxOutputTokens;
    }

    @Override
    public String describe() {
        return "gemini " + model + " at " + endpoint.getHost();
    }

    String body(byte[] jpeg, String system, String user) {
        ObjectNode root = Json.object();
        root.putObject("systemInstruction").putArray("parts").addObject().put("text", system);
        ObjectNode content = root.putArray("contents").addObject();
        content.put("role", "user");
        ArrayNode parts = content.putArray("parts");
        parts.addObject().putObject("inline_data").put("mime_type", "image/jpeg").put("data", Base64.getEncoder().encodeToString(jpeg));
        parts.addObject().put("text", user);
        ObjectNode gen = root.putObject("generationConfig");
        gen.put("temperature", 0);
        gen.put("maxOutputTokens", maxOutputTokens);
        gen.put("responseMimeType", "application/json");
        return Json.line(root);
    }

    @Override
    public Reply caption(CaptionItem item, byte[] jpeg, String system, String user, Secret key) {
        Reply[] failure = new Reply[1];
        HttpResponse<String> r = post(endpoint, body(jpeg, system, user), "x-goog-api-key", key.reveal(), failure);
        if (r == null) return failure[0];
        JsonNode root = json(r.body());
        if (r.statusCode() != 200) {
            JsonNode err = root.path("error");
            String msg = err.path("status").asText("") + " " + brief(err.path("message").asText(r.body()));
            if (r.statusCode() == 429) {
                java.time.Duration delay = null;
                String quotaId = "";
                for (JsonNode d : err.path("details")) {
                    if (d.has("retryDelay")) delay = parseDelay(d.path("retryDelay").asText());
                    for (JsonNode v : d.path("violations")) quotaId += v.path("quotaId").asText("") + " ";
                }
                if (quotaId.contains("PerDay")) return new Reply.KeyExhausted("daily quota used up (" + quotaId.strip() + ")", false);
                if (delay == null) delay = dev.impasto.pipeline.hub.Backoff.retryAfter(r.headers().firstValue("Retry-After").orElse(null));
                return new Reply.Retry("HTTP 429 " + msg + (quotaId.isBlank() ? "" : " (" + quotaId.strip() + ")"), delay);
            }
            if (r.statusCode() == 400 && msg.contains("API_KEY_INVALID")) return new Reply.KeyExhausted("HTTP 400 " + msg, true);
            return byStatus(r, msg);
        }
        String block = root.path("promptFeedback").path("blockReason").asText("");
        if (!block.isEmpty()) return new Reply.Fatal("prompt blocked: " + block);
        JsonNode cand = root.path("candidates").path(0);
        if (cand.isMissingNode()) return new Reply.Malformed("no candidates in the answer: " + brief(r.body()));
        String finish = cand.path("finishReason").asText("");
        if (finish.equals("SAFETY") || finish.equals("PROHIBITED_CONTENT") || finish.equals("BLOCKLIST") || finish.equals("SPII")
                || finish.equals("RECITATION") || finish.equals("IMAGE_SAFETY"))
            return new Reply.Fatal("answer blocked: finishReason " + finish);
        StringBuilder text = new StringBuilder();
        for (JsonNode p : cand.path("content").path("parts")) if (p.has("text") && !p.path("thought").asBoolean(false)) text.append(p.path("text").asText());
        if (finish.equals("MAX_TOKENS") && text.length() == 0) return new Reply.Malformed("answer cut at maxOutputTokens with no text");
        return CaptionParser.parse(text.toString());
    }

    /** "34s", "1.5s", "250ms" as Gemini writes durations. */
    static Duration parseDelay(String s) {
        String t = s.strip().toLowerCase(Locale.ROOT);
        try {
            if (t.endsWith("ms")) return Duration.ofMillis((long) Double.parseDouble(t.substring(0, t.length() - 2)));
            if (t.endsWith("s")) return Duration.ofMillis((long) (Double.parseDouble(t.substring(0, t.length() - 1)) * 1000));
        } catch (NumberFormatException e) {
            return null;
        }
        return null;
    }
}
