package dev.impasto.lora;

import static dev.impasto.lora.LoraFixtures.BE;
import static dev.impasto.lora.LoraFixtures.SMALL;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.model.FluxConfig;
import dev.impasto.model.FluxModel;
import dev.impasto.model.LoraGroup;
import dev.impasto.tensor.DType;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Files as other tools write them (XLabs, kohya without alpha, mixed ranks, extra keys) and broken files. */
class LoraFileReaderTest {
    static final long H = SMALL.hidden(), M = SMALL.mlpHidden();
    @TempDir
    Path dir;

    /** up [rows, r] @ down [r, in] * scale, row-major. */
    static double[] product(double[] up, double[] down, int rows, int r, int in, double scale) {
        double[] d = new double[rows * in];
        for (int i = 0; i < rows; i++)
            for (int c = 0; c < in; c++) {
                double s = 0;
                for (int k = 0; k < r; k++) s += up[i * r + k] * down[k * in + c];
                d[i * in + c] = scale * s;
            }
        return d;
    }

    /** The dense update a group makes to module {@code key} of the SMALL model. */
    static double[] delta(List<LoraGroup> groups, String key) {
        return LoraFixtures.delta(LoraFixtures.find(groups, key), FluxLoraLayout.modules(SMALL).get(key).out());
    }

    @Test
    void xlabsFileReadsAsFusedAdaptersWithScaleOne() throws IOException {
        TestFile t = new TestFile(1);
        int r = 3;
        for (int i = 0; i < 2; i++) {
            for (int s = 1; s <= 2; s++) {
                t.add("double_blocks." + i + ".processor.qkv_lora" + s + ".down.weight", r, H);
                t.add("double_blocks." + i + ".processor.qkv_lora" + s + ".up.weight", 3 * H, r);
                t.add("double_blocks." + i + ".processor.proj_lora" + s + ".down.weight", r, H);
                t.add("double_blocks." + i + ".processor.proj_lora" + s + ".up.weight", H, r);
            }
            t.add("single_blocks." + i + ".processor.qkv_lora.down.weight", r, H);
            t.add("single_blocks." + i + ".processor.qkv_lora.up.weight", 3 * H, r);
            t.add("single_blocks." + i + ".processor.proj_lora.down.weight", r, H + M);
            t.add("single_blocks." + i + ".processor.proj_lora.up.weight", H, r);
        }
        Path f = t.write(dir.resolve("xlabs.safetensors"));
        LoadedLora l = LoraFileReader.read(f, SMALL, BE, DType.F64);
        assertEquals(LoraFormat.XLABS, l.format());
        assertEquals(List.of(), l.unknownKeys());
        assertEquals(12, l.groups().size());
        LoraGroup txtQkv = LoraFixtures.find(l.groups(), "double_blocks.1.txt_attn.qkv");
        assertEquals(List.of(new LoraGroup.Piece("", 0, 3 * H)), txtQkv.pieces);
        assertEquals(1.0, txtQkv.scale(), "XLabs applies up(down(x)) unscaled");
        LoraGroup lin1 = LoraFixtures.find(l.groups(), "single_blocks.0.linear1");
        assertEquals(List.of(new LoraGroup.Piece("q+k+v", 0, 3 * H)), lin1.pieces, "qkv_lora adapts only the q|k|v rows of linear1");
        // the update equals up @ down on the adapted rows (qkv_lora2 is the text stream)
        double[] expectTxt = product(t.values.get("double_blocks.1.processor.qkv_lora2.up.weight"),
                t.values.get("double_blocks.1.processor.qkv_lora2.down.weight"), (int) (3 * H), r, (int) H, 1);
        assertArrayEquals(expectTxt, delta(l.groups(), "double_blocks.1.txt_attn.qkv"), 1e-12);
        double[] expectLin1 = Arrays.copyOf(product(t.values.get("single_blocks.0.processor.qkv_lora.up.weight"),
                t.values.get("single_blocks.0.processor.qkv_lora.down.weight"), (int) (3 * H), r, (int) H, 1), (int) ((3 * H + M) * H));
        assertArrayEquals(expectLin1, delta(l.groups(), "single_blocks.0.linear1"), 1e-12);
        double[] expectProj = product(t.values.get("single_blocks.1.processor.proj_lora.up.weight"),
                t.values.get("single_blocks.1.processor.proj_lora.down.weight"), (int) H, r, (int) (H + M), 1);
        assertArrayEquals(expectProj, delta(l.groups(), "single_blocks.1.linear2"), 1e-12);

        // written as diffusers, the single block's qkv_lora becomes to_q/to_k/to_v with a shared A and no proj_mlp,
        // as diffusers' _convert_xlabs_flux_lora_to_diffusers maps it; reading that back gives the same groups
        Path d = dir.resolve("d.safetensors");
        LoraFileWriter.write(d, l.groups(), BE, LoraFormat.DIFFUSERS, Map.of());
        try (SafetensorsFile sf = SafetensorsFile.open(d)) {
            Set<String> single0 = new TreeSet<>();
            for (String k : sf.tensorMap().keySet()) if (k.startsWith("transformer.single_transformer_blocks.0.")) single0.add(k.substring("transformer.single_transformer_blocks.0.".length()));
            assertEquals(new TreeSet<>(List.of("attn.to_k.lora_A.weight", "attn.to_k.lora_B.weight", "attn.to_q.lora_A.weight", "attn.to_q.lora_B.weight",
                    "attn.to_v.lora_A.weight", "attn.to_v.lora_B.weight", "proj_out.lora_A.weight", "proj_out.lora_B.weight")), single0);
        }
        LoraRoundTripTest.assertSameGroups(l.groups(), LoraFileReader.read(d, SMALL, BE, DType.F64).groups());
        // and as kohya: linear1's up matrix has zero MLP rows
        Path k = dir.resolve("k.safetensors");
        LoraFileWriter.write(k, l.groups(), BE, LoraFormat.KOHYA, Map.of(), LoraFileWriter.Options.defaults().withConfig(SMALL));
        try (SafetensorsFile sf = SafetensorsFile.open(k)) {
            double[] up = sf.tensor("lora_unet_single_blocks_0_linear1.lora_up.weight").toDoubleArray();
            assertEquals((3 * H + M) * r, up.length);
            for (int i = (int) (3 * H * r); i < up.length; i++) assertEquals(0.0, up[i]);
        }
        LoraRoundTripTest.assertSameGroups(l.groups(), LoraFileReader.read(k, SMALL, BE, DType.F64).groups());
    }

