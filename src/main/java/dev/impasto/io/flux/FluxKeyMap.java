package dev.impasto.io.flux;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The diffusers {@code FluxTransformer2DModel} key layout and its correspondence with the BFL (black-forest-labs
 * flux) layout, which impasto uses as its canonical naming.
 *
 * <p>Checked against diffusers' own conversion: {@code scripts/convert_flux_to_diffusers.py}
 * ({@code convert_flux_transformer_checkpoint_to_diffusers}: qkv chunked in 3 along dim 0 into to_q/to_k/to_v and
 * add_q_proj/add_k_proj/add_v_proj, single-block linear1 split (hidden, hidden, hidden, mlp) into
 * to_q/to_k/to_v/proj_mlp, {@code swap_scale_shift} on norm_out.linear) and
 * {@code src/diffusers/loaders/single_file_utils.py} (the same function there adds the guidance_in ->
 * time_text_embed.guidance_embedder mapping).
 */
public final class FluxKeyMap {
    private FluxKeyMap() {}

    /**
     * Where a diffusers tensor goes in the BFL layout: it is part {@code part} of {@code parts} row blocks of
     * {@code bflKey} (concatenated along dim 0 in part order); {@code swapHalves} when the BFL tensor is the diffusers
     * one with its two halves along dim 0 exchanged (norm_out (scale, shift) vs final_layer adaLN (shift, scale)).
     */
    public record Target(String bflKey, int part, int parts, boolean swapHalves) {}

    /** The diffusers tensors that make up a BFL tensor, in concatenation order. */
    public record Source(List<String> diffusersKeys, boolean swapHalves) {}

    /** Module-level entries apply to .weight and .bias; param-level entries name the whole key suffix. */
    private record Entry(String diffusers, String bfl, int part, int parts, boolean swap, boolean paramLevel) {}

    private static final List<Entry> DOUBLE = List.of(
            module("norm1.linear", "img_mod.lin"),
            module("norm1_context.linear", "txt_mod.lin"),
            part("attn.to_q", "img_attn.qkv", 0, 3),
            part("attn.to_k", "img_attn.qkv", 1, 3),
            part("attn.to_v", "img_attn.qkv", 2, 3),
            part("attn.add_q_proj", "txt_attn.qkv", 0, 3),
            part("attn.add_k_proj", "txt_attn.qkv", 1, 3),
            part("attn.add_v_proj", "txt_attn.qkv", 2, 3),
            param("attn.norm_q.weight", "img_attn.norm.query_norm.scale"),
            param("attn.norm_k.weight", "img_attn.norm.key_norm.scale"),
            param("attn.norm_added_q.weight", "txt_attn.norm.query_norm.scale"),
            param("attn.norm_added_k.weight", "txt_attn.norm.key_norm.scale"),
            module("attn.to_out.0", "img_attn.proj"),
            module("attn.to_add_out", "txt_attn.proj"),
            module("ff.net.0.proj", "img_mlp.0"),
            module("ff.net.2", "img_mlp.2"),
            module("ff_context.net.0.proj", "txt_mlp.0"),
            module("ff_context.net.2", "txt_mlp.2"));

    private static final List<Entry> SINGLE = List.of(
            part("attn.to_q", "linear1", 0, 4),
            part("attn.to_k", "linear1", 1, 4),
            part("attn.to_v", "linear1", 2, 4),
            part("proj_mlp", "linear1", 3, 4),
            module("proj_out", "linear2"),
            module("norm.linear", "modulation.lin"),
            param("attn.norm_q.weight", "norm.query_norm.scale"),
            param("attn.norm_k.weight", "norm.key_norm.scale"));

    private static final List<Entry> TOP = List.of(
            module("x_embedder", "img_in"),
            module("context_embedder", "txt_in"),
            module("time_text_embed.timestep_embedder.linear_1", "time_in.in_layer"),
            module("time_text_embed.timestep_embedder.linear_2", "time_in.out_layer"),
            module("time_text_embed.text_embedder.linear_1", "vector_in.in_layer"),
            module("time_text_embed.text_embedder.linear_2", "vector_in.out_layer"),
            module("time_text_embed.guidance_embedder.linear_1", "guidance_in.in_layer"),
            module("time_text_embed.guidance_embedder.linear_2", "guidance_in.out_layer"),
            module("proj_out", "final_layer.linear"),
            new Entry("norm_out.linear", "final_layer.adaLN_modulation.1", 0, 1, true, false));

