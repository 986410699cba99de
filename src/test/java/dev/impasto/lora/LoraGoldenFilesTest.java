package dev.impasto.lora;

import static dev.impasto.lora.LoraFixtures.BE;
import static dev.impasto.lora.LoraFixtures.SMALL;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.model.LoraGroup;
import dev.impasto.tensor.DType;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Files written by the reference safetensors library (src/test/resources/dev/impasto/lora/make_golden.py) in sd-scripts'
 * and diffusers' layouts: impasto reads them to the updates numpy computed, and its own files read back through the
 * same path.
 */
class LoraGoldenFilesTest {
    @TempDir
    Path dir;

    Path resource(String name) throws IOException {
        Path p = dir.resolve(name);
        try (InputStream in = getClass().getResourceAsStream(name)) {
            Files.copy(in, p);
        }
        return p;
    }

    double[] expected(String module) throws IOException {
        try (SafetensorsFile sf = SafetensorsFile.open(resource("golden_expected_deltas.safetensors"))) {
            return sf.tensor(module).toDoubleArray();
        } finally {
            Files.delete(dir.resolve("golden_expected_deltas.safetensors"));
        }
    }

    static double[] delta(List<LoraGroup> groups, String key) {
        return LoraFixtures.delta(LoraFixtures.find(groups, key), FluxLoraLayout.modules(SMALL).get(key).out());
    }

    @Test
    void sdScriptsLayoutFp16WithScalarAlphas() throws IOException {
        LoadedLora l = LoraFileReader.read(resource("golden_kohya_fp16.safetensors"), SMALL, BE, DType.F64);
        assertEquals(LoraFormat.KOHYA, l.format());
        assertTrue(l.complete());
        assertEquals("networks.lora_flux", l.metadata().get("ss_network_module"));
        assertEquals(4, l.groups().size());
        for (String m : List.of("double_blocks_0_img_attn_qkv", "double_blocks_1_txt_mlp_2", "single_blocks_1_linear1", "single_blocks_0_modulation_lin")) {
            String key = m.replaceFirst("^(double|single)_blocks_(\\d+)_", "$1_blocks.$2.").replace("attn_qkv", "attn.qkv").replace("mlp_2", "mlp.2")
                    .replace("modulation_lin", "modulation.lin");
            assertArrayEquals(expected(m), delta(l.groups(), key), 1e-9, m);
        }
        assertEquals(1.0, LoraFixtures.find(l.groups(), "single_blocks.0.modulation.lin").scale(), "no alpha tensor: scale 1");
    }

    @Test
    void diffusersLayoutWithAdapterMetadata() throws IOException {
        LoadedLora l = LoraFileReader.read(resource("golden_diffusers.safetensors"), SMALL, BE, DType.F64);
        assertEquals(LoraFormat.DIFFUSERS, l.format());
        assertEquals(1, l.groups().size());
        LoraGroup g = l.groups().get(0);
        assertEquals(4, g.rank);
        assertEquals(List.of("q", "k", "v", "mlp"), g.pieces.stream().map(LoraGroup.Piece::name).toList());
        assertArrayEquals(expected("single_blocks_0_linear1"), delta(l.groups(), "single_blocks.0.linear1"), 1e-9);

        // impasto's own diffusers and kohya files of the same LoRA mean the same
        for (LoraFormat f : List.of(LoraFormat.DIFFUSERS, LoraFormat.KOHYA)) {
            Path out = dir.resolve("again-" + f + ".safetensors");
            LoraFileWriter.write(out, l.groups(), BE, f, Map.of());
            LoadedLora back = LoraFileReader.read(out, SMALL, BE, DType.F64);
            assertArrayEquals(expected("single_blocks_0_linear1"), delta(back.groups(), "single_blocks.0.linear1"), 1e-9, f.toString());
        }
    }
}
