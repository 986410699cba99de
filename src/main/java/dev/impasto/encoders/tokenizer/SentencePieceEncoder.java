package dev.impasto.encoders.tokenizer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Encodes text the way the {@code sentencepiece} library does with a UNIGRAM model: its normalizer (charsmap,
 * whitespace rules, dummy prefix), the "optimized" Viterbi of unigram_model.cc, then the processor's merging of
 * consecutive unknown pieces (or their split into byte pieces when the model has byte fallback).
 *
 * <p>Scores follow the C++ arithmetic exactly, because ties between segmentations are decided by it: piece scores
 * are floats, a candidate path score is the float score plus the float best score so far evaluated in double,
 * compared against the stored float, and stored rounded to float; unknown-piece candidates are summed in float.
 */
final class SentencePieceEncoder {
    private static final float UNK_PENALTY = 10.0f;
    private static final byte[] SPACE_SYMBOL = "\u2581".getBytes(StandardCharsets.UTF_8);

    private final SentencePieceModelFile model;
    private final PrecompiledCharsMap charsMap;   // null: identity normalization
    private final ByteTrie pieces = new ByteTrie(40_000);
    private final ByteTrie userDefined;           // null when the model has none
    private final int unkId;
    private final float minScore, maxScore;
    private final int[] byteIds;                  // id of <0xXX> for each byte, when byte fallback is on

    SentencePieceEncoder(SentencePieceModelFile model, Path source) throws TokenizerFileException {
        this.model = model;
        if (model.modelType != SentencePieceModelFile.UNIGRAM) {
            String kind = switch (model.modelType) {
                case SentencePieceModelFile.BPE -> "BPE";
                case SentencePieceModelFile.WORD -> "WORD";
                case SentencePieceModelFile.CHAR -> "CHAR";
                default -> "type " + model.modelType;
            };
            throw new TokenizerFileException(source, "SentencePiece model is " + kind + "; T5 needs a UNIGRAM model (trainer_spec.model_type = 1)");
        }
        if (model.precompiledCharsmap.length > 0) {
            try {
                charsMap = PrecompiledCharsMap.parse(model.precompiledCharsmap);
            } catch (IllegalArgumentException e) {
                throw new TokenizerFileException(source, "normalizer_spec.precompiled_charsmap is broken: " + e.getMessage(), e);
            }
        } else {
            charsMap = null;
        }
        int unk = -1;
        float min = Float.MAX_VALUE, max = Float.MIN_VALUE;
        ByteTrie user = null;
        byte[][] utf8 = new byte[model.size()][];
        ByteTrie reserved = new ByteTrie(1024);
        boolean[] byteSeen = new boolean[256];
        int[] bytes = model.byteFallback ? new int[256] : null;
        for (int i = 0; i < model.size(); i++) {
            int type = model.types[i];
            utf8[i] = model.pieces[i].getBytes(StandardCharsets.UTF_8);
            boolean normal = type == SentencePieceModelFile.NORMAL || type == SentencePieceModelFile.USER_DEFINED
                    || type == SentencePieceModelFile.UNUSED;
            ByteTrie target = normal ? pieces : reserved;
            if (target.get(utf8[i]) >= 0) {
                throw new TokenizerFileException(source, "piece \"" + model.pieces[i] + "\" (id " + i + ") is defined twice");
            }
            target.put(utf8[i], i);
            if (type == SentencePieceModelFile.NORMAL) {
                min = Math.min(min, model.scores[i]);
                max = Math.max(max, model.scores[i]);
            }
            if (type == SentencePieceModelFile.USER_DEFINED) {
                if (user == null) user = new ByteTrie(64);
                user.put(utf8[i], i);
            }
            if (type == SentencePieceModelFile.UNKNOWN) {
                if (unk >= 0) throw new TokenizerFileException(source, "two unknown pieces (ids " + unk + " and " + i + ")");
                unk = i;
            }
            if (type == SentencePieceModelFile.BYTE) {
                int b = parseBytePiece(model.pieces[i]);
                if (!model.byteFallback || b < 0) {
                    throw new TokenizerFileException(source, "byte piece \"" + model.pieces[i] + "\" (id " + i + ") in a model "
                            + (model.byteFallback ? "but it is not of the form <0xXX>" : "without trainer_spec.byte_fallback"));
                }
                byteSeen[b] = true;
                bytes[b] = i;
            }
        }
        if (unk < 0) throw new TokenizerFileException(source, "the model defines no unknown piece (type UNKNOWN)");
        if (model.byteFallback) {
            for (int b = 0; b < 256; b++) {
                if (!byteSeen[b]) throw new TokenizerFileException(source, String.format("byte_fallback is on but piece <0x%02X> is missing", b));
            }
        }
        this.unkId = unk;
        this.minScore = min;
        this.maxScore = max;
        this.userDefined = user;
        this.byteIds = bytes;
    }

