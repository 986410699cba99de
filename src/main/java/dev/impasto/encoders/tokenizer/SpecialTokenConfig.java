package dev.impasto.encoders.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads a special token's text (e.g. "pad_token") from the tokenizer_config.json or special_tokens_map.json that
 * HF model folders keep beside the vocabulary files. Either file may be absent; a value may be a plain string or an
 * AddedToken object with a "content" field.
 */
final class SpecialTokenConfig {
    private SpecialTokenConfig() {}

    static String find(Path folder, String key) throws TokenizerFileException {
        if (folder == null) return null;
        for (String name : new String[] {"tokenizer_config.json", "special_tokens_map.json"}) {
            Path file = folder.resolve(name);
            if (!Files.isRegularFile(file)) continue;
            JsonNode root;
            try {
                root = new ObjectMapper().readTree(file.toFile());
            } catch (IOException e) {
                throw new TokenizerFileException(file, "cannot read as JSON (" + e.getMessage() + ")", e);
            }
            JsonNode v = root == null ? null : root.get(key);
            if (v == null || v.isNull()) continue;
            if (v.isTextual()) return v.asText();
            if (v.isObject() && v.has("content")) return v.get("content").asText();
        }
        return null;
    }
}
