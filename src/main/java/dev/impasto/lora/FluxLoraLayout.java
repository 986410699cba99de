package dev.impasto.lora;

import dev.impasto.model.FluxConfig;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where the LoRA-adaptable linears of a FLUX transformer live under each naming scheme.
 *
 * <p>The canonical name is the BFL module key ({@code double_blocks.3.img_attn.qkv}). diffusers splits the fused
 * projections: img qkv = attn.to_q | to_k | to_v, txt qkv = attn.add_q_proj | add_k_proj | add_v_proj, and a single
 * block's linear1 = attn.to_q | to_k | to_v | proj_mlp (rows [0, h), [h, 2h), [2h, 3h), [3h, 3h + mlp)), as diffusers'
 * scripts/convert_flux_to_diffusers.py splits the base weights. kohya (sd-scripts networks/lora_flux.py) names a
 * module {@code lora_unet_} + the BFL key with dots turned into underscores.
 */
public final class FluxLoraLayout {
    private FluxLoraLayout() {}

    /** One diffusers module inside a BFL module: its rows of the BFL output. name "" = the whole module. */
    public record Segment(String name, long rowStart, long rowEnd, String diffusersModule) {
        public long rows() {
            return rowEnd - rowStart;
        }
    }

    /**
     * A LoRA-adaptable block linear. {@code out} is unknown (-1) only for a single block's linear1 when the MLP width
     * could not be determined (writing without a model config); its mlp segment is then absent.
     */
    public record Module(String key, boolean single, int block, String suffix, long out, long in, List<Segment> segments) {
        public String kohyaName() {
            return "lora_unet_" + key.replace('.', '_');
        }

        public Segment segment(String name) {
            for (Segment s : segments) if (s.name.equals(name)) return s;
            return null;
        }
    }

    /** diffusers module suffix (after transformer_blocks.N.) -> BFL suffix (after double_blocks.N.) and segment name. */
    record DiffusersName(String diffusers, String bfl, String segment) {}

    static final List<DiffusersName> DOUBLE_NAMES = List.of(
            new DiffusersName("attn.to_q", "img_attn.qkv", "q"),
            new DiffusersName("attn.to_k", "img_attn.qkv", "k"),
            new DiffusersName("attn.to_v", "img_attn.qkv", "v"),
            new DiffusersName("attn.to_out.0", "img_attn.proj", ""),
            new DiffusersName("attn.add_q_proj", "txt_attn.qkv", "add_q"),
            new DiffusersName("attn.add_k_proj", "txt_attn.qkv", "add_k"),
            new DiffusersName("attn.add_v_proj", "txt_attn.qkv", "add_v"),
            new DiffusersName("attn.to_add_out", "txt_attn.proj", ""),
            new DiffusersName("ff.net.0.proj", "img_mlp.0", ""),
            new DiffusersName("ff.net.2", "img_mlp.2", ""),
            new DiffusersName("ff_context.net.0.proj", "txt_mlp.0", ""),
            new DiffusersName("ff_context.net.2", "txt_mlp.2", ""),
            new DiffusersName("norm1.linear", "img_mod.lin", ""),
            new DiffusersName("norm1_context.linear", "txt_mod.lin", ""));

    static final List<DiffusersName> SINGLE_NAMES = List.of(
            new DiffusersName("attn.to_q", "linear1", "q"),
            new DiffusersName("attn.to_k", "linear1", "k"),
            new DiffusersName("attn.to_v", "linear1", "v"),
            new DiffusersName("proj_mlp", "linear1", "mlp"),
            new DiffusersName("proj_out", "linear2", ""),
            new DiffusersName("norm.linear", "modulation.lin", ""));

    static final List<String> DOUBLE_SUFFIXES = List.of("img_mod.lin", "img_attn.qkv", "img_attn.proj", "img_mlp.0", "img_mlp.2",
            "txt_mod.lin", "txt_attn.qkv", "txt_attn.proj", "txt_mlp.0", "txt_mlp.2");
    static final List<String> SINGLE_SUFFIXES = List.of("modulation.lin", "linear1", "linear2");

