package dev.impasto.io.flux;

import dev.impasto.io.Fixtures;
import dev.impasto.io.GgufTestWriter;
import dev.impasto.io.Shapes;
import dev.impasto.io.TensorEntry;
import dev.impasto.io.UnknownLayoutException;
import dev.impasto.quant.GgmlType;
import dev.impasto.io.gguf.GgufValue;
import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class FluxCheckpointTest {
    @TempDir
    Path dir;

    static final float[] NF4 = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
            -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
            0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

    static byte[] bytes(MemorySegment s) {
        return s.toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void bflFileIsDetectedWithItsArchitecture() throws IOException {
        List<Fixtures.T> ts = Fixtures.randomBfl(Fixtures.TINY, 1);
        Path p = dir.resolve("tiny.safetensors");
        Fixtures.writeBfl(p, ts, "", DType.BF16);
        try (FluxCheckpoint c = FluxCheckpoint.open(p)) {
            assertEquals(FluxCheckpoint.Naming.BFL, c.naming());
            assertEquals(FluxCheckpoint.Quantization.NONE, c.quantization());
            assertEquals(Fixtures.TINY, c.architecture());
            assertEquals("custom", c.architecture().variant());
            assertTrue(c.isComplete(), c.problems() + " " + c.missingKeys());
            c.requireComplete();
            assertEquals(ts.size(), c.weights().size());
            assertEquals(List.copyOf(Fixtures.TINY.expectedShapes().keySet()), List.copyOf(c.weights().keySet()));
            assertEquals("BFL safetensors", c.formatDescription());
            for (Fixtures.T t : ts) {
                WeightSource.Dense d = (WeightSource.Dense) c.weight(t.name());
                assertTrue(d.isSingle());
                assertArrayEquals(t.shape(), d.shape());
                assertArrayEquals(t.values(), d.toFloatArray(), t.name());
            }
        }
    }

    @Test
    void comfyPrefixIsStrippedAndOtherComponentsAreSetAside() throws IOException {
        List<Fixtures.T> ts = Fixtures.randomBfl(Fixtures.TINY, 2);
        List<SafetensorsWriter.Tensor> w = new ArrayList<>();
        for (Fixtures.T t : ts) w.add(SafetensorsWriter.Tensor.ofFloats("model.diffusion_model." + t.name(), DType.BF16, t.shape(), t.values()));
        w.add(SafetensorsWriter.Tensor.ofFloats("first_stage_model.decoder.conv_in.weight", DType.F32, new long[]{2}, new float[]{1, 2}));
        w.add(SafetensorsWriter.Tensor.ofFloats("text_encoders.clip_l.x", DType.F16, new long[]{1}, new float[]{1}));
        Path p = dir.resolve("aio.safetensors");
        SafetensorsWriter.write(p, null, w);
        try (FluxCheckpoint c = FluxCheckpoint.open(p)) {
            assertEquals("model.diffusion_model.", c.keyPrefix());
            assertEquals(Fixtures.TINY, c.architecture());
            assertEquals(List.of("first_stage_model.decoder.conv_in.weight", "text_encoders.clip_l.x"), c.ignoredKeys().stream().sorted().toList());
            assertTrue(c.isComplete());
            assertTrue(c.formatDescription().contains("model.diffusion_model."));
        }
    }

    @Test
    void diffusersShardsLoadBitExactToTheBflTensors() throws IOException {
        List<Fixtures.T> ts = Fixtures.randomBfl(Fixtures.TINY, 3);
        Path bfl = dir.resolve("tiny.safetensors");
        Fixtures.writeBfl(bfl, ts, "", DType.BF16);
        long total = ts.stream().mapToLong(t -> 2 * Shapes.numel(t.shape())).sum();
        Path model = dir.resolve("FLUX-tiny");
        List<Path> written = Fixtures.writeDiffusers(model.resolve("transformer"), ts, 64, DType.BF16, total * 6 / 10);
        assertEquals(3, written.size(), "2 shards + index: " + written);

        for (Path open : List.of(model, model.resolve("transformer"), written.get(2))) {
            try (FluxCheckpoint a = FluxCheckpoint.open(bfl); FluxCheckpoint b = FluxCheckpoint.open(open); Arena arena = Arena.ofConfined()) {
                assertEquals(FluxCheckpoint.Naming.DIFFUSERS, b.naming());
                assertEquals("diffusers safetensors, 2 shards + index", b.formatDescription());
                assertEquals(Fixtures.TINY, b.architecture());
                assertTrue(b.isComplete(), b.missingKeys() + " " + b.unexpectedKeys() + " " + b.problems());
                assertEquals(a.weights().keySet(), b.weights().keySet());
                for (String k : a.weights().keySet()) {
                    WeightSource.Dense x = (WeightSource.Dense) a.weight(k), y = (WeightSource.Dense) b.weight(k);
                    assertArrayEquals(x.shape(), y.shape(), k);
                    assertArrayEquals(bytes(x.materialize(arena)), bytes(y.materialize(arena)), k);
                }
                WeightSource.Dense qkv = (WeightSource.Dense) b.weight("double_blocks.0.img_attn.qkv.weight");
                assertEquals(List.of("transformer_blocks.0.attn.to_q.weight", "transformer_blocks.0.attn.to_k.weight",
                        "transformer_blocks.0.attn.to_v.weight"), qkv.sourceKeys());
                assertEquals(4, ((WeightSource.Dense) b.weight("single_blocks.0.linear1.bias")).parts().size());
                WeightSource.Dense ada = (WeightSource.Dense) b.weight("final_layer.adaLN_modulation.1.weight");
                assertTrue(ada.swapHalves());
                assertEquals(List.of("norm_out.linear.weight"), ada.sourceKeys());
            }
        }
    }

    @Test
    void missingUnexpectedAndMisshapenKeysAreListed() throws IOException {
        List<Fixtures.T> ts = new ArrayList<>(Fixtures.randomBfl(Fixtures.TINY, 4));
        ts.removeIf(t -> t.name().equals("double_blocks.0.txt_mlp.2.bias") || t.name().startsWith("guidance_in."));
        ts.replaceAll(t -> t.name().equals("single_blocks.0.norm.key_norm.scale") ? new Fixtures.T(t.name(), new long[]{16}, new float[16]) : t);
        ts.add(new Fixtures.T("double_blocks.0.img_attn.extra.weight", new long[]{2}, new float[]{1, 2}));
        Path p = dir.resolve("broken.safetensors");
        Fixtures.writeBfl(p, ts, "", DType.F32);
        try (FluxCheckpoint c = FluxCheckpoint.open(p)) {
            assertFalse(c.architecture().guidanceEmbed(), "no guidance_in: schnell-style");
            assertEquals(List.of("double_blocks.0.txt_mlp.2.bias"), c.missingKeys());
            assertEquals(List.of("double_blocks.0.img_attn.extra.weight"), c.unexpectedKeys());
            assertEquals(1, c.problems().size());
            assertTrue(c.problems().getFirst().contains("single_blocks.0.norm.key_norm.scale has shape [16]"), c.problems().toString());
            assertFalse(c.isComplete());
            CheckpointLayoutException e = assertThrows(CheckpointLayoutException.class, c::requireComplete);
            assertTrue(e.getMessage().contains("double_blocks.0.txt_mlp.2.bias"), e.getMessage());
        }
    }

    @Test
    void ggufCheckpointKeepsQuantizedBlocksAndDenseEmbedders() throws IOException {
        List<Fixtures.T> ts = Fixtures.randomBfl(Fixtures.TINY, 5);
        GgufTestWriter g = new GgufTestWriter().kv("general.architecture", GgufValue.Type.STRING, "flux");
        for (Fixtures.T t : ts) {
            boolean quant = t.shape().length == 2 && t.name().contains("blocks.") && t.shape()[1] % 32 == 0;
            g.tensor(t.name(), quant ? GgmlType.Q8_0 : GgmlType.F32, t.shape(),
                    quant ? GgufTestWriter.q8_0(t.values()) : GgufTestWriter.f32(t.values()));
        }
        Path p = g.write(dir.resolve("tiny-Q8_0.gguf"));
        try (FluxCheckpoint c = FluxCheckpoint.open(p)) {
            assertEquals(FluxCheckpoint.Quantization.GGUF, c.quantization());
            assertEquals("GGUF v3", c.formatDescription());
            assertEquals(Fixtures.TINY, c.architecture());
            assertTrue(c.isComplete(), c.problems().toString());
            WeightSource.Gguf q = (WeightSource.Gguf) c.weight("single_blocks.0.linear1.weight");
            assertEquals(GgmlType.Q8_0, q.ggmlType());
            assertArrayEquals(new long[]{3 * 64 + 256, 64}, q.shape());
            assertEquals((3 * 64 + 256) * 2 * 34, q.storedBytes());
            WeightSource.Dense e = (WeightSource.Dense) c.weight("img_in.weight");
            assertEquals(DType.F32, e.dtype());
            assertArrayEquals(ts.getFirst().values(), e.toFloatArray());
        }
    }

    /** Real NF4 quantization (bitsandbytes semantics), blocks of 64, element 2j in the high nibble. */
    static Object[] nf4(float[] w) {
        int blocks = (w.length + 63) / 64;
        float[] absmax = new float[blocks];
        byte[] packed = new byte[(w.length + 1) / 2];
        for (int b = 0; b < blocks; b++) {
            for (int i = b * 64; i < Math.min(w.length, b * 64 + 64); i++) absmax[b] = Math.max(absmax[b], Math.abs(w[i]));
            for (int i = b * 64; i < Math.min(w.length, b * 64 + 64); i++) {
                float x = absmax[b] == 0 ? 0 : w[i] / absmax[b];
                int best = 0;
                for (int c = 1; c < 16; c++) if (Math.abs(NF4[c] - x) < Math.abs(NF4[best] - x)) best = c;
                packed[i / 2] |= (byte) (i % 2 == 0 ? best << 4 : best);
            }
        }
        return new Object[]{packed, absmax};
    }

    static String state(long[] shape, boolean nested) {
        return "{\"quant_type\": \"nf4\", \"absmax\": null, \"blocksize\": 64, \"quant_map\": null, \"dtype\": \"bfloat16\", \"shape\": ["
                + shape[0] + ", " + shape[1] + "]" + (nested ? ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.0123" : "") + "}";
    }

    static void addNf4(List<SafetensorsWriter.Tensor> out, String key, long[] shape, float[] values, boolean nested, SplittableRandom r) {
        byte[] stateBytes = state(shape, nested).getBytes(StandardCharsets.UTF_8);
        int numel = (int) Shapes.numel(shape);
        int blocks = (numel + 63) / 64;
        float[] code = NF4.clone();
        if (!nested) {
            Object[] q = nf4(values);
            out.add(SafetensorsWriter.Tensor.ofBytes(key, DType.U8, new long[]{(numel + 1) / 2, 1}, (byte[]) q[0]));
            out.add(SafetensorsWriter.Tensor.ofFloats(key + ".absmax", DType.F32, new long[]{blocks}, (float[]) q[1]));
        } else {
            byte[] packed = new byte[(numel + 1) / 2], qabs = new byte[blocks];
            r.nextBytes(packed);
            r.nextBytes(qabs);
            out.add(SafetensorsWriter.Tensor.ofBytes(key, DType.U8, new long[]{(numel + 1) / 2, 1}, packed));
            out.add(SafetensorsWriter.Tensor.ofBytes(key + ".absmax", DType.U8, new long[]{blocks}, qabs));
            out.add(SafetensorsWriter.Tensor.ofFloats(key + ".nested_absmax", DType.F32, new long[]{(blocks + 255) / 256}, new float[(blocks + 255) / 256]));
            out.add(SafetensorsWriter.Tensor.ofFloats(key + ".nested_quant_map", DType.F32, new long[]{256}, new float[256]));
        }
        out.add(SafetensorsWriter.Tensor.ofFloats(key + ".quant_map", DType.F32, new long[]{16}, code));
        out.add(SafetensorsWriter.Tensor.ofBytes(key + ".quant_state.bitsandbytes__nf4", DType.U8, new long[]{stateBytes.length}, stateBytes));
    }

    @Test
    void forgeStyleNf4WithBflNames() throws IOException {
        List<Fixtures.T> ts = Fixtures.randomBfl(Fixtures.TINY, 6);
        List<SafetensorsWriter.Tensor> w = new ArrayList<>();
        SplittableRandom r = new SplittableRandom(6);
        for (Fixtures.T t : ts) {
            String key = "model.diffusion_model." + t.name();
            if (t.shape().length == 2 && t.name().contains("blocks.")) addNf4(w, key, t.shape(), t.values(), false, r);
            else w.add(SafetensorsWriter.Tensor.ofFloats(key, DType.BF16, t.shape(), t.values()));
        }
        Path p = dir.resolve("flux-nf4.safetensors");
        SafetensorsWriter.write(p, null, w);
        try (FluxCheckpoint c = FluxCheckpoint.open(p)) {
            assertEquals(FluxCheckpoint.Quantization.BNB_NF4, c.quantization());
            assertEquals(FluxCheckpoint.Naming.BFL, c.naming());
            assertEquals("bitsandbytes NF4, BFL names (key prefix \"model.diffusion_model.\")", c.formatDescription());
            assertEquals(Fixtures.TINY, c.architecture());
            assertTrue(c.isComplete(), c.problems() + " " + c.unexpectedKeys());
            WeightSource.BnbNf4 q = (WeightSource.BnbNf4) c.weight("double_blocks.0.img_attn.qkv.weight");
            assertEquals(1, q.parts().size());
            Nf4Part part = q.parts().getFirst();
            assertArrayEquals(new long[]{192, 64}, q.shape());
            assertEquals(64, part.state().blocksize());
            assertEquals(DType.BF16, q.originalDtype());
            assertFalse(part.state().nested());
            assertEquals(192 * 64 / 2, part.packed().byteSize());
            assertEquals(192, part.absmax().numel());
            // dequantize one element through the stored code book and absmax
            Fixtures.T orig = ts.stream().filter(t -> t.name().equals("double_blocks.0.img_attn.qkv.weight")).findFirst().orElseThrow();
            int hi = (part.packed().data().get(ValueLayout.JAVA_BYTE, 0) >> 4) & 15;
            float x = part.quantMap().getFloat(hi) * part.absmax().getFloat(0);
            assertEquals(orig.values()[0], x, part.absmax().getFloat(0) * 0.1f);
            assertTrue(c.weight("double_blocks.0.img_attn.qkv.bias") instanceof WeightSource.Dense);
        }
    }

    @Test
    void diffusersNf4KeepsSplitPiecesAsParts() throws IOException {
        List<Fixtures.T> ts = Fixtures.randomBfl(Fixtures.TINY, 7);
        Path tmp = dir.resolve("dense");
        Fixtures.writeDiffusers(tmp, ts, 64, DType.BF16, Long.MAX_VALUE);
        List<SafetensorsWriter.Tensor> w = new ArrayList<>();
        SplittableRandom r = new SplittableRandom(7);
        try (var f = dev.impasto.io.safetensors.SafetensorsFile.open(tmp.resolve("diffusion_pytorch_model.safetensors"))) {
            for (TensorEntry t : f.tensors()) {
                if (t.rank() == 2 && t.name().contains("transformer_blocks.")) addNf4(w, t.name(), t.shape(), t.toFloatArray(), true, r);
                else w.add(SafetensorsWriter.Tensor.copyOf(t));
            }
            SafetensorsWriter.write(dir.resolve("transformer").resolve("diffusion_pytorch_model.safetensors"), null, w);
        }
        try (FluxCheckpoint c = FluxCheckpoint.open(dir)) {
            assertEquals(FluxCheckpoint.Quantization.BNB_NF4, c.quantization());
            assertEquals(FluxCheckpoint.Naming.DIFFUSERS, c.naming());
            assertEquals("bitsandbytes NF4 (double-quantized), diffusers names", c.formatDescription());
            assertTrue(c.isComplete(), c.problems() + " " + c.missingKeys() + " " + c.unexpectedKeys());
            WeightSource.BnbNf4 qkv = (WeightSource.BnbNf4) c.weight("double_blocks.0.txt_attn.qkv.weight");
            assertEquals(List.of("transformer_blocks.0.attn.add_q_proj.weight", "transformer_blocks.0.attn.add_k_proj.weight",
                    "transformer_blocks.0.attn.add_v_proj.weight"), qkv.sourceKeys());
            assertArrayEquals(new long[]{192, 64}, qkv.shape());
            WeightSource.BnbNf4 l1 = (WeightSource.BnbNf4) c.weight("single_blocks.0.linear1.weight");
            assertEquals(4, l1.parts().size());
            assertArrayEquals(new long[]{64 + 64 + 64 + 256, 64}, l1.shape());
            Nf4Part proj = l1.parts().get(3);
            assertTrue(proj.state().nested());
            assertEquals(256, proj.state().nestedBlocksize());
            assertEquals(0.0123f, proj.state().nestedOffset());
            assertEquals(DType.U8, proj.absmax().dtype());
            assertEquals(1, proj.nestedAbsmax().orElseThrow().numel());
        }
    }

    @Test
    void inconsistentNf4CompanionsAreAFormatError() throws IOException {
        List<SafetensorsWriter.Tensor> w = new ArrayList<>();
        addNf4(w, "double_blocks.0.img_mod.lin.weight", new long[]{384, 64}, new float[384 * 64], false, new SplittableRandom(1));
        w.replaceAll(t -> t.name().endsWith(".absmax") ? SafetensorsWriter.Tensor.ofFloats(t.name(), DType.F32, new long[]{3}, new float[3]) : t);
        w.add(SafetensorsWriter.Tensor.ofFloats("img_in.weight", DType.F32, new long[]{64, 16}, new float[64 * 16]));
        Path p = dir.resolve("bad-nf4.safetensors");
        SafetensorsWriter.write(p, null, w);
        CheckpointLayoutException e = assertThrows(CheckpointLayoutException.class, () -> FluxCheckpoint.open(p));
        assertTrue(e.getMessage().contains("double_blocks.0.img_mod.lin.weight") && e.getMessage().contains("absmax"), e.getMessage());
    }

    @Test
    void loraAndForeignFilesAreUnknownLayouts() throws IOException {
        Path lora = dir.resolve("lora.safetensors");
        SafetensorsWriter.write(lora, null, List.of(
                SafetensorsWriter.Tensor.ofFloats("transformer.transformer_blocks.0.attn.to_q.lora_A.weight", DType.BF16, new long[]{4, 64}, new float[256]),
                SafetensorsWriter.Tensor.ofFloats("transformer.transformer_blocks.0.attn.to_q.lora_B.weight", DType.BF16, new long[]{64, 4}, new float[256])));
        UnknownLayoutException e = assertThrows(UnknownLayoutException.class, () -> FluxCheckpoint.open(lora));
        assertTrue(e.getMessage().contains("LoRA") && e.getMessage().contains("rank 4"), e.getMessage());

        Path sd = dir.resolve("sd15.safetensors");
        SafetensorsWriter.write(sd, null, List.of(SafetensorsWriter.Tensor.ofFloats("model.diffusion_model.input_blocks.0.0.weight",
                DType.F16, new long[]{2}, new float[2])));
        e = assertThrows(UnknownLayoutException.class, () -> FluxCheckpoint.open(sd));
        assertTrue(e.getMessage().contains("not a FLUX transformer"), e.getMessage());

        Path empty = Files.createDirectory(dir.resolve("empty"));
        e = assertThrows(UnknownLayoutException.class, () -> FluxCheckpoint.open(empty));
        assertTrue(e.getMessage().contains("no .safetensors or .gguf"), e.getMessage());
    }

    @Test
    void fp8CheckpointsAreListedButFlagged() throws IOException {
        List<Fixtures.T> ts = Fixtures.randomBfl(Fixtures.TINY, 8);
        StringBuilder h = new StringBuilder("{");
        long off = 0;
        for (Fixtures.T t : ts) {
            long n = Shapes.numel(t.shape());
            if (h.length() > 1) h.append(',');
            h.append('"').append(t.name()).append("\":{\"dtype\":\"F8_E4M3\",\"shape\":").append(java.util.Arrays.toString(t.shape()).replace(" ", ""))
                    .append(",\"data_offsets\":[").append(off).append(',').append(off + n).append("]}");
            off += n;
        }
        h.append('}');
        byte[] hb = h.toString().getBytes(StandardCharsets.UTF_8);
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate((int) (8 + hb.length + off)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putLong(hb.length).put(hb);
        Path p = dir.resolve("fp8.safetensors");
        Files.write(p, b.array());
        try (FluxCheckpoint c = FluxCheckpoint.open(p)) {
            assertEquals(Fixtures.TINY, c.architecture());
            assertEquals(1, c.problems().size());
            assertTrue(c.problems().getFirst().contains(ts.size() + " weights are stored as F8_E4M3"), c.problems().toString());
            assertThrows(IllegalStateException.class, () -> ((WeightSource.Dense) c.weight("img_in.weight")).dtype());
        }
    }

    @Test
    void referenceArchitecturesHaveTheRightSize() {
        assertEquals(780, FluxArchitecture.DEV.expectedShapes().size(), "flux1-dev.safetensors holds 780 tensors");
        assertEquals(776, FluxArchitecture.SCHNELL.expectedShapes().size());
        long p = FluxArchitecture.DEV.parameterCount();
        assertTrue(p > 11.85e9 && p < 11.95e9, "11.9 B: " + p);
        assertEquals("FLUX.1-dev", FluxArchitecture.DEV.variant());
        assertEquals("FLUX.1-schnell", FluxArchitecture.SCHNELL.variant());
        assertEquals("FLUX.1-Fill-dev", new FluxArchitecture(384, 64, 3072, 24, 128, 12288, 19, 38, 4096, 768, 256, true, true).variant());
        assertArrayEquals(new long[]{21504, 3072}, FluxArchitecture.DEV.expectedShapes().get("single_blocks.37.linear1.weight"));
        assertArrayEquals(new long[]{3072, 15360}, FluxArchitecture.DEV.expectedShapes().get("single_blocks.0.linear2.weight"));
        assertArrayEquals(new long[]{6144, 3072}, FluxArchitecture.DEV.expectedShapes().get("final_layer.adaLN_modulation.1.weight"));
    }

    @Test
    void keyMapRoundTripsEveryDevKeyAndMatchesDiffusersConversion() {
        int diffusersKeys = 0;
        for (String k : FluxArchitecture.DEV.expectedShapes().keySet()) {
            FluxKeyMap.Source s = FluxKeyMap.bflToDiffusers(k).orElseThrow(() -> new AssertionError(k));
            for (int i = 0; i < s.diffusersKeys().size(); i++) {
                FluxKeyMap.Target t = FluxKeyMap.diffusersToBfl(s.diffusersKeys().get(i)).orElseThrow();
                assertEquals(new FluxKeyMap.Target(k, i, s.diffusersKeys().size(), s.swapHalves()), t);
                diffusersKeys++;
            }
        }
        // diffusers FluxTransformer2DModel (dev) state dict size: 780 BFL tensors + 2*2 extra per double block qkv split
        // (3 pieces instead of 1, weight+bias, img+txt) + 3*2 per single block (4 pieces instead of 1)
        assertEquals(780 + 19 * 2 * 2 * 2 + 38 * 3 * 2, diffusersKeys);
        Map<String, String> fromScript = Map.of(
                "time_text_embed.timestep_embedder.linear_1.weight", "time_in.in_layer.weight",
                "time_text_embed.guidance_embedder.linear_2.bias", "guidance_in.out_layer.bias",
                "transformer_blocks.3.attn.norm_added_k.weight", "double_blocks.3.txt_attn.norm.key_norm.scale",
                "transformer_blocks.3.attn.to_add_out.bias", "double_blocks.3.txt_attn.proj.bias",
                "transformer_blocks.3.ff_context.net.0.proj.weight", "double_blocks.3.txt_mlp.0.weight",
                "single_transformer_blocks.5.proj_out.weight", "single_blocks.5.linear2.weight",
                "single_transformer_blocks.5.norm.linear.bias", "single_blocks.5.modulation.lin.bias",
                "proj_out.weight", "final_layer.linear.weight",
                "context_embedder.bias", "txt_in.bias");
        fromScript.forEach((d, b) -> assertEquals(b, FluxKeyMap.diffusersToBfl(d).orElseThrow().bflKey(), d));
        assertEquals(new FluxKeyMap.Target("single_blocks.5.linear1.weight", 3, 4, false),
                FluxKeyMap.diffusersToBfl("single_transformer_blocks.5.proj_mlp.weight").orElseThrow());
        assertTrue(FluxKeyMap.diffusersToBfl("norm_out.linear.bias").orElseThrow().swapHalves());
        assertTrue(FluxKeyMap.diffusersToBfl("pos_embed.foo").isEmpty());
    }
}
