package dev.impasto.lora;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Classifies one tensor name of a LoRA file: which adapter ("stem") it belongs to, whether it is the down (A), up (B)
 * or alpha tensor, and which BFL module and segment the adapter adapts.
 *
 * <p>Accepted spellings follow what loaders in the wild accept (ComfyUI comfy/lora.py + weight_adapter/lora.py,
 * diffusers lora_conversion_utils.py): prefixes {@code transformer.}, {@code diffusion_model.},
 * {@code model.diffusion_model.}, {@code base_model.model.}, {@code lora_unet_}, {@code lora_transformer_} or none; suffixes
 * {@code lora_A/lora_B}, {@code lora_down/lora_up}, {@code lora.down/lora.up}, {@code lora_A.default/lora_B.default};
 * module names in BFL or diffusers naming (dotted, or underscored after a kohya prefix); XLabs processor names.
 */
final class LoraKeys {
    private LoraKeys() {}

    enum Kind {
        /** A LoRA tensor of a block linear. */
        BLOCK,
        /** A LoRA tensor of a text encoder (not applied by impasto). */
        TEXT_ENCODER,
        /** A LoRA tensor of a transformer layer outside the blocks (embedders, final layer): not applied. */
        OUTSIDE_BLOCKS,
        /** A tensor of an adapter type impasto does not implement (DoRA, LoHa, LoKr, full diffs). */
        UNSUPPORTED_TYPE,
        UNKNOWN
    }

    enum Role { DOWN, UP, ALPHA }

    /**
     * @param stem           the adapter this tensor belongs to (the key without its role suffix)
     * @param module         canonical BFL module key (BLOCK only), e.g. double_blocks.0.img_attn.qkv
     * @param segment        segment of the module: "" whole, "q"/"k"/"v"/"add_q"/.../"mlp" (diffusers pieces), "q+k+v"
     * @param diffusersName  the module's diffusers name relative to the transformer (peft pattern matching), or the BFL key
     * @param block          block index (BLOCK only)
     */
    record Parsed(String key, Kind kind, LoraFormat format, Role role, String stem, String module, String segment,
                  String diffusersName, int block) {}

    private static final List<String[]> SUFFIXES = List.of(
            new String[] {".lora_A.weight", "DOWN"}, new String[] {".lora_B.weight", "UP"},
            new String[] {".lora_down.weight", "DOWN"}, new String[] {".lora_up.weight", "UP"},
            new String[] {".lora_A.default.weight", "DOWN"}, new String[] {".lora_B.default.weight", "UP"},
            new String[] {".lora.down.weight", "DOWN"}, new String[] {".lora.up.weight", "UP"},
            new String[] {".alpha", "ALPHA"});
    private static final Pattern UNSUPPORTED = Pattern.compile(
            ".*(\\.dora_scale|lora_magnitude_vector.*|\\.hada_\\w+|\\.lokr_\\w+|\\.lora_mid\\.weight|\\.diff|\\.diff_b|\\.lora_B\\.bias|\\.oft_\\w+|\\.oft_blocks|\\.reshape_weight)$");
    private static final List<String> PREFIXES = List.of("base_model.model.", "model.diffusion_model.", "diffusion_model.", "transformer.");
    private static final List<String> OUTSIDE = List.of("img_in", "txt_in", "time_in", "vector_in", "guidance_in", "final_layer",
            "x_embedder", "context_embedder", "time_text_embed", "norm_out", "proj_out");

    private static final Pattern XLABS_DOUBLE = Pattern.compile("double_blocks\\.(\\d{1,6})\\.processor\\.(qkv|proj)_lora([12])");
    private static final Pattern XLABS_SINGLE = Pattern.compile("single_blocks\\.(\\d{1,6})\\.processor\\.(qkv|proj)_lora");
    private static final Pattern BFL_DOTTED = Pattern.compile("(double|single)_blocks\\.(\\d{1,6})\\.(.+)");
    private static final Pattern DIFF_DOTTED = Pattern.compile("(single_transformer_blocks|transformer_blocks)\\.(\\d{1,6})\\.(.+)");
    private static final Pattern BFL_UNDER = Pattern.compile("(double|single)_blocks_(\\d{1,6})_(.+)");
    private static final Pattern DIFF_UNDER = Pattern.compile("(single_transformer_blocks|transformer_blocks)_(\\d{1,6})_(.+)");

    private static final Map<String, String> BFL_UNDERSCORED = new HashMap<>();
    private static final Map<String, FluxLoraLayout.DiffusersName> DOUBLE_BY_NAME = new HashMap<>(), SINGLE_BY_NAME = new HashMap<>(),
            DOUBLE_UNDERSCORED = new HashMap<>(), SINGLE_UNDERSCORED = new HashMap<>();

    static {
        for (String s : FluxLoraLayout.DOUBLE_SUFFIXES) BFL_UNDERSCORED.put("double:" + s.replace('.', '_'), s);
        for (String s : FluxLoraLayout.SINGLE_SUFFIXES) BFL_UNDERSCORED.put("single:" + s.replace('.', '_'), s);
        for (var d : FluxLoraLayout.DOUBLE_NAMES) {
            DOUBLE_BY_NAME.put(d.diffusers(), d);
            DOUBLE_UNDERSCORED.put(d.diffusers().replace('.', '_'), d);
        }
        for (var d : FluxLoraLayout.SINGLE_NAMES) {
            SINGLE_BY_NAME.put(d.diffusers(), d);
            SINGLE_UNDERSCORED.put(d.diffusers().replace('.', '_'), d);
        }
    }