    @Test
    void unknownKeysAreReportedKeyByKey() throws IOException {
        TestFile t = new TestFile(2);
        t.add("transformer.transformer_blocks.0.attn.to_q.lora_A.weight", 2, H);
        t.add("transformer.transformer_blocks.0.attn.to_q.lora_B.weight", H, 2);
        List<String> extras = List.of(
                "transformer.transformer_blocks.0.attn.to_q.lora_magnitude_vector",
                "transformer.x_embedder.lora_A.weight",
                "transformer.x_embedder.lora_B.weight",
                "transformer.transformer_blocks.0.attn.norm_q.lora_A.weight",
                "some.random.tensor",
                "lora_unet_final_layer_linear.alpha");
        t.add(extras.get(0), H);
        t.add(extras.get(1), 2, 8);
        t.add(extras.get(2), H, 2);
        t.add(extras.get(3), 2, 8);
        t.add(extras.get(4), 3);
        t.add(extras.get(5), DType.F32, new long[0], new double[] {1});
        List<String> te = List.of("text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight",
                "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight");
        for (String k : te) t.add(k, 2, 4);
        LoadedLora l = LoraFileReader.read(t.write(dir.resolve("extra.safetensors")), SMALL, BE, DType.F64);
        assertEquals(LoraFormat.DIFFUSERS, l.format());
        assertEquals(new TreeSet<>(extras), new TreeSet<>(l.unknownKeys()));
        assertEquals(te.stream().sorted().toList(), l.textEncoderKeys(), "in file order, which is by name for tensors of one dtype");
        assertFalse(l.complete());
        assertEquals(1, l.groups().size());
        assertEquals(List.of(new LoraGroup.Piece("q", 0, H)), l.groups().get(0).pieces);
        String report = String.join("\n", l.report());
        for (String k : extras) assertTrue(report.contains("\n  " + k), k);
        assertTrue(report.contains("text-encoder LoRA keys are not applied (2)"), report);
        assertTrue(l.notes().stream().anyMatch(n -> n.contains("outside the transformer blocks")), l.notes().toString());
        assertTrue(l.notes().stream().anyMatch(n -> n.contains("DoRA")), l.notes().toString());
    }

