package dev.impasto.encoders.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.concurrent.ConcurrentHashMap;

/** The BPE and Unigram models of HF tokenizers, with the same semantics. */
final class HfModels {
    private HfModels() {}

    interface Model {
        /** Appends the ids of one pre-tokenized piece. */
        void tokenize(String piece, IntList out);

        /** Id of a token string, or -1. */
        int tokenToId(String token);

        /** Token string of an id, or null. */
        String idToToken(int id);

        int vocabSize();
    }

    static Model fromJson(JsonNode node) {
        if (node == null || node.isNull()) throw new IllegalArgumentException("the \"model\" section is missing");
        String type = node.has("type") ? node.get("type").asText() : guessType(node);
        return switch (type) {
            case "BPE" -> Bpe.fromJson(node);
            case "Unigram" -> Unigram.fromJson(node);
            default -> throw new IllegalArgumentException("model type \"" + type + "\" is not supported (impasto reads BPE and Unigram)");
        };
    }

    private static String guessType(JsonNode node) {
        // Older files omit the model type; the shape of the vocab tells them apart.
        if (node.has("merges")) return "BPE";
        if (node.path("vocab").isArray()) return "Unigram";
        throw new IllegalArgumentException("model has no \"type\" and is neither BPE (vocab + merges) nor Unigram (vocab list)");
    }

    // --- BPE ----------------------------------------------------------------------------------------------------

    /**
     * Byte-pair encoding as HF's models/bpe: each character becomes a symbol (the first may carry
     * continuing_subword_prefix on the others, the last end_of_word_suffix), then merges are applied lowest rank
     * first, leftmost first among equal ranks.
     */
    static final class Bpe implements Model {
        private final Map<String, Integer> vocab;
        private final String[] idToToken;
        private final LongLongMap merges;                         // (left id, right id) -> rank << 32 | new id
        private final String unkToken;
        private final String continuingSubwordPrefix, endOfWordSuffix;
        private final boolean fuseUnk, byteFallback, ignoreMerges;
        private final Map<String, int[]> cache = new ConcurrentHashMap<>();
        private static final int CACHE_LIMIT = 20_000;

        Bpe(Map<String, Integer> vocab, List<String[]> mergeList, String unkToken, String continuingSubwordPrefix,
            String endOfWordSuffix, boolean fuseUnk, boolean byteFallback, boolean ignoreMerges) {
            this.vocab = vocab;
            int max = -1;
            for (int id : vocab.values()) max = Math.max(max, id);
            idToToken = new String[max + 1];
            for (Map.Entry<String, Integer> e : vocab.entrySet()) {
                if (e.getValue() < 0) throw new IllegalArgumentException("negative id " + e.getValue() + " for \"" + e.getKey() + "\"");
                idToToken[e.getValue()] = e.getKey();
            }
            String prefix = continuingSubwordPrefix == null ? "" : continuingSubwordPrefix;
            merges = new LongLongMap(mergeList.size());
            for (int rank = 0; rank < mergeList.size(); rank++) {
                String[] m = mergeList.get(rank);
                Integer a = vocab.get(m[0]), b = vocab.get(m[1]);
                if (a == null || b == null) {
                    throw new IllegalArgumentException("merge " + (rank + 1) + " \"" + m[0] + " " + m[1] + "\" uses a token that is not in the vocab");
                }
                String merged = m[0] + (m[1].startsWith(prefix) ? m[1].substring(prefix.length()) : m[1]);
                Integer id = vocab.get(merged);
                if (id == null) throw new IllegalArgumentException("merge " + (rank + 1) + " makes \"" + merged + "\", which is not in the vocab");
                merges.put(pairKey(a, b), (long) rank << 32 | id); // a repeated merge takes its last rank, as in HF and openai/CLIP
            }
            this.unkToken = unkToken;
            this.continuingSubwordPrefix = continuingSubwordPrefix;
            this.endOfWordSuffix = endOfWordSuffix;
            this.fuseUnk = fuseUnk;
            this.byteFallback = byteFallback;
            this.ignoreMerges = ignoreMerges;
        }