    static Parsed parse(String key) {
        if (key.startsWith("lora_te") || key.startsWith("text_encoder") || key.startsWith("text_encoders.") || key.startsWith("te1.")
                || key.startsWith("te2."))
            return new Parsed(key, Kind.TEXT_ENCODER, key.startsWith("lora_te") ? LoraFormat.KOHYA : LoraFormat.DIFFUSERS, null, null, null, null, null, -1);
        if (UNSUPPORTED.matcher(key).matches()) return new Parsed(key, Kind.UNSUPPORTED_TYPE, null, null, null, null, null, null, -1);
        Role role = null;
        String stem = null;
        for (String[] s : SUFFIXES) {
            if (key.endsWith(s[0])) {
                role = Role.valueOf(s[1]);
                stem = key.substring(0, key.length() - s[0].length());
                break;
            }
        }
        if (role == null && key.contains(".processor.")) { // XLabs: <name>.down.weight / <name>.up.weight
            if (key.endsWith(".down.weight")) role = Role.DOWN;
            else if (key.endsWith(".up.weight")) role = Role.UP;
            if (role != null) stem = key.substring(0, key.lastIndexOf('.', key.length() - ".weight".length() - 1));
        }
        if (role == null) return unknown(key);

        if (stem.startsWith("lora_unet_") || stem.startsWith("lora_transformer_")) {
            String rest = stem.substring(stem.indexOf('_', 5) + 1);
            Matcher m = BFL_UNDER.matcher(rest);
            if (m.matches()) {
                String suffix = BFL_UNDERSCORED.get(m.group(1) + ":" + m.group(3));
                if (suffix != null) return block(key, LoraFormat.KOHYA, role, stem, m.group(1).equals("single"), m.group(2), suffix, "", null);
            }
            m = DIFF_UNDER.matcher(rest);
            if (m.matches()) {
                boolean single = m.group(1).startsWith("single");
                var d = (single ? SINGLE_UNDERSCORED : DOUBLE_UNDERSCORED).get(m.group(3));
                if (d != null)
                    return block(key, LoraFormat.KOHYA, role, stem, single, m.group(2), d.bfl(), d.segment(), m.group(1) + "." + m.group(2) + "." + d.diffusers());
            }
            for (String o : OUTSIDE) if (rest.startsWith(o)) return new Parsed(key, Kind.OUTSIDE_BLOCKS, LoraFormat.KOHYA, role, stem, null, null, null, -1);
            return unknown(key);
        }

        String name = stem;
        for (boolean again = true; again; ) {
            again = false;
            for (String p : PREFIXES) {
                if (name.startsWith(p)) {
                    name = name.substring(p.length());
                    again = true;
                }
            }
        }
        Matcher m = XLABS_DOUBLE.matcher(name);
        if (m.matches() && role != Role.ALPHA) {
            String stream = m.group(3).equals("1") ? "img" : "txt";
            return block(key, LoraFormat.XLABS, role, stem, false, m.group(1), stream + "_attn." + m.group(2), "", null);
        }
        m = XLABS_SINGLE.matcher(name);
        if (m.matches() && role != Role.ALPHA) {
            boolean qkv = m.group(2).equals("qkv");
            return block(key, LoraFormat.XLABS, role, stem, true, m.group(1), qkv ? "linear1" : "linear2", qkv ? "q+k+v" : "", null);
        }
        m = BFL_DOTTED.matcher(name);
        if (m.matches()) {
            boolean single = m.group(1).equals("single");
            if ((single ? FluxLoraLayout.SINGLE_SUFFIXES : FluxLoraLayout.DOUBLE_SUFFIXES).contains(m.group(3)))
                return block(key, LoraFormat.BFL_PEFT, role, stem, single, m.group(2), m.group(3), "", null);
            return unknown(key);
        }
        m = DIFF_DOTTED.matcher(name);
        if (m.matches()) {
            boolean single = m.group(1).startsWith("single");
            var d = (single ? SINGLE_BY_NAME : DOUBLE_BY_NAME).get(m.group(3));
            if (d != null) return block(key, LoraFormat.DIFFUSERS, role, stem, single, m.group(2), d.bfl(), d.segment(), name);
            return unknown(key);
        }
        int dot = name.indexOf('.');
        String first = dot < 0 ? name : name.substring(0, dot);
        if (OUTSIDE.contains(first)) {
            LoraFormat f = stem.startsWith("transformer.") || first.equals("x_embedder") || first.equals("context_embedder")
                    || first.equals("time_text_embed") || first.equals("norm_out") || first.equals("proj_out") ? LoraFormat.DIFFUSERS : LoraFormat.BFL_PEFT;
            return new Parsed(key, Kind.OUTSIDE_BLOCKS, f, role, stem, null, null, null, -1);
        }
        return unknown(key);
    }

    private static Parsed unknown(String key) {
        return new Parsed(key, Kind.UNKNOWN, null, null, null, null, null, null, -1);
    }

    private static Parsed block(String key, LoraFormat f, Role role, String stem, boolean single, String index, String suffix,
                                String segment, String diffusersName) {
        int block;
        try {
            block = Integer.parseInt(index);
        } catch (NumberFormatException e) {
            return unknown(key);
        }
        String module = (single ? "single_blocks." : "double_blocks.") + block + "." + suffix;
        return new Parsed(key, Kind.BLOCK, f, role, stem, module, segment, diffusersName == null ? module : diffusersName, block);
    }
}
