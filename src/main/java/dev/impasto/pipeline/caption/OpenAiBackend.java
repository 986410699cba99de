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

/**
 * OpenAI-compatible {@code chat/completions} (llama.cpp server, vLLM, Ollama, LM Studio, Gemini's /v1beta/openai):
 * the image as a data URL, the answer at {@code choices[0].message.content}.
 */
public final class OpenAiBackend extends HttpBackend {
    private final URI endpoint;
    private final String model;
    private final int maxTokens;
    private final boolean jsonMode;

    /** @param baseUrl up to the API version, e.g. http://localhost:11434/v1 (Ollama) or http://127.0.0.1:8080/v1 (llama.cpp) */
    public OpenAiBackend(String baseUrl, String model, int maxTokens, boolean jsonMode, Duration timeout) {
        super(timeout);
        String b = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.endpoint = URI.create(b + "/chat/completions");
        this.model = model;
        this.maxTokens = maxTokens;
        this.jsonMode = jsonMode;
    }

    @Override
    public String describe() {
        return "openai-compatible " + model + " at " + endpoint;
    }

    @Override
    public boolean needsKey() {
        return false; // local servers take none; a key is sent when one is configured
    }

    String body(byte[] jpeg, String system, String user) {
        ObjectNode root = Json.object();
        root.put("model", model);
        root.put("temperature", 0);
        root.put("max_tokens", maxTokens);
        if (jsonMode) root.putObject("response_format").put("type", "json_object");
        ArrayNode messages = root.putArray("messages");
        messages.addObject().put("role", "system").put("content", system);
        ObjectNode u = messages.addObject();
        u.put("role", "user");
        ArrayNode content = u.putArray("content");
        content.addObject().put("type", "text").put("text", user);
        content.addObject().put("type", "image_url").putObject("image_url")
                .put("url", "data:image/jpeg;base64," + Base64.getEncoder().encodeToString(jpeg));
        return Json.line(root);
    }

    @Override
    public Reply caption(CaptionItem item, byte[] jpeg, String system, String user, Secret key) {
        Reply[] failure = new Reply[1];
        HttpResponse<String> r = post(endpoint, body(jpeg, system, user), key == null ? null : "Authorization",
                key == null ? null : "Bearer " + key.reveal(), failure);
        if (r == null) return failure[0];
        JsonNode root = json(r.body());
        if (r.statusCode() != 200) {
            JsonNode err = root.path("error");
            String code = err.path("code").asText("") + " " + err.path("type").asText("");
            String msg = brief(err.path("message").asText(r.body()));
            if (r.statusCode() == 429 && code.contains("insufficient_quota")) return new Reply.KeyExhausted("quota used up: " + msg, false);
            return byStatus(r, msg);
        }
        JsonNode choice = root.path("choices").path(0);
        if (choice.isMissingNode()) return new Reply.Malformed("no choices in the answer: " + brief(r.body()));
        if ("content_filter".equals(choice.path("finish_reason").asText())) return new Reply.Fatal("answer blocked: content_filter");
        JsonNode content = choice.path("message").path("content");
        String text;
        if (content.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (JsonNode p : content) sb.append(p.path("text").asText(""));
            text = sb.toString();
        } else text = content.asText("");
        return CaptionParser.parse(text);
    }
}
