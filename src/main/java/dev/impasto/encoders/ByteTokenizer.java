package dev.impasto.encoders;

import dev.impasto.encoders.tokenizer.TokenEncoding;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The tokenizer of the tiny configurations (tests, CPU demo, full-size benchmarks with random weights): one id per
 * UTF-8 byte, so no vocabulary file is needed. T5 style: byte b -> b + 3, pad 0, eos 1 appended. CLIP style:
 * bos 256, bytes, eos 257 (the largest id, so CLIP's pooling at argmax(ids) finds it), padded with eos.
 * Never used for real weights, whose tokenizers come from their tokenizer files.
 */
public final class ByteTokenizer implements PromptTokenizer {
    private final boolean clip;

    private ByteTokenizer(boolean clip) {
        this.clip = clip;
    }

    public static ByteTokenizer t5() {
        return new ByteTokenizer(false);
    }

    public static ByteTokenizer clip() {
        return new ByteTokenizer(true);
    }

    public static final int CLIP_BOS = 256, CLIP_EOS = 257, T5_PAD = 0, T5_EOS = 1;

    @Override
    public TokenEncoding encode(String text, int maxLength) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[maxLength];
        int specials = clip ? 2 : 1;
        int n = Math.min(b.length, maxLength - specials);
        int pos = 0;
        if (clip) ids[pos++] = CLIP_BOS;
        for (int i = 0; i < n; i++) ids[pos++] = clip ? (b[i] & 0xff) : (b[i] & 0xff) + 3;
        ids[pos++] = clip ? CLIP_EOS : T5_EOS;
        if (clip) Arrays.fill(ids, pos, maxLength, CLIP_EOS);
        return new TokenEncoding(ids, pos, b.length + specials);
    }
}