        static Bpe fromJson(JsonNode node) {
            JsonNode v = node.get("vocab");
            if (v == null || !v.isObject()) throw new IllegalArgumentException("BPE model: \"vocab\" must be an object of token -> id");
            Map<String, Integer> vocab = new HashMap<>(v.size() * 2);
            v.properties().forEach(e -> vocab.put(e.getKey(), e.getValue().asInt()));
            List<String[]> merges = new ArrayList<>();
            for (JsonNode m : HfJson.array(node, "merges")) {
                if (m.isArray() && m.size() == 2) {
                    merges.add(new String[] {m.get(0).asText(), m.get(1).asText()});
                } else if (m.isTextual()) {
                    String s = m.asText();
                    int sp = s.indexOf(' ');
                    if (sp <= 0 || sp != s.lastIndexOf(' ')) throw new IllegalArgumentException("BPE merge \"" + s + "\" is not two tokens separated by one space");
                    merges.add(new String[] {s.substring(0, sp), s.substring(sp + 1)});
                } else {
                    throw new IllegalArgumentException("BPE merge " + m + " is neither \"a b\" nor [\"a\", \"b\"]");
                }
            }
            return new Bpe(vocab, merges, textOrNull(node, "unk_token"), textOrNull(node, "continuing_subword_prefix"),
                    textOrNull(node, "end_of_word_suffix"), node.path("fuse_unk").asBoolean(false),
                    node.path("byte_fallback").asBoolean(false), node.path("ignore_merges").asBoolean(false));
        }

        private static long pairKey(int a, int b) {
            return (long) a << 32 | (b & 0xFFFFFFFFL);
        }

        @Override
        public void tokenize(String word, IntList out) {
            if (word.isEmpty()) return;
            if (ignoreMerges) {
                Integer id = vocab.get(word);
                if (id != null) {
                    out.add(id);
                    return;
                }
            }
            int[] ids = cache.get(word);
            if (ids == null) {
                ids = mergeWord(word);
                if (cache.size() < CACHE_LIMIT) cache.put(word, ids);
            }
            out.addAll(ids);
        }

        private int[] mergeWord(String w) {
            IntList symbols = new IntList(w.length() + 2);
            int unkId = -1;
            boolean pendingUnk = false;
            int n = w.length();
            for (int i = 0; i < n; ) {
                int cp = w.codePointAt(i);
                int next = i + Character.charCount(cp);
                String s = w.substring(i, next);
                if (i > 0 && continuingSubwordPrefix != null) s = continuingSubwordPrefix + s;
                if (next == n && endOfWordSuffix != null) s = s + endOfWordSuffix;
                Integer id = vocab.get(s);
                if (id != null) {
                    if (pendingUnk) {
                        symbols.add(unkId);
                        pendingUnk = false;
                    }
                    symbols.add(id);
                } else {
                    boolean done = false;
                    if (byteFallback) {
                        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
                        int[] byteIds = new int[bytes.length];
                        done = true;
                        for (int k = 0; k < bytes.length && done; k++) {
                            Integer b = vocab.get(String.format("<0x%02X>", bytes[k] & 0xFF));
                            if (b == null) done = false;
                            else byteIds[k] = b;
                        }
                        if (done) for (int b : byteIds) symbols.add(b);
                    }
                    if (!done && unkToken != null) {
                        Integer u = vocab.get(unkToken);
                        if (u == null) throw new IllegalStateException("unk_token \"" + unkToken + "\" is not in the vocab");
                        if (pendingUnk && !fuseUnk) symbols.add(unkId);
                        unkId = u;
                        pendingUnk = true;
                    }
                }
                i = next;
            }
            if (pendingUnk) symbols.add(unkId);
            return mergeAll(symbols.toArray());
        }

        private int[] mergeAll(int[] id) {
            int n = id.length;
            if (n < 2) return id;
            int[] prev = new int[n], next = new int[n];
            boolean[] removed = new boolean[n];
            for (int i = 0; i < n; i++) {
                prev[i] = i - 1;
                next[i] = i + 1 < n ? i + 1 : -1;
            }
            // entries: {rank, pos, newId}; lowest rank first, then lowest position
            PriorityQueue<int[]> queue = new PriorityQueue<>(n, (x, y) -> x[0] != y[0] ? Integer.compare(x[0], y[0]) : Integer.compare(x[1], y[1]));
            for (int i = 0; i + 1 < n; i++) {
                long m = merges.get(pairKey(id[i], id[i + 1]));
                if (m >= 0) queue.add(new int[] {(int) (m >>> 32), i, (int) m});
            }
            while (!queue.isEmpty()) {
                int[] top = queue.poll();
                int pos = top[1];
                if (removed[pos] || next[pos] == -1) continue;
                int right = next[pos];
                long m = merges.get(pairKey(id[pos], id[right]));
                if (m < 0 || (int) m != top[2]) continue;
                id[pos] = top[2];
                removed[right] = true;
                next[pos] = next[right];
                if (next[right] != -1) prev[next[right]] = pos;
                if (prev[pos] >= 0) {
                    long pm = merges.get(pairKey(id[prev[pos]], id[pos]));
                    if (pm >= 0) queue.add(new int[] {(int) (pm >>> 32), prev[pos], (int) pm});
                }
                if (next[pos] != -1) {
                    long nm = merges.get(pairKey(id[pos], id[next[pos]]));
                    if (nm >= 0) queue.add(new int[] {(int) (nm >>> 32), pos, (int) nm});
                }
            }
            IntList out = new IntList(n);
            for (int i = 0; i < n; i++) if (!removed[i]) out.add(id[i]);
            return out.toArray();
        }