    @Test
    void mixedRanksAndPeftMetadataPatternsGiveTheExactUpdate() throws IOException {
        TestFile t = new TestFile(3);
        String p = "transformer.transformer_blocks.0.attn.";
        double[] aq = t.add(p + "to_q.lora_A.weight", 2, H), bq = t.add(p + "to_q.lora_B.weight", H, 2);
        double[] ak = t.add(p + "to_k.lora_A.weight", 3, H), bk = t.add(p + "to_k.lora_B.weight", H, 3);
        double[] av = t.add(p + "to_v.lora_A.weight", 2, H), bv = t.add(p + "to_v.lora_B.weight", H, 2);
        t.meta("lora_adapter_metadata", """
                {"transformer.r": 2, "transformer.lora_alpha": 4,
                 "transformer.rank_pattern": {"transformer_blocks.0.attn.to_k": 3},
                 "transformer.alpha_pattern": {"transformer_blocks.0.attn.to_k": 9},
                 "transformer.target_modules": ["to_q", "to_k", "to_v"]}""");
        LoadedLora l = LoraFileReader.read(t.write(dir.resolve("mixed.safetensors")), SMALL, BE, DType.F64);
        LoraGroup g = l.groups().get(0);
        assertEquals("double_blocks.0.img_attn.qkv", g.key);
        assertEquals(3, g.rank);
        assertEquals(List.of(new LoraGroup.Piece("q", 0, H), new LoraGroup.Piece("k", H, 2 * H), new LoraGroup.Piece("v", 2 * H, 3 * H)), g.pieces);
        double[] expect = new double[(int) (3 * H * H)];
        System.arraycopy(product(bq, aq, (int) H, 2, (int) H, 4.0 / 2), 0, expect, 0, (int) (H * H));
        System.arraycopy(product(bk, ak, (int) H, 3, (int) H, 9.0 / 3), 0, expect, (int) (H * H), (int) (H * H));
        System.arraycopy(product(bv, av, (int) H, 2, (int) H, 4.0 / 2), 0, expect, (int) (2 * H * H), (int) (H * H));
        assertArrayEquals(expect, delta(l.groups(), g.key), 1e-12);
        assertTrue(l.notes().stream().anyMatch(n -> n.contains("padded to the largest")), l.notes().toString());
        assertTrue(l.notes().stream().anyMatch(n -> n.contains("folded into B")), l.notes().toString());
    }

    @Test
    void kohyaAlphaConventions() throws IOException {
        TestFile t = new TestFile(4);
        // no alpha: scale 1; alpha 0: rank (sd-scripts); alpha as an int64 scalar (sd-scripts' flux_extract_lora);
        // alpha as a bf16 [1] tensor (sd-scripts saves buffers in the save dtype)
        String[] names = {"lora_unet_double_blocks_0_img_attn_proj", "lora_unet_double_blocks_0_txt_attn_proj",
                "lora_unet_double_blocks_1_img_attn_proj", "lora_unet_double_blocks_1_txt_attn_proj"};
        for (String n : names) {
            t.add(n + ".lora_down.weight", 4, H);
            t.add(n + ".lora_up.weight", H, 4);
        }
        t.add(names[1] + ".alpha", DType.F32, new long[0], new double[] {0});
        t.add(names[2] + ".alpha", DType.I64, new long[0], new double[] {2});
        t.add(names[3] + ".alpha", DType.BF16, new long[] {1}, new double[] {1});
        LoadedLora l = LoraFileReader.read(t.write(dir.resolve("kohya.safetensors")), SMALL, BE, DType.F64);
        assertEquals(LoraFormat.KOHYA, l.format());
        assertEquals(1.0, LoraFixtures.find(l.groups(), "double_blocks.0.img_attn.proj").scale());
        assertEquals(1.0, LoraFixtures.find(l.groups(), "double_blocks.0.txt_attn.proj").scale());
        assertEquals(0.5, LoraFixtures.find(l.groups(), "double_blocks.1.img_attn.proj").scale());
        assertEquals(0.25, LoraFixtures.find(l.groups(), "double_blocks.1.txt_attn.proj").scale());
    }

