package dev.impasto.encoders.tokenizer;

/**
 * GPT-2's reversible byte-to-character table (bytes_to_unicode in openai/CLIP's simple_tokenizer.py and HF's
 * ByteLevel): printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 onwards, so every byte string
 * becomes a string of visible characters that BPE vocabularies can hold.
 */
final class ByteLevelAlphabet {
    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        boolean[] printable = new boolean[256];
        for (int b = '!'; b <= '~'; b++) printable[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) printable[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) printable[b] = true;
        int next = 0;
        for (int b = 0; b < 256; b++) {
            char c = printable[b] ? (char) b : (char) (256 + next++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteLevelAlphabet() {}

    /**
     * The 256 characters in the order bytes_to_unicode() lists them: the printable ranges first ('!'..'~',
     * '¡'..'¬', '®'..'ÿ'), then the remapped bytes in increasing byte order. openai/CLIP numbers its vocabulary in
     * this order.
     */
    static char[] vocabularyOrder() {
        char[] out = new char[256];
        int k = 0;
        for (int b = '!'; b <= '~'; b++) out[k++] = BYTE_TO_CHAR[b];
        for (int b = 0xA1; b <= 0xAC; b++) out[k++] = BYTE_TO_CHAR[b];
        for (int b = 0xAE; b <= 0xFF; b++) out[k++] = BYTE_TO_CHAR[b];
        for (int b = 0; b < 256; b++) if (BYTE_TO_CHAR[b] >= 256) out[k++] = BYTE_TO_CHAR[b];
        return out;
    }

    static String encode(byte[] bytes) {
        char[] out = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) out[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        return new String(out);
    }

    /** Byte of a byte-level character, or -1 for a character outside the table. */
    static int decode(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }
}
