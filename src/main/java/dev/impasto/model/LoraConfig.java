package dev.impasto.model;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Which linears get a LoRA and how.
 *
 * @param rank      default rank
 * @param alpha     scale = alpha / rank (alpha = rank gives scale 1)
 * @param targets   "all" (every Linear inside the double and single blocks, modulation included, as kohya and
 *                  ai-toolkit train), "attention" (q, k, v and the attention output projections), "attention-mlp"
 *                  (everything but modulation), or a regular expression over module keys such as
 *                  {@code double_blocks\.\d+\.img_attn\.qkv}
 * @param include   optional regex: only modules whose key matches (block-wise selection, e.g. {@code double_blocks\.(1[0-8])\..*})
 * @param exclude   optional regex: modules to leave out
 * @param blockRanks regex over module keys -> rank (block-wise ranks); the first match wins
 * @param dropout   dropout on the LoRA input during training (peft's lora_dropout)
 * @param fused     true: one adapter per fused projection (kohya: qkv, linear1); false: one per piece (diffusers/peft:
 *                  to_q, to_k, to_v, proj_mlp)
 */
public record LoraConfig(int rank, double alpha, String targets, String include, String exclude,
                         Map<String, Integer> blockRanks, double dropout, boolean fused) {

    public LoraConfig {
        if (rank <= 0) throw new IllegalArgumentException("lora rank must be positive, got " + rank);
        if (!(alpha > 0)) throw new IllegalArgumentException("lora alpha must be positive, got " + alpha);
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("lora dropout must be in [0, 1), got " + dropout); // NaN fails too
        if (targets == null || targets.isBlank()) targets = "all";
        blockRanks = blockRanks == null ? Map.of() : new LinkedHashMap<>(blockRanks);
        for (String re : List.of(targetRegex(targets), include == null ? "" : include, exclude == null ? "" : exclude)) compile(re);
        for (var e : blockRanks.entrySet()) {
            compile(e.getKey());
            if (e.getValue() <= 0) throw new IllegalArgumentException("blockRanks: rank for " + e.getKey() + " must be positive");
        }
    }

    public static LoraConfig defaults(int rank) {
        return new LoraConfig(rank, rank, "all", null, null, Map.of(), 0, false);
    }

    private static Pattern compile(String re) {
        try {
            return Pattern.compile(re);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException("invalid regular expression in LoRA config: " + e.getMessage(), e);
        }
    }

    static String targetRegex(String targets) {
        return switch (targets) {
            case "all" -> "(double_blocks\\.\\d+\\.(img|txt)_(mod\\.lin|attn\\.qkv|attn\\.proj|mlp\\.0|mlp\\.2))"
                    + "|(single_blocks\\.\\d+\\.(modulation\\.lin|linear1|linear2))";
            case "attention" -> "(double_blocks\\.\\d+\\.(img|txt)_attn\\.(qkv|proj))|(single_blocks\\.\\d+\\.linear1#(q|k|v))";
            case "attention-mlp" -> "(double_blocks\\.\\d+\\.(img|txt)_(attn\\.qkv|attn\\.proj|mlp\\.0|mlp\\.2))"
                    + "|(single_blocks\\.\\d+\\.(linear1|linear2))";
            default -> targets;
        };
    }

    /**
     * Whether piece {@code piece} ("q", "k", "v", "mlp", or "" for a whole layer) of module {@code key} is a target.
     * Presets may address pieces as {@code key#piece}; a plain key selects every piece.
     */
    public boolean targets(String key, String piece) {
        Pattern t = compile(targetRegex(targets));
        boolean hit = t.matcher(key).matches() || (!piece.isEmpty() && t.matcher(key + "#" + piece).matches());
        if (!hit) return false;
        if (include != null && !include.isBlank() && !compile(include).matcher(key).matches()) return false;
        return exclude == null || exclude.isBlank() || !compile(exclude).matcher(key).matches();
    }

    public int rankFor(String key) {
        for (var e : blockRanks.entrySet()) if (compile(e.getKey()).matcher(key).matches()) return e.getValue();
        return rank;
    }

    /** alpha for a module: a module with an overridden rank keeps the same scale alpha / rank as the default. */
    public double alphaFor(String key) {
        return alpha * rankFor(key) / rank;
    }

    public List<String> describe() {
        List<String> l = new ArrayList<>();
        l.add("rank " + rank + ", alpha " + alpha + " (scale " + alpha / rank + "), targets " + targets + (fused ? ", fused" : ", per piece"));
        if (include != null) l.add("include " + include);
        if (exclude != null) l.add("exclude " + exclude);
        if (!blockRanks.isEmpty()) l.add("block ranks " + blockRanks);
        if (dropout > 0) l.add("dropout " + dropout);
        return l;
    }
}