    @Test
    void bflNamedAndUnderscoredDiffusersNamesRead() throws IOException {
        TestFile t = new TestFile(5);
        t.add("diffusion_model.double_blocks.1.img_mlp.0.lora_A.weight", 2, H);
        t.add("diffusion_model.double_blocks.1.img_mlp.0.lora_B.weight", M, 2);
        t.add("diffusion_model.single_blocks.0.linear1.lora_down.weight", 2, H);
        t.add("diffusion_model.single_blocks.0.linear1.lora_up.weight", 3 * H + M, 2);
        t.add("diffusion_model.single_blocks.0.linear1.alpha", DType.F32, new long[0], new double[] {1});
        LoadedLora l = LoraFileReader.read(t.write(dir.resolve("bfl.safetensors")), SMALL, BE, DType.F64);
        assertEquals(LoraFormat.BFL_PEFT, l.format());
        assertEquals(0.5, LoraFixtures.find(l.groups(), "single_blocks.0.linear1").scale());
        assertEquals(1.0, LoraFixtures.find(l.groups(), "double_blocks.1.img_mlp.0").scale());

        TestFile u = new TestFile(6); // old ai-toolkit kohya-style files: diffusers module names with underscores
        u.add("lora_unet_single_transformer_blocks_1_proj_mlp.lora_down.weight", 2, H);
        u.add("lora_unet_single_transformer_blocks_1_proj_mlp.lora_up.weight", M, 2);
        u.add("lora_unet_single_transformer_blocks_1_proj_mlp.alpha", DType.F32, new long[0], new double[] {4});
        LoadedLora lu = LoraFileReader.read(u.write(dir.resolve("under.safetensors")), SMALL, BE, DType.F64);
        LoraGroup g = lu.groups().get(0);
        assertEquals("single_blocks.1.linear1", g.key);
        assertEquals(List.of(new LoraGroup.Piece("mlp", 3 * H, 3 * H + M)), g.pieces);
        assertEquals(2.0, g.scale());
    }

    @Test
    void shapeMismatchesNameTheKeyAndTheShapes() throws IOException {
        FluxModel model = LoraFixtures.model();
        try {
            List<LoraGroup> groups = LoraFixtures.randomLora(model, LoraFixtures.config(2, 2, "all", false, Map.of()), 3);
            Path f = dir.resolve("small.safetensors");
            LoraFileWriter.write(f, groups, BE, LoraFormat.DIFFUSERS, Map.of());
            FluxConfig wider = new FluxConfig("wider", 8, 12, 6, 32, 2, 2, 2, 4.0, new int[] {4, 6, 6}, 10_000, true, true);
            LoraFileException e = assertThrows(LoraFileException.class, () -> LoraFileReader.read(f, wider, BE, DType.F64));
            assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
            assertTrue(e.getMessage().contains("\"transformer.transformer_blocks.0.norm1.linear.lora_A.weight\": expected shape [rank, 32]"), e.getMessage());
            assertTrue(e.getMessage().contains("found [2, 16]"), e.getMessage());
            FluxConfig shallow = new FluxConfig("shallow", 8, 12, 6, 16, 2, 1, 2, 4.0, new int[] {2, 2, 4}, 10_000, true, true);
            e = assertThrows(LoraFileException.class, () -> LoraFileReader.read(f, shallow, BE, DType.F64));
            assertTrue(e.getMessage().contains("transformer.transformer_blocks.1.") && e.getMessage().contains("another model"), e.getMessage());
        } finally {
            model.close();
        }
        TestFile t = new TestFile(7);
        t.add("transformer.transformer_blocks.0.attn.to_k.lora_A.weight", 2, H);
        t.add("transformer.transformer_blocks.0.attn.to_k.lora_B.weight", H - 1, 2);
        Path bad = t.write(dir.resolve("badup.safetensors"));
        LoraFileException e = assertThrows(LoraFileException.class, () -> LoraFileReader.read(bad, SMALL, BE, DType.F64));
        assertTrue(e.getMessage().contains("\"transformer.transformer_blocks.0.attn.to_k.lora_B.weight\": expected shape [16, 2]"), e.getMessage());
        assertTrue(e.getMessage().contains("found [15, 2]"), e.getMessage());
    }

