package dev.impasto.encoders.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.*;

class ClipTokenizerTest {
    private static final int BOS = 49406, EOS = 49407;

    private final ClipTokenizer clip = TestFiles.clip();

    @Test
    void vocabularyIsBuiltAsOpenAiClipBuildsIt() {
        assertEquals(49408, clip.vocabSize());
        assertEquals(BOS, clip.bosId());
        assertEquals(EOS, clip.eosId());
        assertEquals(EOS, clip.padId(), "openai/clip-vit-large-patch14 pads with <|endoftext|>");
        // byte alphabet: '!' is entry 0, 'a' is 0x61 - 0x21 = 64, and "a</w>" is 256 entries later
        assertEquals("!", clip.decode(new int[] {0}));
        assertEquals("a", clip.decode(new int[] {64}));
        assertArrayEquals(new int[] {320}, clip.tokenize("a"));
        assertArrayEquals(new int[] {256}, clip.tokenize("!"));
        // the first merge line of the file is "i n": entry 512 is "in"
        assertEquals("in", clip.decode(new int[] {512}));
    }

    @Test
    void knownPromptMatchesPublishedIds() {
        // "a photo of a cat" is CLIP's canonical example; its ids appear throughout the CLIP / SD literature.
        TokenEncoding e = clip.encode("a photo of a cat");
        assertArrayEquals(new int[] {BOS, 320, 1125, 539, 320, 2368, EOS}, e.unpaddedIds());
        assertEquals(77, e.ids().length);
        assertEquals(7, e.length());
        assertFalse(e.truncated());
        for (int i = 7; i < 77; i++) assertEquals(EOS, e.ids()[i], "padding at " + i);
        assertEquals(6, ClipTokenizer.pooledIndex(e.ids()), "pooled at the first <|endoftext|>");
        int[] mask = e.attentionMask();
        assertEquals(7, Arrays.stream(mask).sum());
        assertEquals(1, mask[6]);
        assertEquals(0, mask[7]);
    }

    @Test
    void normalizationLowercasesCollapsesWhitespaceAndComposes() {
        int[] plain = clip.tokenize("a photo of a cat");
        assertArrayEquals(plain, clip.tokenize("A PHOTO of a Cat"));
        assertArrayEquals(plain, clip.tokenize("  a \t photo\nof\r\n a   cat  "));
        assertArrayEquals(plain, clip.tokenize("a\u00a0photo\u3000of a\u2003cat"), "Unicode White_Space counts as space");
        assertArrayEquals(clip.tokenize("caf\u00e9"), clip.tokenize("cafe\u0301"), "NFC composes e + U+0301");
        assertArrayEquals(clip.tokenize("\u00e9"), clip.tokenize("\u00c9"), "lowercase after NFC");
    }

    @Test
    void contractionsAndPunctuationSplitAsTheRegexSays() {
        assertArrayEquals(concat(clip.tokenize("it"), clip.tokenize("'s")), clip.tokenize("it's"));
        assertArrayEquals(concat(clip.tokenize("don"), clip.tokenize("'t")), clip.tokenize("don't"));
        assertEquals("it 's don 't", clip.decode(clip.tokenize("it's don't")));
        // digits are split one by one, punctuation runs stay together
        assertArrayEquals(concat(clip.tokenize("1"), clip.tokenize("2"), clip.tokenize("3")), clip.tokenize("123"));
        assertArrayEquals(concat(clip.tokenize("hyper"), clip.tokenize("-"), clip.tokenize("realistic")), clip.tokenize("hyper-realistic"));
        assertArrayEquals(concat(clip.tokenize("["), clip.tokenize("trigger"), clip.tokenize("]")), clip.tokenize("[trigger]"));
        assertEquals("[ trigger ] hyper - realistic", clip.decode(clip.tokenize("[trigger] hyper-realistic")));
    }

    @Test
    void specialTokenTextIsRecognised() {
        int[] ids = clip.tokenize("<|startoftext|> hello <|endoftext|> world");
        assertEquals(BOS, ids[0]);
        int eosAt = -1;
        for (int i = 0; i < ids.length; i++) if (ids[i] == EOS) eosAt = i;
        assertArrayEquals(clip.tokenize("hello"), Arrays.copyOfRange(ids, 1, eosAt));
        assertArrayEquals(clip.tokenize("world"), Arrays.copyOfRange(ids, eosAt + 1, ids.length));
        // the pooled position follows argmax(input_ids): the first 49407, here the one typed in the prompt
        TokenEncoding e = clip.encode("hello <|endoftext|> world");
        assertEquals(1 + clip.tokenize("hello").length, ClipTokenizer.pooledIndex(e.ids()));
    }

