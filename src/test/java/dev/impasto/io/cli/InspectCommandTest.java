package dev.impasto.io.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.io.Fixtures;
import dev.impasto.io.GgufTestWriter;
import dev.impasto.quant.GgmlType;
import dev.impasto.io.gguf.GgufValue;
import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class InspectCommandTest {
    @TempDir
    static Path dir;
    static List<Fixtures.T> tensors;

    record Result(int exit, String out, String err) {}

    static Result run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = new CommandLine(new InspectCommand());
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int exit = cl.execute(args);
        if (System.getProperty("inspect.print") != null) System.out.println(out + "\n" + err);
        return new Result(exit, out.toString(), err.toString());
    }

    @BeforeAll
    static void fixtures() throws IOException {
        tensors = Fixtures.randomBfl(Fixtures.TINY, 11);
        Fixtures.writeBfl(dir.resolve("tiny.safetensors"), tensors, "", DType.BF16);
        Fixtures.writeDiffusers(dir.resolve("diffusers/transformer"), tensors, 64, DType.BF16, 300_000);
    }

    @Test
    void bflFileSummaryGroupsBlocksAndDetectsTheArchitecture() {
        Result r = run(dir.resolve("tiny.safetensors").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("Format:    BFL safetensors"), r.out());
        assertTrue(r.out().contains("Tensors:   " + tensors.size() + ", "), r.out());
        assertTrue(r.out().contains("DTypes:    BF16 x" + tensors.size()), r.out());
        assertTrue(r.out().contains("format = pt"), r.out());
        assertTrue(r.out().contains("double_blocks.0.img_attn.qkv.weight") && r.out().contains("[192, 64]"), r.out());
        assertTrue(r.out().contains("Architecture: custom, 270.74 K parameters"), r.out());
        assertTrue(r.out().contains("in 16, out 16, hidden 64 (2 heads x 32), mlp 256, 1 double + 1 single blocks, context 32, vec 16, time 256, guidance yes, qkv bias yes"), r.out());
        assertTrue(r.out().contains("Missing keys: none") && r.out().contains("Unexpected keys: none"), r.out());
    }

    @Test
    void repeatedBlocksAreGroupedUnlessAllIsGiven() throws IOException {
        FluxArchitectureFixture.writeThreeBlocks(dir.resolve("three.safetensors"));
        Result r = run(dir.resolve("three.safetensors").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().matches("(?s).*double_blocks\\.\\{0\\.\\.2}\\.img_attn\\.qkv\\.weight +BF16 +\\[192, 64] +x3 .*"), r.out());
        assertTrue(r.out().contains("Missing keys: none"), r.out());
        Result a = run("--all", dir.resolve("three.safetensors").toString());
        assertTrue(a.out().contains("double_blocks.2.img_attn.qkv.weight"), a.out());
        assertFalse(a.out().contains("{0..2}"), a.out());
    }

    @Test
    void diffusersFolderJsonOutput() throws IOException {
        Result r = run("--json", dir.resolve("diffusers").toString());
        assertEquals(0, r.exit(), r.out());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals("diffusers safetensors, 2 shards + index", j.get("format").asText());
        assertEquals("DIFFUSERS", j.get("naming").asText());
        assertEquals(64, j.get("architecture").get("hiddenSize").asInt());
        assertEquals(1, j.get("architecture").get("depthSingle").asInt());
        assertTrue(j.get("architecture").get("guidanceEmbed").asBoolean());
        assertEquals(0, j.get("missingKeys").size());
        assertEquals(2, j.get("files").size());
        assertTrue(j.get("totalBytes").asLong() > 0);
        assertEquals(j.get("tensorCount").asInt(), j.get("dtypes").get("BF16").get("count").asInt());
        assertEquals(0, j.get("exitCode").asInt());
    }

    @Test
    void ggufFileShowsQuantTypesAndMetadata() throws IOException {
        GgufTestWriter g = new GgufTestWriter().kv("general.architecture", GgufValue.Type.STRING, "flux");
        for (Fixtures.T t : tensors) {
            boolean quant = t.shape().length == 2 && t.name().contains("blocks.");
            g.tensor(t.name(), quant ? GgmlType.Q8_0 : GgmlType.F32, t.shape(), quant ? GgufTestWriter.q8_0(t.values()) : GgufTestWriter.f32(t.values()));
        }
        Path p = g.write(dir.resolve("tiny.gguf"));
        Result r = run(p.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("Format:    GGUF v3"), r.out());
        assertTrue(r.out().contains("F32 x39 (247.36 KB), Q8_0 x13 (221.95 KB)"), r.out());
        assertTrue(r.out().matches("(?s).*single_blocks\\.0\\.linear1\\.weight +Q8_0 +\\[448, 64] +30\\.46 KB.*"), r.out());
        assertTrue(r.out().contains("general.architecture = flux"), r.out());
        assertTrue(r.out().contains("Missing keys: none"), r.out());
    }

    @Test
    void loraFileIsDescribedBriefly() throws IOException {
        Path p = dir.resolve("lora.safetensors");
        List<SafetensorsWriter.Tensor> ts = new ArrayList<>();
        for (int b = 0; b < 2; b++)
            for (String m : List.of("img_attn_qkv", "txt_mlp_0")) {
                String base = "lora_unet_double_blocks_" + b + "_" + m;
                ts.add(SafetensorsWriter.Tensor.ofFloats(base + ".lora_down.weight", DType.BF16, new long[]{8, 64}, new float[512]));
                ts.add(SafetensorsWriter.Tensor.ofFloats(base + ".lora_up.weight", DType.BF16, new long[]{192, 8}, new float[1536]));
                ts.add(SafetensorsWriter.Tensor.ofFloats(base + ".alpha", DType.F32, new long[]{}, new float[]{4}));
            }
        SafetensorsWriter.write(p, java.util.Map.of("ss_network_dim", "8"), ts);
        Result r = run(p.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("Format:    LoRA file: kohya, rank 8, 4 targets, alpha 4 (safetensors)"), r.out());
        assertTrue(r.out().contains("LoRA targets: double_blocks_img_attn_qkv, double_blocks_txt_mlp_0"), r.out());
    }

    @Test
    void malformedAndUnknownFilesGiveTheirExitCodes() throws IOException {
        Path trunc = dir.resolve("trunc.safetensors");
        byte[] full = Files.readAllBytes(dir.resolve("tiny.safetensors"));
        Files.write(trunc, java.util.Arrays.copyOf(full, full.length - 100));
        Result r = run(trunc.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("truncated") && r.err().contains("re-download"), r.err());

        Path sd = dir.resolve("sd.safetensors");
        SafetensorsWriter.write(sd, null, List.of(SafetensorsWriter.Tensor.ofFloats("cond_stage_model.x.weight", DType.F16, new long[]{3}, new float[3])));
        r = run(sd.toString());
        assertEquals(3, r.exit());
        assertTrue(r.out().contains("unknown layout") && r.out().contains("cond_stage_model.x.weight"), r.out());
        assertTrue(r.err().contains("not a FLUX transformer"), r.err());

        r = run("--json", dir.resolve("nothing.safetensors").toString());
        assertEquals(2, r.exit());
        assertTrue(r.out().contains("no such file"), r.out());
    }

    @Test
    void rangesAreCompact() {
        assertEquals("0..18", InspectCommand.ranges(java.util.stream.IntStream.range(0, 19).boxed().toList()));
        assertEquals("0..2,5,7,8", InspectCommand.ranges(List.of(0, 1, 2, 5, 7, 8)));
        assertEquals("23.80 GB", InspectCommand.human(23_802_932_552L));
    }
}