    @Test
    void inconsistentAdaptersAreErrors() throws IOException {
        TestFile mixed = new TestFile(8);
        mixed.add("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", 2, H);
        mixed.add("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight", 3 * H, 2);
        mixed.add("transformer.transformer_blocks.0.attn.to_k.lora_A.weight", 2, H);
        mixed.add("transformer.transformer_blocks.0.attn.to_k.lora_B.weight", H, 2);
        Path f = mixed.write(dir.resolve("mixed.safetensors"));
        LoraFileException e = assertThrows(LoraFileException.class, () -> LoraFileReader.read(f, SMALL, BE, DType.F64));
        assertTrue(e.getMessage().contains("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight")
                && e.getMessage().contains("transformer.transformer_blocks.0.attn.to_k.lora_A.weight") && e.getMessage().contains("both adapt"), e.getMessage());

        TestFile half = new TestFile(9);
        half.add("transformer.transformer_blocks.0.attn.to_k.lora_A.weight", 2, H);
        Path g = half.write(dir.resolve("half.safetensors"));
        e = assertThrows(LoraFileException.class, () -> LoraFileReader.read(g, SMALL, BE, DType.F64));
        assertTrue(e.getMessage().contains("to_k.lora_A.weight\" has no matching up"), e.getMessage());

        TestFile nan = new TestFile(10);
        nan.add("transformer.transformer_blocks.0.attn.to_k.lora_A.weight", 2, H);
        nan.add("transformer.transformer_blocks.0.attn.to_k.lora_B.weight", DType.F32, new long[] {H, 2}, new double[(int) H * 2]);
        nan.values.get("transformer.transformer_blocks.0.attn.to_k.lora_B.weight")[5] = Double.NaN;
        Path n = nan.write(dir.resolve("nan.safetensors"));
        e = assertThrows(LoraFileException.class, () -> LoraFileReader.read(n, SMALL, BE, DType.F64));
        assertTrue(e.getMessage().contains("1 NaN or infinite values"), e.getMessage());
    }

    // ------------------------------------------------------------------------------------------------ broken files

    Path raw(String name, String header, int dataBytes, long headerLenOverride) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(headerLenOverride >= 0 ? headerLenOverride : h.length).put(h);
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    String error(Path p) {
        LoraFileException e = assertThrows(LoraFileException.class, () -> LoraFileReader.read(p, SMALL, BE, DType.F64));
        assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
        return e.getMessage();
    }

    @Test
    void truncatedAndCorruptFilesGiveClearErrors() throws IOException {
        TestFile t = new TestFile(11);
        t.add("transformer.transformer_blocks.0.attn.to_k.lora_A.weight", 2, H);
        t.add("transformer.transformer_blocks.0.attn.to_k.lora_B.weight", H, 2);
        Path good = t.write(dir.resolve("good.safetensors"));
        byte[] all = Files.readAllBytes(good);
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(all, all.length - 10));
        assertTrue(error(cut).contains("the file is truncated: tensor \"") && error(cut).contains("\" ends at byte"), error(cut));
        Path cutHeader = dir.resolve("cutheader.safetensors");
        Files.write(cutHeader, Arrays.copyOf(all, 40));
        assertTrue(error(cutHeader).contains("header length"), error(cutHeader));

        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, new byte[] {1, 2, 3});
        assertTrue(error(tiny).contains("the file is 3 bytes, too short for a safetensors header"), error(tiny));
        assertTrue(error(raw("huge.safetensors", "{}", 0, 1L << 62)).contains("header length field says 4611686018427387904 bytes"));
        assertTrue(error(raw("json.safetensors", "{\"a\": [", 0, -1)).contains("the JSON header is malformed"));
        assertTrue(error(raw("dup.safetensors", "{\"a\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}, \"a\": {}}", 4, -1)).contains("Duplicate field 'a'"));
        assertTrue(error(raw("size.safetensors", "{\"x.lora_A.weight\": {\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24, -1))
                .contains("tensor \"x.lora_A.weight\": shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 20] span 20"));
        assertTrue(error(raw("overlap.safetensors", "{\"a\": {\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, -1)).contains("overlap"));
        assertTrue(error(raw("dtype.safetensors", "{\"a\": {\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,2]}}", 2, -1)).contains("unknown dtype"));
        assertTrue(error(raw("neg.safetensors", "{\"a\": {\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, -1)).contains("tensor \"a\": shape dimension 0 is -1, not a non-negative integer"));
        assertTrue(error(raw("ovf.safetensors", "{\"a\": {\"dtype\":\"F32\",\"shape\":[4611686018427387904, 4],\"data_offsets\":[0,4]}}", 4, -1))
                .contains("overflows"));
        assertTrue(error(raw("meta.safetensors", "{\"__metadata__\": {\"a\": 1}}", 0, -1)).contains("metadata value \"a\" is a number; safetensors allows only strings"));
        assertTrue(error(raw("none.safetensors", "{\"__metadata__\": {\"a\": \"b\"}, \"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1))
                .contains("no FLUX LoRA weights among 1 tensors"));
        assertTrue(error(dir.resolve("missing.safetensors")).contains("no such file"));
    }
}