    private static final Pattern D_DOUBLE = Pattern.compile("transformer_blocks\\.(\\d+)\\.(.+)");
    private static final Pattern D_SINGLE = Pattern.compile("single_transformer_blocks\\.(\\d+)\\.(.+)");
    private static final Pattern B_DOUBLE = Pattern.compile("double_blocks\\.(\\d+)\\.(.+)");
    private static final Pattern B_SINGLE = Pattern.compile("single_blocks\\.(\\d+)\\.(.+)");

    private static Entry module(String d, String b) {
        return new Entry(d, b, 0, 1, false, false);
    }

    private static Entry part(String d, String b, int part, int parts) {
        return new Entry(d, b, part, parts, false, false);
    }

    private static Entry param(String d, String b) {
        return new Entry(d, b, 0, 1, false, true);
    }

    /** Top-level diffusers module names (for layout detection). */
    static final List<String> DIFFUSERS_TOP_PREFIXES = List.of("transformer_blocks.", "single_transformer_blocks.", "x_embedder.",
            "context_embedder.", "time_text_embed.", "norm_out.", "proj_out.");

    /** Top-level BFL module names (for layout detection). */
    static final List<String> BFL_TOP_PREFIXES = List.of("double_blocks.", "single_blocks.", "img_in.", "txt_in.", "time_in.",
            "vector_in.", "guidance_in.", "final_layer.");

    /** The BFL place of a diffusers transformer key (without any "transformer." prefix), or empty if it has none. */
    public static Optional<Target> diffusersToBfl(String key) {
        Matcher m;
        if ((m = D_SINGLE.matcher(key)).matches())
            return lookup(SINGLE, m.group(2), "single_blocks." + m.group(1) + ".");
        if ((m = D_DOUBLE.matcher(key)).matches())
            return lookup(DOUBLE, m.group(2), "double_blocks." + m.group(1) + ".");
        return lookup(TOP, key, "");
    }

    /** The diffusers keys a BFL key is made of, or empty when the key is not part of the FLUX layout. */
    public static Optional<Source> bflToDiffusers(String key) {
        Matcher m;
        if ((m = B_DOUBLE.matcher(key)).matches())
            return reverse(DOUBLE, m.group(2), "transformer_blocks." + m.group(1) + ".");
        if ((m = B_SINGLE.matcher(key)).matches())
            return reverse(SINGLE, m.group(2), "single_transformer_blocks." + m.group(1) + ".");
        return reverse(TOP, key, "");
    }

    private static Optional<Target> lookup(List<Entry> table, String rest, String bflPrefix) {
        for (Entry e : table) {
            if (e.paramLevel) {
                if (rest.equals(e.diffusers)) return Optional.of(new Target(bflPrefix + e.bfl, e.part, e.parts, e.swap));
            } else {
                for (String p : new String[]{".weight", ".bias"})
                    if (rest.equals(e.diffusers + p)) return Optional.of(new Target(bflPrefix + e.bfl + p, e.part, e.parts, e.swap));
            }
        }
        return Optional.empty();
    }

    private static Optional<Source> reverse(List<Entry> table, String rest, String dPrefix) {
        String param = null;
        String module = rest;
        boolean paramLevel = false;
        for (Entry e : table) if (e.paramLevel && e.bfl.equals(rest)) paramLevel = true;
        if (!paramLevel) {
            if (rest.endsWith(".weight")) param = ".weight";
            else if (rest.endsWith(".bias")) param = ".bias";
            else return Optional.empty();
            module = rest.substring(0, rest.length() - param.length());
        }
        List<String> keys = new ArrayList<>();
        boolean swap = false;
        for (Entry e : table) {
            if (e.paramLevel != paramLevel || !e.bfl.equals(module)) continue;
            while (keys.size() <= e.part) keys.add(null);
            keys.set(e.part, dPrefix + e.diffusers + (paramLevel ? "" : param));
            swap |= e.swap;
        }
        return keys.isEmpty() ? Optional.empty() : Optional.of(new Source(List.copyOf(keys), swap));
    }
}
