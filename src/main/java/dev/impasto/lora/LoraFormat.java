package dev.impasto.lora;

import java.util.Collection;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;

/** The LoRA file layouts impasto reads, and the two it writes. */
public enum LoraFormat {
    /**
     * diffusers / peft, as {@code FluxPipeline.save_lora_weights}, ai-toolkit and SimpleTuner write it:
     * {@code transformer.transformer_blocks.N.attn.to_q.lora_A.weight} [r, in] / {@code .lora_B.weight} [rows, r], fused
     * projections split (to_q/to_k/to_v, proj_mlp); alpha in the {@code lora_adapter_metadata} JSON, none = rank.
     */
    DIFFUSERS(true, "diffusers/peft (transformer.*.lora_A/lora_B)"),
    /**
     * kohya sd-scripts ({@code networks/lora_flux.py}): {@code lora_unet_double_blocks_N_img_attn_qkv.lora_down.weight}
     * [r, in], {@code .lora_up.weight} [out, r], {@code .alpha} (scalar), on the fused BFL modules.
     */
    KOHYA(true, "kohya sd-scripts (lora_unet_*.lora_down/lora_up/alpha)"),
    /** XLabs x-flux (read only): {@code double_blocks.N.processor.qkv_lora1.down.weight} (1 = img, 2 = txt), scale 1. */
    XLABS(false, "XLabs x-flux (*.processor.qkv_lora/proj_lora .down/.up)"),
    /**
     * BFL module names with peft or kohya suffixes (read only), as ComfyUI and several trainers save them:
     * {@code diffusion_model.double_blocks.N.img_attn.qkv.lora_A.weight}.
     */
    BFL_PEFT(false, "BFL module names (diffusion_model.*.lora_A/lora_B)");

    private final boolean writable;
    private final String description;

    LoraFormat(boolean writable, String description) {
        this.writable = writable;
        this.description = description;
    }

    public boolean writable() {
        return writable;
    }

    public String description() {
        return description;
    }

    /**
     * The layout of a file from its tensor names: the format most of its transformer-block LoRA keys are written in
     * (text-encoder keys count when nothing else is there). Throws if no key looks like a FLUX LoRA weight.
     */
    public static LoraFormat detect(Collection<String> keys) {
        Map<LoraFormat, Integer> votes = new EnumMap<>(LoraFormat.class), weak = new EnumMap<>(LoraFormat.class);
        for (String k : keys) {
            LoraKeys.Parsed p = LoraKeys.parse(k);
            if (p.format() == null) continue;
            (p.kind() == LoraKeys.Kind.BLOCK ? votes : weak).merge(p.format(), 1, Integer::sum);
        }
        Map<LoraFormat, Integer> use = votes.isEmpty() ? weak : votes;
        LoraFormat best = null;
        for (var e : use.entrySet()) if (best == null || e.getValue() > use.get(best)) best = e.getKey();
        if (best == null) {
            String sample = keys.stream().limit(5).toList().toString();
            throw new IllegalArgumentException("no FLUX LoRA weights among " + keys.size() + " tensors (first: " + sample
                    + "); impasto reads diffusers/peft, kohya (lora_unet_*), XLabs and BFL-named LoRA files");
        }
        return best;
    }

    /** A format by the names users type: diffusers (peft, ai-toolkit), kohya (sd-scripts), xlabs, bfl. */
    public static LoraFormat parse(String name) {
        return switch (name.toLowerCase(Locale.ROOT).replace('-', '_')) {
            case "diffusers", "peft", "ai_toolkit", "aitoolkit" -> DIFFUSERS;
            case "kohya", "sd_scripts", "sdscripts" -> KOHYA;
            case "xlabs", "x_flux" -> XLABS;
            case "bfl", "bfl_peft", "comfy", "comfyui" -> BFL_PEFT;
            default -> throw new IllegalArgumentException("unknown LoRA format \"" + name + "\" (known: diffusers, kohya, xlabs, bfl)");
        };
    }
}