        @Override
        public int tokenToId(String token) {
            Integer id = vocab.get(token);
            return id == null ? -1 : id;
        }

        @Override
        public String idToToken(int id) {
            return id >= 0 && id < idToToken.length ? idToToken[id] : null;
        }

        @Override
        public int vocabSize() {
            return vocab.size();
        }
    }

    /** Open-addressing long -> non-negative long map; get returns -1 for a missing key. */
    static final class LongLongMap {
        private long[] keys;
        private long[] values;
        private boolean[] used;
        private int size, mask;

        LongLongMap(int expected) {
            int cap = Integer.highestOneBit(Math.max(16, expected * 2)) << 1;
            keys = new long[cap];
            values = new long[cap];
            used = new boolean[cap];
            mask = cap - 1;
        }

        private static int slot(long k, int mask) {
            k *= 0x9E3779B97F4A7C15L;
            return (int) (k ^ (k >>> 32)) & mask;
        }

        void put(long key, long value) {
            if ((size + 1) * 2 > keys.length) grow();
            int s = slot(key, mask);
            while (used[s] && keys[s] != key) s = (s + 1) & mask;
            if (!used[s]) {
                used[s] = true;
                keys[s] = key;
                size++;
            }
            values[s] = value;
        }

        long get(long key) {
            int s = slot(key, mask);
            while (used[s]) {
                if (keys[s] == key) return values[s];
                s = (s + 1) & mask;
            }
            return -1;
        }

        private void grow() {
            long[] k = keys, v = values;
            boolean[] u = used;
            keys = new long[k.length * 2];
            values = new long[k.length * 2];
            used = new boolean[k.length * 2];
            mask = keys.length - 1;
            size = 0;
            for (int i = 0; i < k.length; i++) if (u[i]) put(k[i], v[i]);
        }
    }

    private static String textOrNull(JsonNode node, String field) {
        JsonNode v = node.get(field);
        return v == null || v.isNull() ? null : v.asText();
    }

    // --- Unigram ------------------------------------------------------------------------------------------------

    /**
     * HF's Unigram model: the same optimized Viterbi as sentencepiece but in double precision over every vocab
     * entry (control and special tokens included), unknown characters scored min_score - 10 and consecutive unknowns
     * fused into one unknown token (fuse_unk is always on), byte pieces used for unknowns when byte_fallback is set.
     */
    static final class Unigram implements Model {
        private static final double UNK_PENALTY = 10.0;
        private final String[] pieces;
        private final double[] scores;
        private final ByteTrie trie;
        private final Map<String, Integer> tokenToId;
        private final int unkId;
        private final boolean byteFallback;
        private final double minScore;

        Unigram(String[] pieces, double[] scores, int unkId, boolean byteFallback) {
            if (pieces.length == 0) throw new IllegalArgumentException("Unigram vocab is empty");
            if (unkId >= pieces.length) throw new IllegalArgumentException("unk_id " + unkId + " is outside the " + pieces.length + "-entry vocab");
            this.pieces = pieces;
            this.scores = scores;
            this.unkId = unkId;
            this.byteFallback = byteFallback;
            trie = new ByteTrie(pieces.length);
            tokenToId = new HashMap<>(pieces.length * 2);
            double min = Double.POSITIVE_INFINITY;
            for (int i = 0; i < pieces.length; i++) {
                trie.put(pieces[i].getBytes(StandardCharsets.UTF_8), i);
                tokenToId.put(pieces[i], i);
                min = Math.min(min, scores[i]);
            }
            minScore = min;
        }

