package dev.impasto.encoders;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.encoders.tokenizer.ClipTokenizer;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A whole CLIP from files in transformers' CLIPModel layout: the same numbers as in memory, and clear errors for wrong files. */
class ClipModelTest {
    final CpuBackend be = new CpuBackend();
    final ClipModel.Configs tiny = ClipModel.Configs.tiny();
    static final Path TOKENIZER = Path.of("src/test/resources/dev/impasto/encoders/tokenizer/bpe_simple_vocab_16e6.txt.gz");

    /** A random tiny CLIP whose every tensor is recorded, so that it can be written as a file. */
    RecordingWeights recorded() {
        RecordingWeights rec = new RecordingWeights(21);
        ClipModel.load(be, DType.F32, tiny, rec, ByteTokenizer.clip(), "recorded").close();
        return rec;
    }

    static float[] pixels(int batch) {
        return ClipVisionEncoderTest.randomPixels(batch * 3 * 32 * 32, 4);
    }

    static int[][] ids(String... prompts) {
        int[][] ids = new int[prompts.length][];
        for (int i = 0; i < ids.length; i++) ids[i] = ByteTokenizer.clip().encode(prompts[i], 77).ids();
        return ids;
    }

    @Test
    void textEmbedsAreThePooledOutputTimesTheTextProjection() {
        RecordingWeights rec = new RecordingWeights(3);
        int[][] ids = ids("a harbour at dawn", "");
        try (ClipModel m = ClipModel.load(be, DType.F32, tiny, rec, ByteTokenizer.clip(), "recorded");
             Tensor e = m.textEmbeds(ids);
             ClipTextEncoder.Output o = m.text().forward(ids, new int[] {ClipTokenizer.pooledIndex(ids[0]), ClipTokenizer.pooledIndex(ids[1])})) {
            assertArrayEquals(new long[] {2, tiny.projection()}, e.shape());
            float[] pooled = be.toFloats(o.pooled()), proj = (float[]) rec.tensors.get("text_projection.weight")[1], got = be.toFloats(e);
            int h = tiny.text().hidden(), d = tiny.projection();
            for (int b = 0; b < 2; b++)
                for (int j = 0; j < d; j++) {
                    double s = 0;
                    for (int i = 0; i < h; i++) s += (double) proj[j * h + i] * pooled[b * h + i];
                    assertEquals(s, got[b * d + j], 1e-5, "row " + b + " column " + j);
                }
            float[][] t = m.embedTexts(java.util.List.of("a harbour at dawn"));
            for (int j = 0; j < d; j++) assertEquals(got[j], t[0][j], 1e-6f);
        }
    }

    @Test
    void aCLIPModelFileLoadsToTheSameModel(@TempDir Path dir) throws Exception {
        RecordingWeights rec = recorded();
        Path file = dir.resolve("model.safetensors");
        rec.write(file, k -> k, DType.F32);
        int[][] ids = ids("stripes", "a red disc");
        try (ClipModel mem = ClipModel.load(be, DType.F32, tiny, rec.random, ByteTokenizer.clip(), "memory");
             ClipModel disk = ClipModel.load(be, DType.F32, tiny, file, TOKENIZER);
             Tensor tm = mem.textEmbeds(ids); Tensor td = disk.textEmbeds(ids)) {
            assertArrayEquals(be.toFloats(tm), be.toFloats(td));
            float[][] im = mem.embedPixels(pixels(2), 2), id = disk.embedPixels(pixels(2), 2);
            for (int b = 0; b < 2; b++) assertArrayEquals(im[b], id[b]);
            assertTrue(disk.describe().contains("model.safetensors"), disk.describe());
        }
        // a prefix in front of every key (a checkpoint saved from a wrapper) is found from the anchor and removed
        Path prefixed = dir.resolve("prefixed.safetensors");
        rec.write(prefixed, k -> "clip." + k, DType.BF16);
        try (ClipModel m = ClipModel.load(be, DType.F32, tiny, prefixed, TOKENIZER)) {
            assertEquals(tiny.projection(), m.embedPixels(pixels(1), 1)[0].length);
        }
    }

    @Test
    void aFileWithoutTheVisualProjectionIsRefusedNamingTheKeyAndTheFile(@TempDir Path dir) throws Exception {
        RecordingWeights rec = recorded();
        Path file = dir.resolve("model.safetensors");
        rec.write(file, k -> k.equals("visual_projection.weight") ? null : k, DType.F32);
        var e = assertThrows(IllegalArgumentException.class, () -> ClipModel.load(be, DType.F32, tiny, file, TOKENIZER));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("\"visual_projection.weight\" is missing"), e.getMessage());
        assertTrue(e.getMessage().contains("openai/clip-vit-large-patch14's model.safetensors"), e.getMessage());
    }

    @Test
    void aTextEncoderAloneIsNotACLIPModel(@TempDir Path dir) throws Exception {
        RecordingWeights rec = recorded();
        Path file = dir.resolve("clip_l.safetensors");
        rec.write(file, k -> k.startsWith("text_model.") ? k : null, DType.F32);
        var e = assertThrows(IOException.class, () -> ClipModel.load(be, DType.F32, tiny, file, TOKENIZER));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("vision_model.post_layernorm.weight"), e.getMessage());
        assertTrue(e.getMessage().contains("hold the text tower only"), e.getMessage());
    }

    @Test
    void aMisshapenTensorAndAMissingTokenizerAreNamed(@TempDir Path dir) throws Exception {
        RecordingWeights rec = recorded();
        Path file = dir.resolve("model.safetensors");
        rec.write(file, k -> k, DType.F32);
        ClipModel.Configs wider = new ClipModel.Configs(tiny.text(), new ClipVisionConfig("wider", 16, 2, 32, 2, 8, 32, 24, 1e-5));
        var e = assertThrows(IllegalArgumentException.class, () -> ClipModel.load(be, DType.F32, wider, file, TOKENIZER));
        assertTrue(e.getMessage().contains("\"text_projection.weight\" has shape [16, 16], the model needs [24, 16]"), e.getMessage());
        var t = assertThrows(IOException.class, () -> ClipModel.load(be, DType.F32, tiny, file, null));
        assertTrue(t.getMessage().contains("needs its tokenizer") && t.getMessage().contains("--clip-tokenizer"), t.getMessage());
        // a folder holding the weights and vocab.json + merges.txt needs no --clip-tokenizer
        Files.writeString(dir.resolve("vocab.json"), "{}");
        Files.writeString(dir.resolve("merges.txt"), "");
        assertEquals(dir.toAbsolutePath(), ClipModel.tokenizerBeside(file));
        assertEquals(dir, ClipModel.tokenizerBeside(dir));
    }
}