    private static final Pattern BFL_KEY = Pattern.compile("(double|single)_blocks\\.(\\d{1,6})\\.(.+)");

    /** Every LoRA-adaptable block linear of a model, in the model's order, by BFL key. */
    public static Map<String, Module> modules(FluxConfig cfg) {
        Map<String, Module> m = new LinkedHashMap<>();
        for (int i = 0; i < cfg.depth(); i++)
            for (String s : DOUBLE_SUFFIXES) m.put("double_blocks." + i + "." + s, module(false, i, s, cfg.hidden(), cfg.mlpHidden()));
        for (int i = 0; i < cfg.depthSingle(); i++)
            for (String s : SINGLE_SUFFIXES) m.put("single_blocks." + i + "." + s, module(true, i, s, cfg.hidden(), cfg.mlpHidden()));
        return m;
    }

    /** The module a BFL key names, with hidden width h and MLP width mlp (mlp < 0: unknown), or null if the key is no block linear. */
    public static Module module(String key, long h, long mlp) {
        Matcher mt = BFL_KEY.matcher(key);
        if (!mt.matches()) return null;
        boolean single = mt.group(1).equals("single");
        String suffix = mt.group(3);
        if (!(single ? SINGLE_SUFFIXES : DOUBLE_SUFFIXES).contains(suffix)) return null;
        return module(single, Integer.parseInt(mt.group(2)), suffix, h, mlp);
    }

    private static Module module(boolean single, int block, String suffix, long h, long mlp) {
        String key = (single ? "single_blocks." : "double_blocks.") + block + "." + suffix;
        String prefix = (single ? "single_transformer_blocks." : "transformer_blocks.") + block + ".";
        long out, in;
        String s = suffix.startsWith("img_") || suffix.startsWith("txt_") ? suffix.substring(4) : suffix;
        switch (s) {
            case "mod.lin" -> { out = 6 * h; in = h; }
            case "attn.qkv" -> { out = 3 * h; in = h; }
            case "attn.proj" -> { out = h; in = h; }
            case "mlp.0" -> { out = mlp; in = h; }
            case "mlp.2" -> { out = h; in = mlp; }
            case "modulation.lin" -> { out = 3 * h; in = h; }
            case "linear1" -> { out = mlp < 0 ? -1 : 3 * h + mlp; in = h; }
            case "linear2" -> { out = h; in = mlp < 0 ? -1 : h + mlp; }
            default -> throw new IllegalStateException(suffix);
        }
        List<Segment> segs = new ArrayList<>();
        for (DiffusersName d : single ? SINGLE_NAMES : DOUBLE_NAMES) {
            if (!d.bfl.equals(suffix)) continue;
            long r0 = 0, r1 = out;
            switch (d.segment) {
                case "q", "add_q" -> { r0 = 0; r1 = h; }
                case "k", "add_k" -> { r0 = h; r1 = 2 * h; }
                case "v", "add_v" -> { r0 = 2 * h; r1 = 3 * h; }
                case "mlp" -> { r0 = 3 * h; r1 = out; }
                default -> { }
            }
            if (r1 < 0) continue; // mlp part of linear1 with an unknown MLP width
            segs.add(new Segment(d.segment, r0, r1, prefix + d.diffusers));
        }
        return new Module(key, single, block, suffix, out, in, List.copyOf(segs));
    }

    /** Canonical name of a piece made of consecutive segments: "" for the whole module, else the names joined by '+'. */
    static String pieceName(Module m, List<Segment> segs) {
        if (segs.size() == 1) return segs.get(0).name;
        if (m.out >= 0 && segs.get(0).rowStart == 0 && segs.get(segs.size() - 1).rowEnd == m.out) return "";
        StringBuilder sb = new StringBuilder();
        for (Segment s : segs) sb.append(sb.isEmpty() ? "" : "+").append(s.name);
        return sb.toString();
    }
}