        static Unigram fromJson(JsonNode node) {
            List<String> pieces = new ArrayList<>();
            List<Double> scores = new ArrayList<>();
            for (JsonNode entry : HfJson.array(node, "vocab")) {
                if (!entry.isArray() || entry.size() != 2 || !entry.get(0).isTextual() || !entry.get(1).isNumber()) {
                    throw new IllegalArgumentException("Unigram vocab entry " + pieces.size() + " is not [\"piece\", score]: " + entry);
                }
                pieces.add(entry.get(0).asText());
                scores.add(entry.get(1).asDouble());
            }
            JsonNode unk = node.get("unk_id");
            int unkId = unk == null || unk.isNull() ? -1 : unk.asInt();
            double[] s = new double[scores.size()];
            for (int i = 0; i < s.length; i++) s[i] = scores.get(i);
            return new Unigram(pieces.toArray(new String[0]), s, unkId, node.path("byte_fallback").asBoolean(false));
        }

        @Override
        public void tokenize(String piece, IntList out) {
            if (piece.isEmpty()) return;
            byte[] s = piece.getBytes(StandardCharsets.UTF_8);
            int size = s.length;
            double unkScore = minScore - UNK_PENALTY;
            double[] best = new double[size + 1];
            int[] startsAt = new int[size + 1];
            int[] ids = new int[size + 1];
            Arrays.fill(startsAt, -1);
            int start = 0;
            while (start < size) {
                double tillHere = best[start];
                boolean hasSingleNode = false;
                int mblen = utf8CharLength(s[start]);
                int node = ByteTrie.root();
                for (int keyPos = start; keyPos < size; ) {
                    node = trie.child(node, s[keyPos] & 0xFF);
                    keyPos++;
                    if (node < 0) break;
                    int id = trie.value(node);
                    if (id < 0) continue;
                    double candidate = scores[id] + tillHere;
                    if (startsAt[keyPos] == -1 || candidate > best[keyPos]) {
                        best[keyPos] = candidate;
                        startsAt[keyPos] = start;
                        ids[keyPos] = id;
                    }
                    if (!hasSingleNode && keyPos - start == mblen) hasSingleNode = true;
                }
                if (!hasSingleNode) {
                    if (unkId < 0) throw new IllegalArgumentException("the text has a character outside the vocabulary and the model has no unk_id");
                    int target = Math.min(start + mblen, size);
                    double candidate = unkScore + tillHere;
                    if (startsAt[target] == -1 || candidate > best[target]) {
                        best[target] = candidate;
                        startsAt[target] = start;
                        ids[target] = unkId;
                    }
                }
                start += mblen;
            }
            // Walk back, fusing runs of unknown pieces into one token as HF does.
            IntList ends = new IntList(size / 2 + 2);
            for (int end = size; end > 0; end = startsAt[end]) ends.add(end);
            int k = ends.size() - 1;
            while (k >= 0) {
                int end = ends.get(k);
                int begin = startsAt[end];
                int id = ids[end];
                if (id == unkId) {
                    while (k - 1 >= 0 && ids[ends.get(k - 1)] == unkId) {
                        k--;
                        end = ends.get(k);
                    }
                    emit(s, begin, end, out);
                } else {
                    out.add(id);
                }
                k--;
            }
        }

        private void emit(byte[] s, int begin, int end, IntList out) {
            String token = new String(s, begin, end - begin, StandardCharsets.UTF_8);
            Integer id = tokenToId.get(token);
            if (id != null) {
                out.add(id);
                return;
            }
            if (byteFallback) {
                int[] byteIds = new int[end - begin];
                boolean all = true;
                for (int i = begin; i < end && all; i++) {
                    Integer b = tokenToId.get(String.format("<0x%02X>", s[i] & 0xFF));
                    if (b == null) all = false;
                    else byteIds[i - begin] = b;
                }
                if (all) {
                    out.addAll(byteIds);
                    return;
                }
            }
            out.add(unkId);
        }

        private static int utf8CharLength(byte lead) {
            int b = lead & 0xFF;
            if (b < 0x80) return 1;
            if (b >= 0xF0) return 4;
            if (b >= 0xE0) return 3;
            if (b >= 0xC0) return 2;
            return 1;
        }

        @Override
        public int tokenToId(String token) {
            Integer id = tokenToId.get(token);
            return id == null ? -1 : id;
        }

        @Override
        public String idToToken(int id) {
            return id >= 0 && id < pieces.length ? pieces[id] : null;
        }

        @Override
        public int vocabSize() {
            return pieces.length;
        }
    }
}
