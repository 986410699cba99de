package dev.impasto.lora;

import static dev.impasto.lora.LoraFixtures.BE;
import static dev.impasto.lora.LoraFixtures.SMALL;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.model.FluxModel;
import dev.impasto.model.LoraGroup;
import dev.impasto.tensor.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Write -> read round trips in both layouts: the model's float64 prediction with the LoRA read back equals the one with
 * the original LoRA (to 1e-12), and in diffusers layout (and kohya layout written by impasto) every tensor is equal.
 */
class LoraRoundTripTest {
    static final LoraFileWriter.Options WITH_CONFIG = LoraFileWriter.Options.defaults().withConfig(SMALL);
    static FluxModel model;
    static FluxModel.Inputs inputs;
    static double[] baseOutput;
    @TempDir
    Path dir;

    @BeforeAll
    static void setUp() {
        model = LoraFixtures.model();
        inputs = LoraFixtures.inputs();
        baseOutput = LoraFixtures.output(model, inputs, List.of());
    }

    @AfterAll
    static void tearDown() {
        model.close();
    }

    /** name, rank, alpha, targets, fused, block ranks */
    static Stream<Arguments> loras() {
        return Stream.of(
                Arguments.of("per-piece, all layers", 2, 3.0, "all", false, Map.of()),
                Arguments.of("fused, all layers", 3, 1.5, "all", true, Map.of()),
                Arguments.of("per-piece, attention only (linear1 q,k,v)", 2, 2.0, "attention", false, Map.of()),
                Arguments.of("per-piece, block ranks", 2, 4.0, "all", false, Map.of("single_blocks\\.1\\..*", 4, "double_blocks\\.0\\.txt_.*", 1)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("loras")
    void diffusersRoundTripKeepsEveryTensorAndTheOutput(String name, int rank, double alpha, String targets, boolean fused,
                                                        Map<String, Integer> blockRanks) throws IOException {
        List<LoraGroup> orig = LoraFixtures.randomLora(model, LoraFixtures.config(rank, alpha, targets, fused, blockRanks), 7);
        double[] expected = LoraFixtures.output(model, inputs, orig);
        assertTrue(LoraFixtures.maxAbsDiff(expected, baseOutput) > 1e-3, "the LoRA changes the prediction");
        Path f = dir.resolve("lora.safetensors");
        LoraFileWriter.write(f, orig, BE, LoraFormat.DIFFUSERS, Map.of("ss_output_name", "test"));

        LoadedLora read = LoraFileReader.read(f, SMALL, BE, DType.F64);
        assertEquals(LoraFormat.DIFFUSERS, read.format());
        assertEquals(List.of(), read.unknownKeys());
        assertEquals("test", read.metadata().get("ss_output_name"));
        assertSameGroups(orig, read.groups());
        assertTrue(LoraFixtures.maxAbsDiff(expected, LoraFixtures.output(model, inputs, read.groups())) <= 1e-12);
        // a fused group written split was fused back, so rewriting gives the same file content
        Path again = dir.resolve("again.safetensors");
        LoraFileWriter.write(again, read.groups(), BE, LoraFormat.DIFFUSERS, Map.of("ss_output_name", "test"));
        assertArrayEquals(Files.readAllBytes(f), Files.readAllBytes(again));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("loras")
    void kohyaRoundTripKeepsTheOutputAndImpastoPieces(String name, int rank, double alpha, String targets, boolean fused,
                                                      Map<String, Integer> blockRanks) throws IOException {
        List<LoraGroup> orig = LoraFixtures.randomLora(model, LoraFixtures.config(rank, alpha, targets, fused, blockRanks), 8);
        double[] expected = LoraFixtures.output(model, inputs, orig);
        Path f = dir.resolve("kohya.safetensors");
        LoraFileWriter.write(f, orig, BE, LoraFormat.KOHYA, Map.of(), WITH_CONFIG);

        LoadedLora read = LoraFileReader.read(f, SMALL, BE, DType.F64);
        assertEquals(LoraFormat.KOHYA, read.format());
        assertEquals(List.of(), read.unknownKeys());
        assertSameGroups(orig, read.groups()); // impasto.pieces restores the per-piece structure
        assertTrue(LoraFixtures.maxAbsDiff(expected, LoraFixtures.output(model, inputs, read.groups())) <= 1e-12);

        // without impasto's metadata (as another tool sees the file) the modules read as merged kohya modules
        Path plain = dir.resolve("plain.safetensors");
        stripMetadata(f, plain, LoraFileReader.IMPASTO_PIECES);
        LoadedLora merged = LoraFileReader.read(plain, SMALL, BE, DType.F64);
        assertTrue(LoraFixtures.maxAbsDiff(expected, LoraFixtures.output(model, inputs, merged.groups())) <= 1e-12);
        for (LoraGroup o : orig) {
            LoraGroup m = LoraFixtures.find(merged.groups(), o.key);
            assertEquals(1, m.pieces.size(), o.key);
            assertEquals(o.rank * o.pieces.size(), m.rank, o.key);
            assertEquals(o.scale(), m.scale(), 1e-15, o.key);
            long out = FluxLoraLayout.modules(SMALL).get(o.key).out();
            assertArrayEquals(LoraFixtures.delta(o, out), LoraFixtures.delta(m, out), 1e-14, o.key);
        }
    }

    @Test
    void kohyaFileLayoutMatchesSdScripts() throws IOException {
        List<LoraGroup> orig = LoraFixtures.randomLora(model, LoraFixtures.config(2, 3, "all", false, Map.of()), 9);
        Path f = dir.resolve("k.safetensors");
        LoraFileWriter.write(f, orig, BE, LoraFormat.KOHYA, Map.of());
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            var e = sf.tensorMap();
            long h = SMALL.hidden(), m = SMALL.mlpHidden();
            assertEquals(10 * 3 * 2 + 3 * 3 * 2, e.size(), "down, up and alpha for every module");
            var down = e.get("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight");
            assertArrayEquals(new long[] {6, h}, down.shape(), "three pieces of rank 2 stacked");
            assertArrayEquals(new long[] {3 * h, 6}, e.get("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight").shape());
            var alpha = e.get("lora_unet_double_blocks_0_img_attn_qkv.alpha");
            assertEquals("F32", alpha.typeName());
            assertArrayEquals(new long[0], alpha.shape());
            assertEquals(9.0, alpha.toDoubleArray()[0], "alpha 3 x 3 pieces: alpha/rank stays 3/2");
            assertEquals(3.0, e.get("lora_unet_double_blocks_1_txt_mlp_2.alpha").toDoubleArray()[0]);
            assertArrayEquals(new long[] {3 * h + m, 8}, e.get("lora_unet_single_blocks_1_linear1.lora_up.weight").shape());
            assertTrue(e.containsKey("lora_unet_single_blocks_0_modulation_lin.lora_down.weight"));
            assertTrue(e.containsKey("lora_unet_double_blocks_1_img_mod_lin.lora_up.weight"));
            // block-diagonal up: piece k's rows only use piece k's columns
            double[] up = e.get("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight").toDoubleArray();
            for (int row = 0; row < 3 * h; row++)
                for (int c = 0; c < 6; c++) if (c / 2 != row / h) assertEquals(0.0, up[row * 6 + c]);
            assertEquals("networks.lora_flux", sf.metadata().get("ss_network_module"));
            assertEquals("flux1", sf.metadata().get("ss_base_model_version"));
            assertTrue(sf.metadata().get(LoraFileReader.IMPASTO_PIECES).contains("\"double_blocks.0.img_attn.qkv\":[[\"q\",0,16],[\"k\",16,32],[\"v\",32,48]]"));
        }
    }

    @Test
    void diffusersFileLayoutAndAlphaMetadataMatchDiffusers() throws IOException {
        Map<String, Integer> br = Map.of("single_blocks\\.1\\..*", 4);
        List<LoraGroup> orig = LoraFixtures.randomLora(model, LoraFixtures.config(2, 3, "all", true, br), 10);
        Path f = dir.resolve("d.safetensors");
        LoraFileWriter.write(f, orig, BE, LoraFormat.DIFFUSERS, null);
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            var e = sf.tensorMap();
            long h = SMALL.hidden(), m = SMALL.mlpHidden();
            for (String mod : List.of("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj",
                    "attn.to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2", "norm1.linear", "norm1_context.linear"))
                assertTrue(e.containsKey("transformer.transformer_blocks.1." + mod + ".lora_A.weight"), mod);
            for (String mod : List.of("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp", "proj_out", "norm.linear"))
                assertTrue(e.containsKey("transformer.single_transformer_blocks.0." + mod + ".lora_B.weight"), mod);
            assertEquals((2 * 14 + 2 * 6) * 2, e.size(), "lora_A and lora_B of every diffusers module, no alpha tensors");
            assertArrayEquals(new long[] {m, 2}, e.get("transformer.single_transformer_blocks.0.proj_mlp.lora_B.weight").shape());
            assertArrayEquals(new long[] {h, 2}, e.get("transformer.transformer_blocks.0.attn.add_k_proj.lora_B.weight").shape());
            // the fused qkv written split: the same A for q, k and v; B rows h..2h for k
            double[] aq = e.get("transformer.transformer_blocks.0.attn.to_q.lora_A.weight").toDoubleArray();
            assertArrayEquals(aq, e.get("transformer.transformer_blocks.0.attn.to_k.lora_A.weight").toDoubleArray());
            double[] bk = e.get("transformer.transformer_blocks.0.attn.to_k.lora_B.weight").toDoubleArray();
            double[] bFused = BE.toDoubles(LoraFixtures.find(orig, "double_blocks.0.img_attn.qkv").b);
            for (int i = 0; i < bk.length; i++) assertEquals(bFused[(int) (h * 2) + i], bk[i]);

            assertEquals("pt", sf.metadata().get("format"));
            JsonNode cfg = new ObjectMapper().readTree(sf.metadata().get("lora_adapter_metadata"));
            assertEquals(2, cfg.get("transformer.r").intValue());
            assertEquals(3, cfg.get("transformer.lora_alpha").intValue());
            assertEquals(4, cfg.get("transformer.rank_pattern").get("single_transformer_blocks.1.proj_mlp").intValue());
            assertEquals(6, cfg.get("transformer.alpha_pattern").get("single_transformer_blocks.1.attn.to_q").intValue(), "alpha 3 * 4 / 2 keeps the scale");
            assertFalse(cfg.get("transformer.rank_pattern").has("single_transformer_blocks.0.proj_mlp"));
            assertTrue(cfg.get("transformer.target_modules").toString().contains("\"transformer_blocks.0.norm1_context.linear\""));
        }
        LoadedLora read = LoraFileReader.read(f, SMALL, BE, DType.F64);
        assertSameGroups(orig, read.groups());
    }

    @Test
    void kohyaToDiffusersConversionIsEquivalentAndStable() throws IOException {
        List<LoraGroup> orig = LoraFixtures.randomLora(model, LoraFixtures.config(2, 5, "all", false, Map.of()), 11);
        double[] expected = LoraFixtures.output(model, inputs, orig);
        Path k1 = dir.resolve("k1.safetensors"), plain = dir.resolve("plain.safetensors"), d = dir.resolve("d.safetensors"),
                k2 = dir.resolve("k2.safetensors");
        LoraFileWriter.write(k1, orig, BE, LoraFormat.KOHYA, Map.of());
        stripMetadata(k1, plain, LoraFileReader.IMPASTO_PIECES); // a kohya file as sd-scripts would have merged it
        LoadedLora kohya = LoraFileReader.read(plain, SMALL, BE, DType.F64);
        LoraFileWriter.write(d, kohya.groups(), BE, LoraFormat.DIFFUSERS, Map.of());
        LoadedLora diff = LoraFileReader.read(d, SMALL, BE, DType.F64);
        assertTrue(LoraFixtures.maxAbsDiff(expected, LoraFixtures.output(model, inputs, diff.groups())) <= 1e-12);
        assertSameGroups(kohya.groups(), diff.groups());
        assertTrue(diff.notes().stream().anyMatch(n -> n.contains("fused back")), diff.notes().toString());
        LoraFileWriter.write(k2, diff.groups(), BE, LoraFormat.KOHYA, Map.of());
        try (SafetensorsFile a = SafetensorsFile.open(plain); SafetensorsFile b = SafetensorsFile.open(k2)) {
            assertEquals(a.tensorMap().keySet(), b.tensorMap().keySet());
            for (String key : a.tensorMap().keySet())
                assertArrayEquals(a.tensor(key).toDoubleArray(), b.tensor(key).toDoubleArray(), key);
        }
    }

    @Test
    void reducedPrecisionFilesHoldTheRoundedWeights() throws IOException {
        List<LoraGroup> orig = LoraFixtures.randomLora(model, LoraFixtures.config(2, 2, "attention", false, Map.of()), 12);
        for (DType dt : List.of(DType.BF16, DType.F16)) {
            Path f = dir.resolve(dt + ".safetensors");
            LoraFileWriter.write(f, orig, BE, LoraFormat.DIFFUSERS, Map.of(), LoraFileWriter.Options.defaults().withDtype(dt));
            try (SafetensorsFile sf = SafetensorsFile.open(f)) {
                assertEquals(dt.name(), sf.tensor("transformer.transformer_blocks.0.attn.to_q.lora_A.weight").typeName());
            }
            LoadedLora read = LoraFileReader.read(f, SMALL, BE, DType.F64);
            for (LoraGroup o : orig) {
                LoraGroup r = LoraFixtures.find(read.groups(), o.key);
                double[] oa = BE.toDoubles(o.a), ra = BE.toDoubles(r.a);
                for (int i = 0; i < oa.length; i++) assertEquals(dt.round(oa[i]), ra[i], 0.0);
            }
        }
    }

    @Test
    void bakedScaleMeansTheSameWithAlphaEqualToRank() throws IOException {
        List<LoraGroup> orig = LoraFixtures.randomLora(model, LoraFixtures.config(2, 4, "all", false, Map.of()), 13);
        double[] expected = LoraFixtures.output(model, inputs, orig);
        Path f = dir.resolve("baked.safetensors");
        LoraFileWriter.write(f, orig, BE, LoraFormat.DIFFUSERS, Map.of(), new LoraFileWriter.Options(DType.F32, null, true));
        LoadedLora read = LoraFileReader.read(f, SMALL, BE, DType.F64);
        for (LoraGroup g : read.groups()) assertEquals(1.0, g.scale());
        assertTrue(LoraFixtures.maxAbsDiff(expected, LoraFixtures.output(model, inputs, read.groups())) <= 1e-12);
    }

    @Test
    void writingReplacesAtomicallyAndLeavesNoTemporaries() throws IOException {
        List<LoraGroup> orig = LoraFixtures.randomLora(model, LoraFixtures.config(1, 1, "attention", false, Map.of()), 14);
        Path f = dir.resolve("out.safetensors");
        Files.writeString(f, "old content");
        // attention only: nothing tells the MLP width that linear1's kohya up matrix needs, so the config must be given
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> LoraFileWriter.write(f, orig, BE, LoraFormat.KOHYA, Map.of()));
        assertTrue(e.getMessage().contains("single_blocks.0.linear1") && e.getMessage().contains("withConfig"), e.getMessage());
        assertEquals("old content", Files.readString(f));
        LoraFileWriter.write(f, orig, BE, LoraFormat.KOHYA, Map.of(), WITH_CONFIG);
        try (Stream<Path> l = Files.list(dir)) {
            assertEquals(List.of(f), l.toList());
        }
        assertNotEquals("old content", Files.readString(f, java.nio.charset.StandardCharsets.ISO_8859_1));
        assertEquals(orig.size(), LoraFileReader.read(f, SMALL, BE, DType.F64).groups().size());
    }

    static void assertSameGroups(List<LoraGroup> expected, List<LoraGroup> actual) {
        Map<String, LoraGroup> byKey = new HashMap<>();
        for (LoraGroup g : actual) byKey.put(g.key, g);
        assertEquals(expected.size(), actual.size(), "group count");
        for (LoraGroup e : expected) {
            LoraGroup a = byKey.get(e.key);
            assertTrue(a != null, "missing " + e.key);
            assertEquals(e.pieces, a.pieces, e.key);
            assertEquals(e.rank, a.rank, e.key);
            assertEquals(e.alpha, a.alpha, 1e-12 * e.alpha, e.key);
            assertArrayEquals(BE.toDoubles(e.a), BE.toDoubles(a.a), 0.0, e.key + " A");
            assertArrayEquals(BE.toDoubles(e.b), BE.toDoubles(a.b), 0.0, e.key + " B");
        }
    }

    /** Copies a safetensors file without some metadata keys. */
    static void stripMetadata(Path from, Path to, String... keys) throws IOException {
        try (SafetensorsFile sf = SafetensorsFile.open(from)) {
            Map<String, String> md = new LinkedHashMap<>(sf.metadata());
            for (String k : keys) md.remove(k);
            List<SafetensorsWriter.Tensor> items = new ArrayList<>();
            for (var e : sf.tensors()) items.add(SafetensorsWriter.Tensor.copyOf(e));
            SafetensorsWriter.write(to, md, items);
        }
    }
}
