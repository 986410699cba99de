package dev.impasto.encoders.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class T5TokenizerTest {

    private static String pieces(T5Tokenizer t, int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) sb.append(sb.isEmpty() ? "" : "|").append(t.piece(id));
        return sb.toString();
    }

    // --- sentencepiece mode -------------------------------------------------------------------------------------

    @Test
    void sentencePieceTestModelHeader() throws IOException {
        T5Tokenizer t = T5Tokenizer.load(TestFiles.spTestModel());
        assertEquals(1000, t.vocabSize());
        assertEquals(0, t.unkId());
        assertEquals(2, t.eosId());
        assertEquals(2, t.padId(), "no pad piece in this model: padding falls back to </s>");
        assertEquals("<unk>", t.piece(0));
        assertEquals("</s>", t.piece(2));
    }

    @Test
    void normalizerMatchesSentencepiecesOwnExpectations() throws IOException {
        // The first three pairs are asserted by sentencepiece's python tests for this very model file.
        SentencePieceEncoder e = encoder(TestFiles.spTestModel());
        assertEquals("\u2581KADOKAWAABC", normalize(e, "\uff2b\uff21\uff24\uff2f\uff2b\uff21\uff37\uff21ABC"));
        assertEquals("\u2581\u5e73\u6210", normalize(e, "\u337b"));
        assertEquals("\u2581hello\u2581world", normalize(e, "  hello  world  "));
        assertEquals("", normalize(e, "   "));
        assertEquals("", normalize(e, ""));
        // nmt_nfkc (T5's normalizer) also folds tabs, newlines, no-break and zero-width spaces into ' '
        SentencePieceEncoder nmt = encoder(TestFiles.t5likeNmt());
        assertEquals("\u2581a\u2581b\u2581c\u2581d", normalize(nmt, "a\tb\n\nc\u00a0d "));
        assertEquals("\u2581fine\u2581\u00e9", normalize(nmt, "\ufb01ne e\u0301"));
        assertEquals("\u2581a\u2581b", normalize(nmt, "a\u200bb"));
    }

    @Test
    void viterbiPicksTheHighestScoringSegmentation() throws IOException {
        SentencePieceModelFile m = SentencePieceModelFile.read(TestFiles.spTestModel());
        SentencePieceEncoder e = new SentencePieceEncoder(m, TestFiles.spTestModel());
        String[] words = {"\u2581telescope", "\u2581girl", "\u2581understanding", "\u2581KADOKAWA", "\u2581xylophone", "\u2581aaaaaaa", "\u2581Botchan"};
        for (String w : words) {
            byte[] s = w.getBytes(StandardCharsets.UTF_8);
            IntList ids = new IntList(16);
            e.encodeNormalized(s, ids);
            double got = 0;
            StringBuilder joined = new StringBuilder();
            for (int i = 0; i < ids.size(); i++) {
                int id = ids.get(i);
                joined.append(m.pieces[id]);
                got += m.types[id] == SentencePieceModelFile.UNKNOWN ? Float.NaN : m.scores[id];
            }
            assertEquals(w, joined.toString(), "pieces cover the word");
            assertEquals(bestScoreByExhaustiveSearch(m, w), got, 1e-3, w);
        }
    }

    /** Best total score over all ways to cut the word into vocabulary pieces (words without unknown characters). */
    private static double bestScoreByExhaustiveSearch(SentencePieceModelFile m, String w) {
        java.util.Map<String, Float> score = new java.util.HashMap<>();
        for (int i = 0; i < m.size(); i++) if (m.types[i] == SentencePieceModelFile.NORMAL) score.put(m.pieces[i], m.scores[i]);
        double[] best = new double[w.length() + 1];
        Arrays.fill(best, Double.NEGATIVE_INFINITY);
        best[w.length()] = 0;
        for (int start = w.length() - 1; start >= 0; start--) {
            for (int end = start + 1; end <= w.length(); end++) {
                Float s = score.get(w.substring(start, end));
                if (s != null) best[start] = Math.max(best[start], s + best[end]);
            }
        }
        return best[0];
    }

    @Test
    void consecutiveUnknownCharactersBecomeOneUnknownId() throws IOException {
        T5Tokenizer t = T5Tokenizer.load(TestFiles.spTestModel());
        int space = t.tokenize("\u6771")[0];
        assertEquals("\u2581", t.piece(space));
        assertArrayEquals(new int[] {space, 0}, t.tokenize("\u6771\u4eac\u306e\u591c"), "four unknown characters, one <unk>");
        int[] mixed = t.tokenize("a\u6771\u4eacb\u591c");
        assertEquals(2, Arrays.stream(mixed).filter(id -> id == 0).count(), pieces(t, mixed));
        assertEquals(0, mixed[1]);
        assertNotEquals(0, mixed[2]);
    }

    @Test
    void byteFallbackSpellsUnknownCharactersInBytes() throws IOException {
        T5Tokenizer t = T5Tokenizer.load(TestFiles.t5likeNmtByteFallback());
        assertEquals(1256, t.vocabSize());
        assertEquals("<0xE6>", t.piece(1000 + 0xE6));
        int space = t.tokenize("x")[0];
        // 東 is E6 9D B1, 京 is E4 BA AC: each byte one piece, no merging of unknowns
        int[] ids = t.tokenize("\u6771\u4eac");
        assertArrayEquals(new int[] {space, 1000 + 0xE6, 1000 + 0x9D, 1000 + 0xB1, 1000 + 0xE4, 1000 + 0xBA, 1000 + 0xAC}, ids, pieces(t, ids));
        assertEquals("\u6771\u4eac", t.decode(ids));
        TokenEncoding e = t.encode("\u6771", 6);
        assertArrayEquals(new int[] {space, 1000 + 0xE6, 1000 + 0x9D, 1000 + 0xB1, 2, 2}, e.ids());
        assertEquals(5, e.length());
    }

    @Test
    void endOfSequenceTruncationAndPadding() throws IOException {
        T5Tokenizer t = T5Tokenizer.load(TestFiles.spTestModel());
        String text = "I saw a girl with a telescope.";
        int[] raw = t.tokenize(text);
        assertEquals("\u2581I|\u2581saw|\u2581a|\u2581girl|\u2581with|\u2581a", pieces(t, Arrays.copyOf(raw, 6)));
        assertEquals(text, t.decode(raw));

        TokenEncoding full = t.encode(text, 64);
        assertEquals(raw.length + 1, full.length());
        assertArrayEquals(raw, Arrays.copyOf(full.ids(), raw.length));
        assertEquals(t.eosId(), full.ids()[raw.length]);
        assertFalse(full.truncated());

        TokenEncoding cut = t.encode(text, 5);
        assertArrayEquals(new int[] {raw[0], raw[1], raw[2], raw[3], t.eosId()}, cut.ids());
        assertTrue(cut.truncated());
        assertEquals(raw.length + 1, cut.untruncatedLength());

        assertArrayEquals(new int[] {t.eosId(), t.padId(), t.padId()}, t.encode("", 3).ids());
        assertThrows(IllegalArgumentException.class, () -> t.encode(text, 0));
    }

    @Test
    void longPromptFillsFluxLengthsExactly() throws IOException {
        T5Tokenizer t = T5Tokenizer.load(TestFiles.spTestModel());
        String prompt = "a weathered knight in ornate silver armor rides through a misty forest at dawn, ".repeat(40);
        int[] raw = t.tokenize(prompt);
        assertTrue(raw.length > 512, "prompt has " + raw.length + " tokens");
        for (int max : new int[] {T5Tokenizer.FLUX_DEV_MAX_LENGTH, T5Tokenizer.FLUX_SCHNELL_MAX_LENGTH}) {
            TokenEncoding e = t.encode(prompt, max);
            assertEquals(max, e.ids().length);
            assertEquals(max, e.length());
            assertArrayEquals(Arrays.copyOf(raw, max - 1), Arrays.copyOf(e.ids(), max - 1));
            assertEquals(t.eosId(), e.ids()[max - 1]);
        }
    }

    // --- HF tokenizer.json mode ---------------------------------------------------------------------------------

    @Test
    void unigramModelMatchesTheTokenizersDocumentationExample() {
        // tokenizers' own doc example: "abcdacdxx" -> ["abcd", "a", "cd", "xx"] (the two unknown x fused)
        HfModels.Unigram u = new HfModels.Unigram(new String[] {"<unk>", "a", "b", "c", "d", "cd", "ab", "abc", "abcd"},
                new double[] {0, 0, 0, 0, 0, 1, 2, 5, 10}, 0, false);
        IntList ids = new IntList(4);
        u.tokenize("abcdacdxx", ids);
        assertArrayEquals(new int[] {8, 1, 5, 0}, ids.toArray());
    }

    /** A T5-shaped tokenizer.json: <pad>=0, </s>=1, <unk>=2, sentinels after the vocabulary, numbered backwards. */
    private static final String T5_STYLE_JSON = """
            {"version": "1.0", "truncation": null, "padding": null,
             "added_tokens": [
               {"id": 0, "content": "<pad>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
               {"id": 1, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
               {"id": 2, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
               {"id": 11, "content": "<extra_id_1>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
               {"id": 12, "content": "<extra_id_0>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
             "normalizer": NORMALIZER,
             "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Metaspace", "replacement": "\\u2581", "add_prefix_space": true}]},
             "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                                "pair": [], "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}},
             "decoder": {"type": "Metaspace", "replacement": "\\u2581", "add_prefix_space": true},
             "model": {"type": "Unigram", "unk_id": 2, "byte_fallback": false,
                       "vocab": [["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["\\u2581", -2.0], ["\\u2581a", -3.0], ["\\u2581cat", -4.0],
                                 ["s", -3.0], ["c", -5.0], ["a", -5.0], ["t", -5.0], ["\\u2581ca", -6.0]]}}
            """;

    @Test
    void t5StyleTokenizerJson(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), T5_STYLE_JSON.replace("NORMALIZER", "null"));
        Files.write(dir.resolve("spiece.model"), Files.readAllBytes(TestFiles.spTestModel()));
        T5Tokenizer t = T5Tokenizer.load(dir);
        assertTrue(t.toString().contains("tokenizer.json"), "a folder with both files is read through tokenizer.json");
        assertEquals(1, t.eosId());
        assertEquals(0, t.padId());
        assertEquals(2, t.unkId());
        assertEquals(13, t.vocabSize());
        assertArrayEquals(new int[] {4, 5, 6}, t.tokenize("a cats"), "\u2581cat + s beats \u2581ca + t + s");
        assertArrayEquals(new int[] {4, 5, 6}, t.tokenize("  a \n cats  "));
        assertArrayEquals(new int[] {4, 12, 5}, t.tokenize("a <extra_id_0> cat"), "sentinels are cut out before normalization");
        assertArrayEquals(new int[] {4, 1, 11}, t.tokenize("a</s><extra_id_1>"));
        assertArrayEquals(new int[] {3, 2}, t.tokenize("xy"), "unknown characters fuse into one <unk>");
        assertArrayEquals(new int[] {3, 2, 6}, t.tokenize("xys"));
        assertArrayEquals(new int[] {4, 5, 6, 1, 0, 0}, t.encode("a cats", 6).ids());
        TokenEncoding cut = t.encode("a cats", 3);
        assertArrayEquals(new int[] {4, 5, 1}, cut.ids());
        assertTrue(cut.truncated());
        assertEquals("a cats", t.decode(t.encode("a cats", 8).ids()));
    }

    @Test
    void tokenizerJsonWithPrecompiledNormalizerAgreesWithSentencePieceOnPlainText(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("tokenizer.json");
        writeLegacyT5Json(SentencePieceModelFile.read(TestFiles.t5likeNmt()), json);
        T5Tokenizer hf = T5Tokenizer.load(json);
        T5Tokenizer sp = T5Tokenizer.load(TestFiles.t5likeNmt());
        for (String p : new String[] {"I saw a girl with a telescope.", "  multiple   spaces\tand\nnewlines ",
                "\uff26\uff35\uff2c\uff2c width \ufb01ne", "Botchan was a reckless boy, don't you think?", "x"}) {
            assertArrayEquals(sp.encode(p, 128).ids(), hf.encode(p, 128).ids(), p);
        }
    }

    @Test
    void hfPrecompiledNormalizerMatchesSpmPrecompiledExpectations() throws IOException {
        // Expected strings are those of huggingface/spm_precompiled's tests for the same nmt_nfkc table.
        HfNormalizers.Normalizer n = HfNormalizers.precompiled(
                PrecompiledCharsMap.parse(SentencePieceModelFile.read(TestFiles.t5likeNmt()).precompiledCharsmap));
        assertEquals("\u0e40\u0e02\u0e32\u0e44\u0e21\u0e48\u0e44\u0e14\u0e49\u0e1e\u0e39\u0e14\u0e2a\u0e31\u0e01\u0e04\u0e4d\u0e32",
                n.normalize("\u0e40\u0e02\u0e32\u0e44\u0e21\u0e48\u0e44\u0e14\u0e49\u0e1e\u0e39\u0e14\u0e2a\u0e31\u0e01\u0e04\u0e33"));
        assertEquals("\u0921\u093c\u0940 \u0926\u0941\u0916", n.normalize("\u095c\u0940 \u0926\u0941\u0916"));
        assertEquals("\u0622", n.normalize("\u0627\u0653"), "the first match replaces the whole grapheme");
        assertEquals("G", n.normalize("\uD835\uDD3E"));
        assertEquals(" ", n.normalize("\u200d"));
        assertEquals("fi", n.normalize("\ufb01"));
    }

    // --- errors -------------------------------------------------------------------------------------------------

    @Test
    void missingAndBrokenFilesGiveClearErrors(@TempDir Path dir) throws IOException {
        TokenizerFileException missing = assertThrows(TokenizerFileException.class, () -> T5Tokenizer.load(dir.resolve("spiece.model")));
        assertTrue(missing.getMessage().contains("spiece.model") && missing.getMessage().contains("FLUX.1-dev/tokenizer_2/"), missing.getMessage());
        TokenizerFileException empty = assertThrows(TokenizerFileException.class, () -> T5Tokenizer.load(dir));
        assertTrue(empty.getMessage().contains("tokenizer.json or spiece.model"), empty.getMessage());

        Path garbage = dir.resolve("garbage.model");
        Files.writeString(garbage, "<html>404 Not Found</html>");
        TokenizerFileException notProto = assertThrows(TokenizerFileException.class, () -> T5Tokenizer.load(garbage));
        assertTrue(notProto.getMessage().contains("garbage.model") && notProto.getMessage().contains("SentencePiece"), notProto.getMessage());

        Path truncated = dir.resolve("truncated.model");
        Files.write(truncated, Arrays.copyOf(Files.readAllBytes(TestFiles.spTestModel()), 5000));
        TokenizerFileException cut = assertThrows(TokenizerFileException.class, () -> T5Tokenizer.load(truncated));
        assertTrue(cut.getMessage().contains("truncated.model"), cut.getMessage());

        Path bpe = dir.resolve("bpe.model");
        Files.write(bpe, concat(piece("<unk>", 0f, 2), piece("a", -1f, 1), field(2, varintField(3, 2))));
        TokenizerFileException notUnigram = assertThrows(TokenizerFileException.class, () -> T5Tokenizer.load(bpe));
        assertTrue(notUnigram.getMessage().contains("BPE") && notUnigram.getMessage().contains("UNIGRAM"), notUnigram.getMessage());

        Path noUnk = dir.resolve("nounk.model");
        Files.write(noUnk, concat(piece("a", -1f, 1), piece("b", -1f, 1)));
        TokenizerFileException unk = assertThrows(TokenizerFileException.class, () -> T5Tokenizer.load(noUnk));
        assertTrue(unk.getMessage().contains("unknown piece"), unk.getMessage());

        Path json = dir.resolve("tokenizer.json");
        Files.writeString(json, "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0.0]]}, \"pre_tokenizer\": {\"type\": \"Magic\"}}");
        TokenizerFileException magic = assertThrows(TokenizerFileException.class, () -> T5Tokenizer.load(json));
        assertTrue(magic.getMessage().contains("Magic") && magic.getMessage().contains("tokenizer.json"), magic.getMessage());
    }

    @Test
    void aHandBuiltModelFileIsParsed(@TempDir Path dir) throws IOException {
        // <unk>, two control pieces, "▁", "▁ab", "a", "b"; no normalizer spec (identity), default whitespace rules.
        Path file = dir.resolve("tiny.model");
        Files.write(file, concat(piece("<unk>", 0f, 2), piece("<s>", 0f, 3), piece("</s>", 0f, 3), piece("\u2581", -1f, 1),
                piece("\u2581ab", -1.5f, 1), piece("a", -2f, 1), piece("b", -2f, 1)));
        T5Tokenizer t = T5Tokenizer.load(file);
        assertEquals(2, t.eosId());
        assertArrayEquals(new int[] {4, 4, 3, 5}, t.tokenize(" ab  ab   a "));
        assertArrayEquals(new int[] {3, 0, 5}, t.tokenize("\u00e9\u00e8a"), "é and è are one merged <unk>");
    }

    // --- speed --------------------------------------------------------------------------------------------------

    @Test
    void thousandPromptsTakeWellUnderASecond(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("tokenizer.json");
        writeLegacyT5Json(SentencePieceModelFile.read(TestFiles.t5likeNmt()), json);
        for (T5Tokenizer t : new T5Tokenizer[] {T5Tokenizer.load(TestFiles.t5likeNmt()), T5Tokenizer.load(json)}) {
            List<String> prompts = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                prompts.add("photo " + i + " of a woman in a red dress, standing in a field of sunflowers at golden hour, "
                        + "shallow depth of field, 85mm lens, caf\u00e9 style " + (i % 17) + " [trigger" + (i % 5) + "]");
            }
            for (int warm = 0; warm < 3; warm++) for (String p : prompts) t.encode(p, 512);
            long t0 = System.nanoTime();
            long checksum = 0;
            for (String p : prompts) checksum += t.encode(p, 512).length();
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(checksum > 30_000);
            assertTrue(ms < 1000, "1000 T5 prompts took " + ms + " ms with " + t);
        }
    }

    // --- helpers ------------------------------------------------------------------------------------------------

    private static SentencePieceEncoder encoder(Path model) throws IOException {
        return new SentencePieceEncoder(SentencePieceModelFile.read(model), model);
    }

    private static String normalize(SentencePieceEncoder e, String s) {
        return new String(e.normalize(s.getBytes(StandardCharsets.UTF_8)), StandardCharsets.UTF_8);
    }

    /** A tokenizer.json in the shape of T5's (Precompiled normalizer, WhitespaceSplit + Metaspace, $A </s>). */
    static void writeLegacyT5Json(SentencePieceModelFile m, Path out) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        ArrayNode added = root.putArray("added_tokens");
        int unk = -1;
        for (int i = 0; i < m.size(); i++) {
            if (m.types[i] == SentencePieceModelFile.CONTROL || m.types[i] == SentencePieceModelFile.UNKNOWN) {
                ObjectNode t = added.addObject();
                t.put("id", i).put("content", m.pieces[i]).put("single_word", false).put("lstrip", false)
                        .put("rstrip", false).put("normalized", false).put("special", true);
            }
            if (m.types[i] == SentencePieceModelFile.UNKNOWN) unk = i;
        }
        ObjectNode norm = root.putObject("normalizer");
        norm.put("type", "Precompiled").put("precompiled_charsmap", Base64.getEncoder().encodeToString(m.precompiledCharsmap));
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Sequence");
        ArrayNode pres = pre.putArray("pretokenizers");
        pres.addObject().put("type", "WhitespaceSplit");
        pres.addObject().put("type", "Metaspace").put("replacement", "\u2581").put("prepend_scheme", "always").put("split", true);
        ObjectNode post = root.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        single.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
        post.putArray("pair");
        ObjectNode eos = post.putObject("special_tokens").putObject("</s>");
        eos.put("id", "</s>");
        eos.putArray("ids").add(m.eosId);
        eos.putArray("tokens").add("</s>");
        ObjectNode model = root.putObject("model");
        model.put("type", "Unigram").put("unk_id", unk).put("byte_fallback", m.byteFallback);
        ArrayNode vocab = model.putArray("vocab");
        for (int i = 0; i < m.size(); i++) vocab.addArray().add(m.pieces[i]).add((double) m.scores[i]);
        mapper.writeValue(out.toFile(), root);
    }

    private static byte[] varint(long v) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while ((v & ~0x7FL) != 0) {
            out.write((int) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        out.write((int) v);
        return out.toByteArray();
    }

    private static byte[] varintField(int field, long v) {
        return concat(varint((long) field << 3), varint(v));
    }

    private static byte[] field(int field, byte[] payload) {
        return concat(varint((long) field << 3 | 2), varint(payload.length), payload);
    }

    private static byte[] piece(String text, float score, int type) {
        int bits = Float.floatToIntBits(score);
        byte[] fixed = {(byte) bits, (byte) (bits >>> 8), (byte) (bits >>> 16), (byte) (bits >>> 24)};
        return field(1, concat(field(1, text.getBytes(StandardCharsets.UTF_8)), varint(2 << 3 | 5), fixed, varintField(3, type)));
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }
}
