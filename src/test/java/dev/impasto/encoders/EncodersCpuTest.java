package dev.impasto.encoders;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tiny encoders end to end on the CPU: shapes, determinism, files in every layout load to the same model. */
class EncodersCpuTest {
    final CpuBackend be = new CpuBackend();
    final FluxEncoders.Configs tiny = FluxEncoders.Configs.tiny();

    static boolean allFinite(float[] v) {
        for (float f : v) if (!Float.isFinite(f)) return false;
        return true;
    }

    static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    @Test
    void promptsBecomeT5TokensAndAPooledVectorThatDependOnTheText() {
        try (FluxEncoders enc = FluxEncoders.random(be, DType.F32, tiny, 7);
             FluxEncoders.Prompt a = enc.encodePrompt("a quiet harbour at dawn"); FluxEncoders.Prompt a2 = enc.encodePrompt("a quiet harbour at dawn");
             FluxEncoders.Prompt b = enc.encodePrompt("")) {
            assertArrayEquals(new long[] {1, 32, 32}, a.t5().shape());
            assertArrayEquals(new long[] {1, 16}, a.pooled().shape());
            float[] ta = be.toFloats(a.t5()), tb = be.toFloats(b.t5());
            assertTrue(allFinite(ta));
            assertArrayEquals(ta, be.toFloats(a2.t5()), "deterministic");
            assertTrue(maxAbsDiff(ta, tb) > 0.1, "the text changes the tokens");
            assertTrue(maxAbsDiff(be.toFloats(a.pooled()), be.toFloats(b.pooled())) > 0.1, "the text changes the pooled vector");
            assertFalse(a.truncatedT5());
            try (FluxEncoders.Prompt longer = enc.encodePrompt("x".repeat(100))) {
                assertTrue(longer.truncatedT5() && longer.truncatedClip());
            }
        }
    }

    @Test
    void clipPoolsAtTheFirstEndOfTextAndIgnoresLaterPositions() {
        ClipConfig c = ClipConfig.tiny();
        try (ClipTextEncoder clip = ClipTextEncoder.load(c, be, DType.F32, new RandomEncoderWeights(3), BaseFormat.F32)) {
            int[] a = ByteTokenizer.clip().encode("hi", 77).ids(), b = a.clone();
            b[40] = 5; // after the end-of-text token: a causal model's pooled output cannot see it
            try (ClipTextEncoder.Output oa = clip.forward(new int[][] {a, b}, new int[] {3, 3})) {
                float[] p = be.toFloats(oa.pooled());
                for (int i = 0; i < c.hidden(); i++) assertEquals(p[i], p[c.hidden() + i], 0f);
                float[] h = be.toFloats(oa.hidden());
                int row = 40 * c.hidden(), other = (77 + 40) * c.hidden();
                assertNotEquals(h[row], h[other], "position 40 itself differs");
            }
        }
    }

    @Test
    void autoencoderRoundTripsShapesAndTiledDecodeEqualsWholeDecodeWhenOneTileCovers() {
        try (FluxEncoders enc = FluxEncoders.random(be, DType.F32, tiny, 11, false, false, true)) {
            BufferedImage img = new BufferedImage(24, 16, BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < 16; y++) for (int x = 0; x < 24; x++) img.setRGB(x, y, (x * 10) << 16 | (y * 15) << 8 | 128);
            try (Tensor z = enc.encode(img)) {
                assertArrayEquals(new long[] {1, 16, 8, 12}, z.shape());
                assertTrue(allFinite(be.toFloats(z)));
                try (Tensor zf = enc.encode(img, true)) {
                    assertTrue(maxAbsDiff(be.toFloats(z), be.toFloats(zf)) > 1e-3, "flip changes the latent");
                }
                BufferedImage out = enc.decode(z);
                assertEquals(24, out.getWidth());
                assertEquals(16, out.getHeight());
                AutoEncoder ae = enc.vae();
                float[] whole;
                try (Tensor d = ae.decode(z)) {
                    whole = be.toFloats(d);
                }
                assertTrue(maxAbsDiff(whole, ae.decodeTiled(z, 12, 4)) < 1e-5, "one tile covering the latent is the plain decode");
                float[] tiled = ae.decodeTiled(z, 6, 2);
                assertEquals(whole.length, tiled.length);
                assertTrue(allFinite(tiled));
            }
            BufferedImage odd = new BufferedImage(15, 16, BufferedImage.TYPE_INT_RGB);
            assertThrows(IllegalArgumentException.class, () -> enc.encode(odd));
        }
    }

