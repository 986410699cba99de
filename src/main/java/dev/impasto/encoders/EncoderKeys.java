package dev.impasto.encoders;

import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How the files people have name the encoders' tensors, mapped to impasto's canonical names. T5 and CLIP files
 * (ComfyUI's t5xxl_fp16.safetensors and clip_l.safetensors, diffusers' text_encoder_2/ and text_encoder/) already use
 * transformers' names, possibly under a prefix; the autoencoder comes in BFL's layout (ae.safetensors) or diffusers'
 * AutoencoderKL layout (vae/), which is renamed here as diffusers' own conversion maps it (decoder up_blocks are
 * numbered from the top: diffusers up_blocks.i is BFL up.(levels - 1 - i)).
 */
public final class EncoderKeys {
    private EncoderKeys() {}

    public static final String T5_ANCHOR = "encoder.final_layer_norm.weight";
    public static final String CLIP_ANCHOR = "text_model.final_layer_norm.weight";
    public static final String VAE_ANCHOR = "encoder.conv_in.weight";

    /** T5: transformers' names; {@code encoder.embed_tokens.weight} (a tied copy some files keep instead) is the table. */
    public static UnaryOperator<String> t5() {
        return k -> k.endsWith("encoder.embed_tokens.weight") ? k.substring(0, k.length() - "encoder.embed_tokens.weight".length()) + "shared.weight" : k;
    }

    /**
     * CLIP: transformers' names; a file saved from the inner text model (keys "embeddings.", "encoder.",
     * "final_layer_norm." with no "text_model." in front) is read as if it had the prefix.
     */
    public static UnaryOperator<String> clip() {
        return k -> k.contains("text_model.") || !(k.startsWith("embeddings.") || k.startsWith("encoder.") || k.startsWith("final_layer_norm."))
                ? k : "text_model." + k;
    }

    private static final Pattern DIFFUSERS_DOWN = Pattern.compile("(^|.*\\.)encoder\\.down_blocks\\.(\\d+)\\.(resnets\\.(\\d+)|downsamplers\\.0)\\.(.*)");
    private static final Pattern DIFFUSERS_UP = Pattern.compile("(^|.*\\.)decoder\\.up_blocks\\.(\\d+)\\.(resnets\\.(\\d+)|upsamplers\\.0)\\.(.*)");
    private static final Pattern DIFFUSERS_MID = Pattern.compile("(^|.*\\.)(encoder|decoder)\\.mid_block\\.(resnets\\.(\\d+)|attentions\\.0)\\.(.*)");
    private static final Pattern DIFFUSERS_END = Pattern.compile("(^|.*\\.)(encoder|decoder)\\.conv_norm_out\\.(.*)");

    /**
     * Autoencoder: BFL names pass through; diffusers names are renamed for a model of {@code levels} resolution
     * levels (4 for FLUX). Keys of neither layout (quant_conv, which FLUX's VAE does not have) map to null.
     */
    public static UnaryOperator<String> vae(int levels) {
        return k -> {
            Matcher m = DIFFUSERS_DOWN.matcher(k);
            if (m.matches()) {
                String part = m.group(4) != null ? "block." + m.group(4) + "." + resnet(m.group(5)) : "downsample." + m.group(5);
                return m.group(1) + "encoder.down." + m.group(2) + "." + part;
            }
            m = DIFFUSERS_UP.matcher(k);
            if (m.matches()) {
                int level = levels - 1 - Integer.parseInt(m.group(2));
                String part = m.group(4) != null ? "block." + m.group(4) + "." + resnet(m.group(5)) : "upsample." + m.group(5);
                return m.group(1) + "decoder.up." + level + "." + part;
            }
            m = DIFFUSERS_MID.matcher(k);
            if (m.matches()) {
                String part = m.group(4) != null ? "block_" + (Integer.parseInt(m.group(4)) + 1) + "." + resnet(m.group(5)) : "attn_1." + attention(m.group(5));
                return m.group(1) + m.group(2) + ".mid." + part;
            }
            m = DIFFUSERS_END.matcher(k);
            if (m.matches()) return m.group(1) + m.group(2) + ".norm_out." + m.group(3);
            if (k.contains("quant_conv.")) return null;
            return k;
        };
    }

    private static String resnet(String rest) {
        return rest.startsWith("conv_shortcut.") ? "nin_shortcut." + rest.substring("conv_shortcut.".length()) : rest;
    }

    private static String attention(String rest) {
        String[][] names = {{"group_norm.", "norm."}, {"to_q.", "q."}, {"to_k.", "k."}, {"to_v.", "v."}, {"to_out.0.", "proj_out."},
                {"query.", "q."}, {"key.", "k."}, {"value.", "v."}, {"proj_attn.", "proj_out."}};
        for (String[] n : names) if (rest.startsWith(n[0])) return n[1] + rest.substring(n[0].length());
        return rest;
    }

    /** Whether a key set is in diffusers' AutoencoderKL layout (for the description of a loaded file). */
    static boolean isDiffusersVae(java.util.Collection<String> keys) {
        return keys.stream().anyMatch(k -> k.contains("down_blocks.") || k.contains("mid_block."));
    }
}
