package dev.impasto.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.lora.cli.LoraConvertCommand;
import dev.impasto.model.FluxConfig;
import dev.impasto.model.FluxModel;
import dev.impasto.model.LoraConfig;
import dev.impasto.model.LoraGroup;
import dev.impasto.model.RandomWeights;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class LoraConvertCommandTest {
    @TempDir
    Path dir;
    final CpuBackend be = new CpuBackend();
    final StringWriter out = new StringWriter(), err = new StringWriter();

    int run(String... args) {
        CommandLine cl = new CommandLine(new LoraConvertCommand());
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        return cl.execute(args);
    }

    /** A rank-2 per-piece LoRA on every block linear of flux-tiny, written in {@code format}. */
    Path tinyLora(LoraFormat format, Map<String, String> metadata) throws IOException {
        FluxConfig cfg = FluxConfig.tiny();
        try (FluxModel model = FluxModel.build(cfg, be, DType.F32, new RandomWeights(be, DType.F32, 1, 1.0))) {
            List<LoraGroup> groups = model.attachLora(new LoraConfig(2, 4, "all", null, null, Map.of(), 0, false), 3);
            for (LoraGroup g : groups) {
                be.randn(g.b, g.key.hashCode());
                g.syncCompute(be);
            }
            Path p = dir.resolve("in-" + format + ".safetensors");
            LoraFileWriter.write(p, groups, be, format, metadata);
            return p;
        }
    }

    @Test
    void convertsKohyaToDiffusersAndPrintsTheReport() throws IOException {
        Path in = tinyLora(LoraFormat.KOHYA, Map.of("ss_output_name", "tiny"));
        Path o = dir.resolve("out.safetensors");
        assertEquals(0, run(in.toString(), "-o", o.toString(), "--to", "diffusers", "--model", "flux-tiny", "--dtype", "bf16"), err.toString());
        assertTrue(out.toString().contains("format: kohya sd-scripts"), out.toString());
        assertTrue(out.toString().contains("modules: 13"), out.toString());
        assertTrue(out.toString().contains("wrote " + o), out.toString());
        LoadedLora a = LoraFileReader.read(in, FluxConfig.tiny(), be, DType.F32), b = LoraFileReader.read(o, FluxConfig.tiny(), be, DType.F32);
        assertEquals(LoraFormat.DIFFUSERS, b.format());
        assertEquals("tiny", b.metadata().get("ss_output_name"), "the trainer's metadata is carried over");
        assertEquals("kohya:" + in.getFileName(), b.metadata().get("impasto.converted_from"));
        assertEquals(a.groups().size(), b.groups().size());
        for (int i = 0; i < a.groups().size(); i++) {
            LoraGroup x = a.groups().get(i), y = b.groups().get(i);
            assertEquals(x.key, y.key);
            assertEquals(x.pieces, y.pieces);
            assertEquals(x.scale(), y.scale());
            double[] xa = be.toDoubles(x.a), ya = be.toDoubles(y.a);
            for (int k = 0; k < xa.length; k++) assertEquals(DType.BF16.round(xa[k]), ya[k], 0.0);
        }
        // again without --force: refused, file untouched
        long size = Files.size(o);
        assertEquals(1, run(in.toString(), "-o", o.toString(), "--to", "kohya", "--model", "flux-tiny"));
        assertTrue(err.toString().contains("exists; pass --force"), err.toString());
        assertEquals(size, Files.size(o));
    }

    @Test
    void refusesToDropTensorsUnlessAsked() throws IOException {
        Path in = tinyLora(LoraFormat.DIFFUSERS, Map.of());
        Path withTe = dir.resolve("te.safetensors");
        try (SafetensorsFile sf = SafetensorsFile.open(in)) { // the same file with a text-encoder tensor added
            List<SafetensorsWriter.Tensor> items = new java.util.ArrayList<>();
            for (var e : sf.tensors()) items.add(SafetensorsWriter.Tensor.copyOf(e));
            items.add(SafetensorsWriter.Tensor.ofFloats("lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", DType.F32, new long[] {2, 4},
                    new float[8]));
            SafetensorsWriter.write(withTe, sf.metadata(), items);
        }
        Path o = dir.resolve("o.safetensors");
        assertEquals(2, run(withTe.toString(), "-o", o.toString(), "--to", "kohya", "--model", "flux-tiny"));
        assertTrue(out.toString().contains("lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"), out.toString());
        assertTrue(err.toString().contains("cannot be carried over"), err.toString());
        assertFalse(Files.exists(o));
        assertEquals(0, run(withTe.toString(), "-o", o.toString(), "--to", "kohya", "--model", "flux-tiny", "--drop-unapplied"), err.toString());
        assertTrue(LoraFileReader.read(o, FluxConfig.tiny(), be, DType.F32).complete());
    }

    @Test
    void badInputsAreReportedNotThrown() throws IOException {
        Path junk = dir.resolve("junk.safetensors");
        Files.writeString(junk, "not a safetensors file at all");
        assertEquals(1, run(junk.toString(), "-o", dir.resolve("x.safetensors").toString(), "--to", "kohya", "--model", "flux-tiny"));
        assertTrue(err.toString().contains(junk + ": the header length field says") && err.toString().contains("the file is not a safetensors file"),
                err.toString());
        Path in = tinyLora(LoraFormat.KOHYA, Map.of());
        assertEquals(1, run(in.toString(), "-o", dir.resolve("y.safetensors").toString(), "--to", "xlabs", "--model", "flux-tiny"));
        assertTrue(err.toString().contains("read only"), err.toString());
        assertEquals(1, run(in.toString(), "-o", dir.resolve("z.safetensors").toString(), "--to", "diffusers", "--model", "flux-dev"));
        assertTrue(err.toString().contains("expected shape"), err.toString());
    }
}