    @Test
    void emptyAndBlankPromptsAreJustStartAndEnd() {
        for (String s : new String[] {"", "   ", "\t\n"}) {
            TokenEncoding e = clip.encode(s);
            assertArrayEquals(new int[] {BOS, EOS}, e.unpaddedIds(), "prompt \"" + s + "\"");
            assertEquals(2, e.length());
            assertEquals(1, ClipTokenizer.pooledIndex(e.ids()));
        }
    }

    @Test
    void longPromptIsTruncatedKeepingStartAndEnd() {
        String prompt = "a red apple on a wooden table ".repeat(20);
        int[] all = clip.tokenize(prompt);
        assertTrue(all.length > 75);
        TokenEncoding e = clip.encode(prompt);
        assertEquals(77, e.length());
        assertTrue(e.truncated());
        assertEquals(all.length + 2, e.untruncatedLength());
        assertEquals(BOS, e.ids()[0]);
        assertEquals(EOS, e.ids()[76]);
        assertArrayEquals(Arrays.copyOf(all, 75), Arrays.copyOfRange(e.ids(), 1, 76));
        assertEquals(76, ClipTokenizer.pooledIndex(e.ids()));
        // a prompt of exactly 75 tokens fits without truncation
        int[] exactly = Arrays.copyOf(all, 75);
        String fits = clip.decode(exactly);
        TokenEncoding f = clip.encode(fits);
        assertEquals(77, f.length());
        assertFalse(f.truncated());
    }

    @Test
    void nonLatinTextGoesThroughTheByteAlphabet() {
        for (String s : new String[] {"\u6771\u4eac\u306e\u591c", "\uD83C\uDFA8\uD83D\uDD8C\uFE0F", "caf\u00e9 cr\u00e8me", "\u041f\u0440\u0438\u0432\u0435\u0442"}) {
            int[] ids = clip.tokenize(s);
            assertTrue(ids.length > 0);
            for (int id : ids) assertTrue(id >= 0 && id < BOS, "no special or unknown id for " + s);
            assertEquals(s.toLowerCase(java.util.Locale.ROOT), clip.decode(ids), "byte-level round trip");
        }
    }

    @Test
    void bpeMatchesAnIndependentOpenAiStyleMergeLoop() throws IOException {
        OpenAiReference ref = new OpenAiReference(TestFiles.clipBpe());
        String[] prompts = {
                "a photo of a cat", "A majestic Lion, standing on a ROCK at sunset!!! (Cinematic lighting; 35mm.)",
                "3 apples, 12 oranges and 1,000,000 stars", "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e", "\u6771\u4eac\u306e\u591c",
                "\uD83C\uDFA8\uD83D\uDD8C\uFE0F painting", "it's a dog's life, don't you think? we'd've",
                "[trigger] style, ohwx person, hyper-realistic", "supercalifragilisticexpialidocious antidisestablishmentarianism",
                "aaaaaaaaaaaaaaaa bbbbbbbbbbbb lllllllll", "!!!???...,,,;;;", "snake_case_words and camelCaseWords"};
        for (String p : prompts) assertArrayEquals(ref.encode(p), clip.tokenize(p), p);
    }

    @Test
    void vocabJsonAndMergesTxtGiveTheSameIds(@TempDir Path dir) throws IOException {
        writeHfSlowFiles(dir, null);
        ClipTokenizer fromFolder = ClipTokenizer.load(dir);
        for (String p : new String[] {"a photo of a cat", "\u6771\u4eac\u306e\u591c \uD83C\uDFA8", "it's [trigger] 123"}) {
            assertArrayEquals(clip.tokenize(p), fromFolder.tokenize(p), p);
        }
        assertEquals(EOS, fromFolder.padId());
    }

    @Test
    void padTokenComesFromTokenizerConfig(@TempDir Path dir) throws IOException {
        // Stable Diffusion 2's tokenizer pads with "!" (id 0); the config file says so.
        writeHfSlowFiles(dir, "!");
        ClipTokenizer sd2 = ClipTokenizer.load(dir);
        assertEquals(0, sd2.padId());
        TokenEncoding e = sd2.encode("a cat");
        assertArrayEquals(new int[] {BOS, 320, 2368, EOS, 0, 0}, Arrays.copyOf(e.ids(), 6));
        assertEquals(3, ClipTokenizer.pooledIndex(e.ids()));
    }

