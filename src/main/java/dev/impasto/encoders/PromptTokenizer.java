package dev.impasto.encoders;

import dev.impasto.encoders.tokenizer.TokenEncoding;

/** A text encoder's tokenizer: the prompt as exactly {@code maxLength} ids (special tokens included, padded). */
@FunctionalInterface
public interface PromptTokenizer {
    TokenEncoding encode(String text, int maxLength);
}