    @Test
    void tileStartsCoverTheLatentAndRampsNeverVanish() {
        assertArrayEquals(new int[] {0}, AutoEncoder.starts(10, 16, 4));
        assertArrayEquals(new int[] {0, 12, 24, 34}, AutoEncoder.starts(50, 16, 4));
        for (int i = 0; i < 32; i++) assertTrue(AutoEncoder.rampWeight(i, 32, 8, true, true) > 0);
        assertEquals(1f, AutoEncoder.rampWeight(16, 32, 8, true, true));
    }

    /** BFL autoencoder key -> diffusers AutoencoderKL key (the inverse of EncoderKeys.vae for two levels). */
    static String toDiffusers(String k) {
        Matcher m = Pattern.compile("encoder\\.down\\.(\\d)\\.block\\.(\\d)\\.(.*)").matcher(k);
        if (m.matches()) return "encoder.down_blocks." + m.group(1) + ".resnets." + m.group(2) + "." + m.group(3).replace("nin_shortcut", "conv_shortcut");
        m = Pattern.compile("encoder\\.down\\.(\\d)\\.downsample\\.(.*)").matcher(k);
        if (m.matches()) return "encoder.down_blocks." + m.group(1) + ".downsamplers.0." + m.group(2);
        m = Pattern.compile("decoder\\.up\\.(\\d)\\.block\\.(\\d)\\.(.*)").matcher(k);
        if (m.matches()) return "decoder.up_blocks." + (1 - Integer.parseInt(m.group(1))) + ".resnets." + m.group(2) + "." + m.group(3).replace("nin_shortcut", "conv_shortcut");
        m = Pattern.compile("decoder\\.up\\.(\\d)\\.upsample\\.(.*)").matcher(k);
        if (m.matches()) return "decoder.up_blocks." + (1 - Integer.parseInt(m.group(1))) + ".upsamplers.0." + m.group(2);
        m = Pattern.compile("(encoder|decoder)\\.mid\\.block_(\\d)\\.(.*)").matcher(k);
        if (m.matches()) return m.group(1) + ".mid_block.resnets." + (Integer.parseInt(m.group(2)) - 1) + "." + m.group(3).replace("nin_shortcut", "conv_shortcut");
        m = Pattern.compile("(encoder|decoder)\\.mid\\.attn_1\\.(norm|q|k|v|proj_out)\\.(.*)").matcher(k);
        if (m.matches()) {
            String n = switch (m.group(2)) {
                case "norm" -> "group_norm";
                case "q" -> "to_q";
                case "k" -> "to_k";
                case "v" -> "to_v";
                default -> "to_out.0";
            };
            return m.group(1) + ".mid_block.attentions.0." + n + "." + m.group(3);
        }
        return k.replace("norm_out", "conv_norm_out");
    }

