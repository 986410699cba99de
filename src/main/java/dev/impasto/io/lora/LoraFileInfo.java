package dev.impasto.io.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.io.StoredTensor;
import dev.impasto.io.TensorEntry;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * What a LoRA file is, from its keys alone: format (diffusers/peft, kohya, XLabs), ranks, how many modules it
 * targets and which kinds, alphas. Used by {@code impasto inspect} and to refuse LoRA files where a base model is
 * expected; the LoRA loader proper lives elsewhere.
 *
 * @param format      "diffusers/peft", "kohya", "XLabs" or "unknown LoRA"
 * @param ranks       distinct ranks (rows of the down / A matrices)
 * @param targets     number of adapted modules
 * @param targetKinds module kinds with block indices removed ("double_blocks.img_attn.qkv", ...), sorted
 * @param alphas      distinct alpha values found (kohya .alpha tensors, peft lora_alpha metadata); empty if none
 * @param textEncoderTargets modules of a text encoder (kohya lora_te*), counted apart
 */
public record LoraFileInfo(String format, Set<Long> ranks, int targets, List<String> targetKinds, Set<Float> alphas,
                           int textEncoderTargets) {

    private static final Pattern INDEX = Pattern.compile("([._])\\d+(?=[._])");
    private static final String[] SUFFIXES = {".lora_A.weight", ".lora_B.weight", ".lora_down.weight", ".lora_up.weight",
            ".lora_A.default.weight", ".lora_B.default.weight", ".down.weight", ".up.weight", ".alpha", ".dora_scale",
            ".lora_magnitude_vector", ".diff", ".diff_b"};

    /** The LoRA description of these tensors, or empty when they are not a LoRA. */
    public static Optional<LoraFileInfo> detect(Collection<? extends StoredTensor> tensors, Map<String, String> metadata) {
        int peft = 0, kohya = 0, xlabs = 0;
        for (StoredTensor t : tensors) {
            String k = t.name();
            if (k.contains(".lora_A.") || k.contains(".lora_B.")) peft++;
            else if (k.contains(".lora_down.") || k.contains(".lora_up.")) kohya++;
            else if (k.matches(".*_lora\\d?\\.(down|up)\\.weight") || (k.contains(".processor.") && k.matches(".*\\.(down|up)\\.weight"))) xlabs++;
        }
        if (peft + kohya + xlabs == 0) return Optional.empty();
        String format = peft >= kohya && peft >= xlabs ? "diffusers/peft" : kohya >= xlabs ? "kohya" : "XLabs";
        Set<Long> ranks = new TreeSet<>();
        Set<String> modules = new LinkedHashSet<>();
        Set<String> te = new LinkedHashSet<>();
        Set<String> kinds = new TreeSet<>();
        Set<Float> alphas = new TreeSet<>();
        for (StoredTensor t : tensors) {
            String k = t.name();
            String module = null;
            for (String s : SUFFIXES)
                if (k.endsWith(s)) {
                    module = k.substring(0, k.length() - s.length());
                    boolean down = s.contains("lora_A") || s.contains("down");
                    long[] shape = t.shape();
                    if (down && shape.length >= 1) ranks.add(shape[0]);
                    if (s.equals(".alpha") && t instanceof TensorEntry e && e.isSupported() && e.numel() == 1) alphas.add(e.getFloat(0));
                    break;
                }
            if (module == null) continue;
            if (module.startsWith("lora_te") || module.startsWith("text_encoder")) {
                te.add(module);
                continue;
            }
            modules.add(module);
            kinds.add(kind(module));
        }
        String md = metadata.get("lora_adapter_metadata");
        if (md != null) {
            try {
                JsonNode n = new ObjectMapper().readTree(md);
                if (n != null && n.has("lora_alpha") && n.get("lora_alpha").isNumber()) alphas.add(n.get("lora_alpha").floatValue());
            } catch (Exception ignored) {
                // free-form metadata from a trainer: unreadable alpha is reported as "not stored"
            }
        }
        if (metadata.containsKey("ss_network_alpha")) {
            try {
                alphas.add(Float.parseFloat(metadata.get("ss_network_alpha")));
            } catch (NumberFormatException ignored) {
                // kohya writes "Dynamic" for some network types
            }
        }
        return Optional.of(new LoraFileInfo(format, ranks, modules.size(), new ArrayList<>(kinds), alphas, te.size()));
    }

    /** Module name with prefixes and block numbers removed: "double_blocks.img_attn.qkv". */
    static String kind(String module) {
        String m = module;
        for (String p : new String[]{"lora_unet_", "base_model.model.", "transformer.", "diffusion_model.", "model.diffusion_model.", "unet."})
            if (m.startsWith(p)) m = m.substring(p.length());
        return INDEX.matcher(m).replaceAll("$1").replace("__", "_").replace("..", ".");
    }

    /** "kohya, rank 16, 494 targets, alpha 16" */
    public String summary() {
        StringBuilder sb = new StringBuilder(format);
        sb.append(", rank ").append(ranks.size() == 1 ? ranks.iterator().next().toString() : ranks.toString());
        sb.append(", ").append(targets).append(" targets");
        if (textEncoderTargets > 0) sb.append(" (+").append(textEncoderTargets).append(" text encoder)");
        if (!alphas.isEmpty()) {
            List<String> a = new ArrayList<>();
            for (Float f : alphas) a.add(f == Math.rint(f) ? String.valueOf(f.longValue()) : String.format(Locale.ROOT, "%g", f));
            sb.append(", alpha ").append(a.size() == 1 ? a.getFirst() : a.toString());
        }
        return sb.toString();
    }

    /** Target kinds with counts are more than a line; the kinds alone, at most {@code max}. */
    public String kindsLine(int max) {
        List<String> k = targetKinds.size() > max ? targetKinds.subList(0, max) : targetKinds;
        return String.join(", ", k) + (targetKinds.size() > max ? ", ... (" + targetKinds.size() + " kinds)" : "");
    }
}
