package dev.impasto.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class LoraKeysTest {
    @ParameterizedTest
    @CsvSource({
            // key, format, role, module, segment
            "transformer.transformer_blocks.3.attn.to_q.lora_A.weight, DIFFUSERS, DOWN, double_blocks.3.img_attn.qkv, q",
            "transformer.transformer_blocks.3.attn.add_v_proj.lora_B.weight, DIFFUSERS, UP, double_blocks.3.txt_attn.qkv, add_v",
            "transformer_blocks.0.attn.to_out.0.lora_A.weight, DIFFUSERS, DOWN, double_blocks.0.img_attn.proj, ''",
            "transformer.transformer_blocks.0.attn.to_add_out.lora_down.weight, DIFFUSERS, DOWN, double_blocks.0.txt_attn.proj, ''",
            "transformer.transformer_blocks.1.ff.net.0.proj.lora_B.weight, DIFFUSERS, UP, double_blocks.1.img_mlp.0, ''",
            "transformer.transformer_blocks.1.ff_context.net.2.lora_B.weight, DIFFUSERS, UP, double_blocks.1.txt_mlp.2, ''",
            "transformer.transformer_blocks.1.norm1_context.linear.lora_A.weight, DIFFUSERS, DOWN, double_blocks.1.txt_mod.lin, ''",
            "transformer.single_transformer_blocks.37.proj_mlp.lora_A.weight, DIFFUSERS, DOWN, single_blocks.37.linear1, mlp",
            "transformer.single_transformer_blocks.2.norm.linear.lora_A.default.weight, DIFFUSERS, DOWN, single_blocks.2.modulation.lin, ''",
            "base_model.model.single_transformer_blocks.2.proj_out.lora_B.weight, DIFFUSERS, UP, single_blocks.2.linear2, ''",
            "transformer.single_transformer_blocks.2.attn.to_k.alpha, DIFFUSERS, ALPHA, single_blocks.2.linear1, k",
            "lora_unet_double_blocks_18_img_attn_qkv.lora_down.weight, KOHYA, DOWN, double_blocks.18.img_attn.qkv, ''",
            "lora_unet_double_blocks_0_txt_mod_lin.alpha, KOHYA, ALPHA, double_blocks.0.txt_mod.lin, ''",
            "lora_unet_double_blocks_0_img_mlp_2.lora_up.weight, KOHYA, UP, double_blocks.0.img_mlp.2, ''",
            "lora_unet_single_blocks_5_modulation_lin.lora_up.weight, KOHYA, UP, single_blocks.5.modulation.lin, ''",
            "lora_unet_single_blocks_5_linear1.lora_down.weight, KOHYA, DOWN, single_blocks.5.linear1, ''",
            "lora_transformer_single_transformer_blocks_0_attn_to_v.lora_up.weight, KOHYA, UP, single_blocks.0.linear1, v",
            "lora_unet_transformer_blocks_2_attn_add_k_proj.lora_down.weight, KOHYA, DOWN, double_blocks.2.txt_attn.qkv, add_k",
            "double_blocks.4.processor.qkv_lora2.down.weight, XLABS, DOWN, double_blocks.4.txt_attn.qkv, ''",
            "diffusion_model.double_blocks.4.processor.proj_lora1.up.weight, XLABS, UP, double_blocks.4.img_attn.proj, ''",
            "single_blocks.9.processor.qkv_lora.up.weight, XLABS, UP, single_blocks.9.linear1, q+k+v",
            "single_blocks.9.processor.proj_lora.down.weight, XLABS, DOWN, single_blocks.9.linear2, ''",
            "diffusion_model.double_blocks.2.img_attn.qkv.lora_A.weight, BFL_PEFT, DOWN, double_blocks.2.img_attn.qkv, ''",
            "model.diffusion_model.single_blocks.2.linear2.lora_up.weight, BFL_PEFT, UP, single_blocks.2.linear2, ''",
            "diffusion_model.single_blocks.2.linear1.lora.down.weight, BFL_PEFT, DOWN, single_blocks.2.linear1, ''",
    })
    void blockKeys(String key, LoraFormat format, LoraKeys.Role role, String module, String segment) {
        LoraKeys.Parsed p = LoraKeys.parse(key);
        assertEquals(LoraKeys.Kind.BLOCK, p.kind(), key);
        assertEquals(format, p.format(), key);
        assertEquals(role, p.role(), key);
        assertEquals(module, p.module(), key);
        assertEquals(segment, p.segment(), key);
    }

    @ParameterizedTest
    @CsvSource({
            "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight, TEXT_ENCODER",
            "lora_te3_encoder_block_0_layer_0_SelfAttention_q.lora_up.weight, TEXT_ENCODER",
            "text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_A.weight, TEXT_ENCODER",
            "text_encoder_2.encoder.block.0.layer.0.SelfAttention.q.lora_B.weight, TEXT_ENCODER",
            "transformer.x_embedder.lora_A.weight, OUTSIDE_BLOCKS",
            "transformer.norm_out.linear.lora_B.weight, OUTSIDE_BLOCKS",
            "transformer.time_text_embed.timestep_embedder.linear_1.lora_A.weight, OUTSIDE_BLOCKS",
            "lora_unet_final_layer_adaLN_modulation_1.lora_down.weight, OUTSIDE_BLOCKS",
            "lora_unet_img_in.alpha, OUTSIDE_BLOCKS",
            "diffusion_model.guidance_in.in_layer.lora_A.weight, OUTSIDE_BLOCKS",
            "lora_unet_double_blocks_0_img_attn_qkv.dora_scale, UNSUPPORTED_TYPE",
            "transformer.transformer_blocks.0.attn.to_q.lora_magnitude_vector, UNSUPPORTED_TYPE",
            "lora_unet_single_blocks_0_linear1.hada_w1_a, UNSUPPORTED_TYPE",
            "lora_unet_single_blocks_0_linear1.lokr_w1, UNSUPPORTED_TYPE",
            "transformer.transformer_blocks.0.attn.to_q.lora_B.bias, UNSUPPORTED_TYPE",
            "transformer.transformer_blocks.0.attn.norm_q.lora_A.weight, UNKNOWN",
            "lora_unet_double_blocks_0_img_attn_norm_query_norm.lora_down.weight, UNKNOWN",
            "transformer.transformer_blocks.0.attn.to_q.weight, UNKNOWN",
            "double_blocks.0.img_attn.qkv.weight, UNKNOWN",
            "random, UNKNOWN",
    })
    void otherKeys(String key, LoraKeys.Kind kind) {
        assertEquals(kind, LoraKeys.parse(key).kind(), key);
    }

    @Test
    void detectPicksTheLayoutOfTheBlockKeys() {
        assertEquals(LoraFormat.KOHYA, LoraFormat.detect(List.of("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight",
                "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight", "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight")));
        assertEquals(LoraFormat.DIFFUSERS, LoraFormat.detect(List.of("transformer.transformer_blocks.0.attn.to_q.lora_A.weight",
                "lora_te1_a.lora_down.weight")));
        assertEquals(LoraFormat.XLABS, LoraFormat.detect(List.of("double_blocks.0.processor.qkv_lora1.down.weight")));
        assertEquals(LoraFormat.BFL_PEFT, LoraFormat.detect(List.of("diffusion_model.single_blocks.0.linear2.lora_B.weight")));
        assertEquals(LoraFormat.KOHYA, LoraFormat.detect(List.of("lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LoraFormat.detect(List.of("model.weight")));
        assertTrue(e.getMessage().contains("model.weight"), e.getMessage());
        assertEquals(LoraFormat.DIFFUSERS, LoraFormat.parse("ai-toolkit"));
        assertEquals(LoraFormat.KOHYA, LoraFormat.parse("sd-scripts"));
    }

    @Test
    void layoutMatchesTheModel() {
        var m = FluxLoraLayout.modules(dev.impasto.model.FluxConfig.dev());
        assertEquals(19 * 10 + 38 * 3, m.size());
        var lin1 = m.get("single_blocks.37.linear1");
        assertEquals(3 * 3072 + 12288, lin1.out());
        assertEquals(List.of("single_transformer_blocks.37.attn.to_q", "single_transformer_blocks.37.attn.to_k",
                "single_transformer_blocks.37.attn.to_v", "single_transformer_blocks.37.proj_mlp"),
                lin1.segments().stream().map(FluxLoraLayout.Segment::diffusersModule).toList());
        assertEquals(9216, lin1.segment("mlp").rowStart());
        assertEquals(15360, m.get("single_blocks.0.linear2").in());
        assertEquals("lora_unet_double_blocks_7_txt_mod_lin", m.get("double_blocks.7.txt_mod.lin").kohyaName());
        assertEquals(6 * 3072, m.get("double_blocks.7.txt_mod.lin").out());
    }

    @Test
    void layoutAgreesWithTheModelsBlockLinears() {
        try (var model = LoraFixtures.model()) {
            var layout = FluxLoraLayout.modules(LoraFixtures.SMALL);
            assertEquals(model.blockLinears().stream().map(l -> l.key).toList(), List.copyOf(layout.keySet()));
            for (var l : model.blockLinears()) {
                assertEquals(l.out(), layout.get(l.key).out(), l.key);
                assertEquals(l.in(), layout.get(l.key).in(), l.key);
            }
        }
    }
}