    @Test
    void tokenizerJsonWithBpeModelIsRead(@TempDir Path dir) throws IOException {
        // A tiny hand-made CLIP-style tokenizer.json: the merges make "ab</w>" from "a", "b</w>".
        String json = """
                {"version": "1.0", "truncation": null, "padding": null,
                 "added_tokens": [
                   {"id": 6, "content": "<|startoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true},
                   {"id": 7, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true}],
                 "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Replace", "pattern": {"Regex": "\\\\s+"}, "content": " "}, {"type": "Lowercase"}]},
                 "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex": "'s|'t|'re|'ve|'m|'ll|'d|[\\\\p{L}]+|[\\\\p{N}]|[^\\\\s\\\\p{L}\\\\p{N}]+"}, "behavior": "Removed", "invert": true},
                    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
                 "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", 7], "cls": ["<|startoftext|>", 6], "trim_offsets": false, "add_prefix_space": false},
                 "decoder": {"type": "ByteLevel"},
                 "model": {"type": "BPE", "dropout": null, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "", "end_of_word_suffix": "</w>",
                           "fuse_unk": false, "byte_fallback": false,
                           "vocab": {"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4, "ba": 5, "<|startoftext|>": 6, "<|endoftext|>": 7},
                           "merges": ["a b</w>", ["b", "a"]]}}
                """;
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, json);
        ClipTokenizer t = ClipTokenizer.load(dir);
        assertArrayEquals(new int[] {4}, t.tokenize("AB"));
        assertArrayEquals(new int[] {1, 4}, t.tokenize("bab"), "a b</w> has rank 0, so it wins over b a");
        assertArrayEquals(new int[] {5, 2}, t.tokenize("baa"), "b a merges; the final a</w> stays");
        assertArrayEquals(new int[] {0, 4}, t.tokenize("aab"), "a + ab</w>");
        assertArrayEquals(new int[] {4, 7, 2}, t.tokenize("ab <|endoftext|>a"));
        assertArrayEquals(new int[] {7, 4}, t.tokenize("c ab"), "unknown c becomes unk_token");
        TokenEncoding e = t.encode("ab ab", 5);
        assertArrayEquals(new int[] {6, 4, 4, 7, 7}, e.ids());
        assertEquals(4, e.length());
    }

    @Test
    void missingOrBrokenFilesGiveClearErrors(@TempDir Path dir) throws IOException {
        TokenizerFileException missing = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.load(dir.resolve("nope")));
        assertTrue(missing.getMessage().contains("nope") && missing.getMessage().contains("FLUX.1-dev/tokenizer/"), missing.getMessage());
        TokenizerFileException empty = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.load(dir));
        assertTrue(empty.getMessage().contains("vocab.json") && empty.getMessage().contains("tokenizer.json"), empty.getMessage());
        assertEquals(dir, empty.path());

        Path notGzip = dir.resolve("bpe_simple_vocab_16e6.txt.gz");
        Files.writeString(notGzip, "this is not gzip");
        TokenizerFileException bad = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.load(notGzip));
        assertTrue(bad.getMessage().contains("bpe_simple_vocab_16e6.txt.gz"), bad.getMessage());

        Path vocab = dir.resolve("vocab.json");
        Files.writeString(vocab, "{\"a\": 0}");
        TokenizerFileException noMerges = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.load(vocab));
        assertTrue(noMerges.getMessage().contains("merges.txt"), noMerges.getMessage());

        Path json = dir.resolve("broken.json");
        Files.writeString(json, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
        TokenizerFileException wordPiece = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.load(json));
        assertTrue(wordPiece.getMessage().contains("WordPiece"), wordPiece.getMessage());

        Path shapeless = dir.resolve("shapeless.json");
        Files.writeString(shapeless, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, "
                + "\"post_processor\": {\"type\": \"RobertaProcessing\"}}");
        TokenizerFileException malformed = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.load(shapeless));
        assertTrue(malformed.getMessage().contains("shapeless.json") && malformed.getMessage().contains("malformed"), malformed.getMessage());

        Path notJson = dir.resolve("tokenizer.json");
        Files.writeString(notJson, "<html>rate limited</html>");
        TokenizerFileException html = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.load(notJson));
        assertTrue(html.getMessage().contains("JSON"), html.getMessage());
    }

    @Test
    void thousandPromptsTakeWellUnderASecond() {
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            prompts.add("photo " + i + " of a woman in a red dress, standing in a field of sunflowers at golden hour, "
                    + "shallow depth of field, 85mm lens, style " + (i % 17) + " [trigger" + (i % 5) + "]");
        }
        for (int warm = 0; warm < 3; warm++) for (String p : prompts) clip.encode(p);
        long t0 = System.nanoTime();
        long checksum = 0;
        for (String p : prompts) checksum += clip.encode(p).length();
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(checksum > 20_000);
        assertTrue(ms < 1000, "1000 CLIP prompts took " + ms + " ms");
    }

    // --- helpers ------------------------------------------------------------------------------------------------

    private static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    /** vocab.json + merges.txt as HF's slow CLIP tokenizer files, built from the openai merges list. */
    private static void writeHfSlowFiles(Path dir, String padToken) throws IOException {
        List<String> merges = readOpenAiMerges(TestFiles.clipBpe());
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode vocab = mapper.createObjectNode();
        int id = 0;
        char[] alphabet = ByteLevelAlphabet.vocabularyOrder();
        for (char c : alphabet) vocab.put(String.valueOf(c), id++);
        for (char c : alphabet) vocab.put(c + "</w>", id++);
        for (String m : merges) vocab.put(m.replace(" ", ""), id++);
        vocab.put("<|startoftext|>", id++);
        vocab.put("<|endoftext|>", id);
        mapper.writeValue(dir.resolve("vocab.json").toFile(), vocab);
        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\n" + String.join("\n", merges) + "\n");
        if (padToken != null) {
            ObjectNode config = mapper.createObjectNode();
            config.put("pad_token", padToken);
            config.put("model_max_length", 77);
            mapper.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        }
    }

    private static List<String> readOpenAiMerges(Path gz) throws IOException {
        String text;
        try (InputStream in = new GZIPInputStream(Files.newInputStream(gz))) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        String[] lines = text.split("\n", -1);
        return new ArrayList<>(Arrays.asList(lines).subList(1, 49152 - 256 - 2 + 1));
    }

    /**
     * A second, deliberately different BPE: simple_tokenizer.py's loop (take the lowest-ranked adjacent pair, merge
     * every occurrence of it left to right, repeat), against the heap-based merging of HfModels.Bpe.
     */
    private static final class OpenAiReference {
        private final Map<String, Integer> ranks = new HashMap<>();
        private final Map<String, Integer> encoder = new HashMap<>();
        private static final Pattern PAT = Pattern.compile("'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
                Pattern.UNICODE_CHARACTER_CLASS);

        OpenAiReference(Path gz) throws IOException {
            List<String> merges = readOpenAiMerges(gz);
            int id = 0;
            char[] alphabet = ByteLevelAlphabet.vocabularyOrder();
            for (char c : alphabet) encoder.put(String.valueOf(c), id++);
            for (char c : alphabet) encoder.put(c + "</w>", id++);
            for (int r = 0; r < merges.size(); r++) {
                ranks.put(merges.get(r), r);
                encoder.put(merges.get(r).replace(" ", ""), id++);
            }
        }

        int[] encode(String text) {
            String clean = text.replaceAll("\\s+", " ").strip().toLowerCase(java.util.Locale.ROOT);
            List<Integer> out = new ArrayList<>();
            Matcher m = PAT.matcher(java.text.Normalizer.normalize(clean, java.text.Normalizer.Form.NFC));
            while (m.find()) {
                String token = ByteLevelAlphabet.encode(m.group().getBytes(StandardCharsets.UTF_8));
                for (String piece : bpe(token)) out.add(encoder.get(piece));
            }
            return out.stream().mapToInt(Integer::intValue).toArray();
        }

        private List<String> bpe(String token) {
            List<String> word = new ArrayList<>();
            for (int i = 0; i < token.length() - 1; i++) word.add(String.valueOf(token.charAt(i)));
            word.add(token.charAt(token.length() - 1) + "</w>");
            while (word.size() > 1) {
                String best = null;
                int bestRank = Integer.MAX_VALUE;
                for (int i = 0; i + 1 < word.size(); i++) {
                    Integer r = ranks.get(word.get(i) + " " + word.get(i + 1));
                    if (r != null && r < bestRank) {
                        bestRank = r;
                        best = word.get(i) + " " + word.get(i + 1);
                    }
                }
                if (best == null) break;
                String first = best.substring(0, best.indexOf(' ')), second = best.substring(best.indexOf(' ') + 1);
                List<String> next = new ArrayList<>();
                for (int i = 0; i < word.size(); ) {
                    if (i + 1 < word.size() && word.get(i).equals(first) && word.get(i + 1).equals(second)) {
                        next.add(first + second);
                        i += 2;
                    } else {
                        next.add(word.get(i++));
                    }
                }
                word = next;
            }
            return word;
        }
    }
}