    private static int parseBytePiece(String piece) {
        if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') return -1;
        try {
            return Integer.parseInt(piece.substring(3, 5), 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Ids of the text, without any special token. */
    int[] encode(String text) {
        byte[] normalized = normalize(text.getBytes(StandardCharsets.UTF_8));
        IntList ids = new IntList(normalized.length / 3 + 4);
        encodeNormalized(normalized, ids);
        return ids.toArray();
    }

    // --- normalizer.cc ------------------------------------------------------------------------------------------

    /** Result of one NormalizePrefix step: replacement bytes src[start..end) consuming {@code consumed} input bytes. */
    private static final class Prefix {
        byte[] src;
        int start, end, consumed;

        boolean isSingleSpace() {
            return end - start == 1 && src[start] == ' ';
        }
    }

    private static final byte[] REPLACEMENT_CHAR = {(byte) 0xEF, (byte) 0xBF, (byte) 0xBD};

    private void normalizePrefix(byte[] in, int pos, Prefix p) {
        if (userDefined != null) {
            int len = longestKeyAt(userDefined, in, pos);
            if (len > 0) {
                p.src = in;
                p.start = pos;
                p.end = pos + len;
                p.consumed = len;
                return;
            }
        }
        if (charsMap != null) {
            int[] matched = new int[1];
            int[] range = charsMap.longestPrefix(in, pos, in.length, matched);
            if (range != null) {
                p.src = charsMap.normalizedBytes();
                p.start = range[0];
                p.end = range[1];
                p.consumed = matched[0];
                return;
            }
        }
        int len = validUtf8Length(in, pos);
        if (len == 0) {
            p.src = REPLACEMENT_CHAR;
            p.start = 0;
            p.end = 3;
            p.consumed = 1;
        } else {
            p.src = in;
            p.start = pos;
            p.end = pos + len;
            p.consumed = len;
        }
    }

    private static int longestKeyAt(ByteTrie trie, byte[] in, int pos) {
        int node = ByteTrie.root(), best = 0;
        for (int i = pos; i < in.length; i++) {
            node = trie.child(node, in[i] & 0xFF);
            if (node < 0) break;
            if (trie.value(node) >= 0) best = i + 1 - pos;
        }
        return best;
    }

    /** Length of the well-formed UTF-8 character at pos, or 0 when it is malformed. */
    static int validUtf8Length(byte[] s, int pos) {
        int b0 = s[pos] & 0xFF;
        if (b0 < 0x80) return 1;
        int len, min;
        if (b0 >= 0xC2 && b0 <= 0xDF) { len = 2; min = 0x80; }
        else if (b0 >= 0xE0 && b0 <= 0xEF) { len = 3; min = 0x800; }
        else if (b0 >= 0xF0 && b0 <= 0xF4) { len = 4; min = 0x10000; }
        else return 0;
        if (pos + len > s.length) return 0;
        int cp = b0 & (0xFF >> (len + 1));
        for (int i = 1; i < len; i++) {
            int b = s[pos + i] & 0xFF;
            if ((b & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (b & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        return len;
    }

    byte[] normalize(byte[] in) {
        if (in.length == 0) return in;
        boolean removeExtra = model.removeExtraWhitespaces;
        boolean escape = model.escapeWhitespaces;
        Prefix p = new Prefix();
        int pos = 0;
        if (removeExtra) {
            while (pos < in.length) {
                normalizePrefix(in, pos, p);
                if (!p.isSingleSpace()) break;
                pos += p.consumed;
            }
        }
        if (pos == in.length) return new byte[0];
        ByteBuilder out = new ByteBuilder(in.length * 3);
        if (!model.treatWhitespaceAsSuffix && model.addDummyPrefix) addWhitespace(out, escape);
        boolean prevSpace = removeExtra;
        while (pos < in.length) {
            normalizePrefix(in, pos, p);
            int s = p.start, e = p.end;
            while (prevSpace && s < e && p.src[s] == ' ') s++;
            if (s < e) {
                for (int i = s; i < e; i++) {
                    if (escape && p.src[i] == ' ') out.append(SPACE_SYMBOL);
                    else out.append(p.src[i]);
                }
                prevSpace = p.src[e - 1] == ' ';
            }
            pos += p.consumed;
            if (!removeExtra) prevSpace = false;
        }
        if (removeExtra) {
            byte[] space = escape ? SPACE_SYMBOL : new byte[] {' '};
            while (out.endsWith(space)) out.truncate(out.size() - space.length);
        }
        if (model.treatWhitespaceAsSuffix && model.addDummyPrefix) addWhitespace(out, escape);
        return out.toArray();
    }

    private static void addWhitespace(ByteBuilder out, boolean escape) {
        if (escape) out.append(SPACE_SYMBOL);
        else out.append((byte) ' ');
    }

    // --- unigram_model.cc EncodeOptimized + sentencepiece_processor.cc PopulateSentencePieceText -----------------

    private static int oneCharLen(byte b) {
        return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4".charAt((b & 0xFF) >>> 4);
    }

    private boolean isUnused(int id) {
        return model.types[id] == SentencePieceModelFile.UNUSED;
    }

    private boolean isUserDefined(int id) {
        return model.types[id] == SentencePieceModelFile.USER_DEFINED;
    }

    private boolean isUnknown(int id) {
        return model.types[id] == SentencePieceModelFile.UNKNOWN;
    }

    void encodeNormalized(byte[] s, IntList ids) {
        int size = s.length;
        if (size == 0) return;
        float unkScore = minScore - UNK_PENALTY;
        float[] bestScore = new float[size + 1];
        int[] startsAt = new int[size + 1];
        int[] bestId = new int[size + 1];
        Arrays.fill(startsAt, -1);
        Arrays.fill(bestId, -1);
        int start = 0;
        while (start < size) {
            float tillHere = bestScore[start];
            boolean hasSingleNode = false;
            int mblen = Math.min(oneCharLen(s[start]), size - start);
            int node = ByteTrie.root();
            for (int keyPos = start; keyPos < size; ) {
                node = pieces.child(node, s[keyPos] & 0xFF);
                keyPos++;
                if (node < 0) break;
                int id = pieces.value(node);
                if (id < 0 || isUnused(id)) continue;
                int length = keyPos - start;
                double score = isUserDefined(id) ? (double) ((float) length * maxScore) - 0.1 : model.scores[id];
                double candidate = score + tillHere;
                if (startsAt[keyPos] == -1 || candidate > bestScore[keyPos]) {
                    bestScore[keyPos] = (float) candidate;
                    startsAt[keyPos] = start;
                    bestId[keyPos] = id;
                }
                if (!hasSingleNode && length == mblen) hasSingleNode = true;
            }
            if (!hasSingleNode) {
                int target = start + mblen;
                float candidate = unkScore + tillHere;
                if (startsAt[target] == -1 || candidate > bestScore[target]) {
                    bestScore[target] = candidate;
                    startsAt[target] = start;
                    bestId[target] = unkId;
                }
            }
            start += mblen;
        }
        // Backtrack into (start, end, id) triples in reverse, then emit them forwards.
        IntList rev = new IntList(size / 2 + 2);
        for (int end = size; end > 0; end = startsAt[end]) {
            rev.add(end);
        }
        boolean prevUnk = false;
        for (int k = rev.size() - 1; k >= 0; k--) {
            int end = rev.get(k);
            int begin = startsAt[end];
            int id = bestId[end];
            boolean unk = isUnknown(id);
            if (unk && byteIds != null) {
                for (int i = begin; i < end; i++) ids.add(byteIds[s[i] & 0xFF]);
            } else if (!(prevUnk && unk)) {
                ids.add(id);
            }
            prevUnk = unk;
        }
    }

    /** Piece text of an id (for decoding and diagnostics). */
    String piece(int id) {
        return model.pieces[id];
    }

    int size() {
        return model.size();
    }

    int unkId() {
        return unkId;
    }

    /** Minimal growable byte buffer. */
    static final class ByteBuilder {
        private byte[] buf;
        private int size;

        ByteBuilder(int capacity) {
            buf = new byte[Math.max(16, capacity)];
        }

        void append(byte b) {
            if (size == buf.length) buf = Arrays.copyOf(buf, size * 2);
            buf[size++] = b;
        }

        void append(byte[] bytes) {
            for (byte b : bytes) append(b);
        }

        boolean endsWith(byte[] suffix) {
            if (size < suffix.length) return false;
            for (int i = 0; i < suffix.length; i++) if (buf[size - suffix.length + i] != suffix[i]) return false;
            return true;
        }

        void truncate(int newSize) {
            size = newSize;
        }

        int size() {
            return size;
        }

        byte[] toArray() {
            return Arrays.copyOf(buf, size);
        }
    }
}