    @Test
    void weightFilesInEveryLayoutLoadToTheSameModels(@TempDir Path dir) throws Exception {
        RecordingWeights rec = new RecordingWeights(5);
        float[] t5Ref, poolRef, imgRef;
        String prompt = "an orchard in bloom";
        try (T5Encoder t5 = T5Encoder.load(tiny.t5(), be, DType.F32, rec, BaseFormat.F32);
             ClipTextEncoder clip = ClipTextEncoder.load(tiny.clip(), be, DType.F32, rec, BaseFormat.F32);
             AutoEncoder ae = AutoEncoder.load(tiny.vae(), be, DType.F32, rec)) {
            try (Tensor t = t5.forward(new int[][] {ByteTokenizer.t5().encode(prompt, 32).ids()})) {
                t5Ref = be.toFloats(t);
            }
            int[] ids = ByteTokenizer.clip().encode(prompt, 77).ids();
            try (ClipTextEncoder.Output o = clip.forward(new int[][] {ids}, new int[] {dev.impasto.encoders.tokenizer.ClipTokenizer.pooledIndex(ids)})) {
                poolRef = be.toFloats(o.pooled());
            }
            try (Tensor z = be.fromDoubles(EncoderOpsCpuTest.random(16 * 4 * 6, 9), DType.F32, 1, 16, 4, 6); Tensor img = ae.decode(z)) {
                imgRef = be.toFloats(img);
            }
        }
        // ComfyUI-style single files with a prefix and an embed_tokens alias; diffusers VAE layout in F16 storage
        Path t5File = dir.resolve("t5xxl_tiny.safetensors"), clipFile = dir.resolve("clip_l_tiny.safetensors"), vaeDir = dir.resolve("vae");
        rec.write(t5File, k -> k.startsWith("encoder.") || k.equals("shared.weight") ? "text_encoders.t5xxl.transformer." + k.replace("shared.weight", "encoder.embed_tokens.weight") : null, DType.F32);
        rec.write(clipFile, k -> k.startsWith("text_model.") ? k : null, DType.F32);
        Files.createDirectories(vaeDir);
        rec.write(vaeDir.resolve("diffusion_pytorch_model.safetensors"), k -> k.startsWith("encoder.") || k.startsWith("decoder.") ? toDiffusers(k) : null, DType.F32);
        FluxEncoders.Paths paths = new FluxEncoders.Paths(t5File, null, clipFile, null, vaeDir);
        assertTrue(assertThrows(java.io.IOException.class, () -> FluxEncoders.load(be, DType.F32, tiny, paths, BaseFormat.F32)).getMessage().contains("tokenizer"),
                "a missing tokenizer is a clear error");
        try (FileEncoderWeights t5w = FileEncoderWeights.open(t5File, "T5 encoder", EncoderKeys.T5_ANCHOR, EncoderKeys.t5(), "transformers");
             FileEncoderWeights cw = FileEncoderWeights.open(clipFile, "CLIP text encoder", EncoderKeys.CLIP_ANCHOR, EncoderKeys.clip(), "transformers");
             FileEncoderWeights vw = FileEncoderWeights.open(vaeDir, "autoencoder", EncoderKeys.VAE_ANCHOR, EncoderKeys.vae(2), "BFL or diffusers");
             T5Encoder t5 = T5Encoder.load(tiny.t5(), be, DType.F32, t5w, BaseFormat.F32);
             ClipTextEncoder clip = ClipTextEncoder.load(tiny.clip(), be, DType.F32, cw, BaseFormat.F32);
             AutoEncoder ae = AutoEncoder.load(tiny.vae(), be, DType.F32, vw)) {
            try (Tensor t = t5.forward(new int[][] {ByteTokenizer.t5().encode(prompt, 32).ids()})) {
                assertArrayEquals(t5Ref, be.toFloats(t));
            }
            int[] ids = ByteTokenizer.clip().encode(prompt, 77).ids();
            try (ClipTextEncoder.Output o = clip.forward(new int[][] {ids}, new int[] {dev.impasto.encoders.tokenizer.ClipTokenizer.pooledIndex(ids)})) {
                assertArrayEquals(poolRef, be.toFloats(o.pooled()));
            }
            try (Tensor z = be.fromDoubles(EncoderOpsCpuTest.random(16 * 4 * 6, 9), DType.F32, 1, 16, 4, 6); Tensor img = ae.decode(z)) {
                assertArrayEquals(imgRef, be.toFloats(img));
            }
        }
        // wrong files are named in the error
        var e = assertThrows(java.io.IOException.class, () -> FileEncoderWeights.open(clipFile, "T5 encoder", EncoderKeys.T5_ANCHOR, EncoderKeys.t5(), "transformers"));
        assertTrue(e.getMessage().contains("is not a T5 encoder checkpoint"), e.getMessage());
        try (FileEncoderWeights t5w = FileEncoderWeights.open(t5File, "T5 encoder", EncoderKeys.T5_ANCHOR, EncoderKeys.t5(), "transformers")) {
            var wrongArch = assertThrows(IllegalArgumentException.class,
                    () -> T5Encoder.load(new T5Config("x", 259, 48, 8, 4, 64, 2, 32, 128, 1e-6, 32), be, DType.F32, t5w, BaseFormat.F32));
            assertTrue(wrongArch.getMessage().contains("embed_tokens") && wrongArch.getMessage().contains("[259, 48]"), wrongArch.getMessage());
        }
    }

    @Test
    void fp8TablesDecodeKnownValues() {
        assertEquals(1.0f, Float8.e4m3((byte) 0x38));
        assertEquals(448f, Float8.e4m3((byte) 0x7e));
        assertTrue(Float.isNaN(Float8.e4m3((byte) 0x7f)));
        assertEquals(-2.0f, Float8.e4m3((byte) 0xc0));
        assertEquals((float) Math.pow(2, -9), Float8.e4m3((byte) 0x01));
        assertEquals(1.0f, Float8.e5m2((byte) 0x3c));
        assertEquals(57344f, Float8.e5m2((byte) 0x7b));
        assertTrue(Float.isInfinite(Float8.e5m2((byte) 0x7c)));
    }
}
