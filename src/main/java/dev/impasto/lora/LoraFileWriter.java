package dev.impasto.lora;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.cfg.JsonNodeFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.model.FluxConfig;
import dev.impasto.model.LoraGroup;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * Writes LoRA groups as a safetensors file in diffusers/peft or kohya layout (atomically: temp file, fsync, rename).
 *
 * <p>DIFFUSERS: {@code transformer.<diffusers module>.lora_A.weight} [rank, in] and {@code .lora_B.weight} [rows, rank];
 * a fused piece covering several diffusers modules (kohya-style qkv or linear1) is split: each module gets a copy of A
 * and its rows of B. alpha goes where diffusers >= 0.34 puts it: {@code __metadata__["lora_adapter_metadata"]} = JSON of
 * the peft LoraConfig with keys prefixed "transformer." (r, lora_alpha, rank_pattern, alpha_pattern, target_modules),
 * next to {@code "format": "pt"} (diffusers loaders/lora_base.py write_lora_layers). Loaders that ignore that metadata
 * (ComfyUI, and ai-toolkit's own files, which always have alpha = rank) apply scale 1: when alpha != rank, use
 * {@link Options#bakeScale} for a file that means the same everywhere.
 *
 * <p>KOHYA: {@code lora_unet_<bfl key with _>.lora_down.weight} [width, in], {@code .lora_up.weight} [out, width],
 * {@code .alpha} (F32 scalar, shape []), as kohya-ss/sd-scripts networks/lora_flux.py (LoRANetwork, prefix "lora_unet",
 * alpha buffer torch.tensor(alpha)) saves them. Per-piece adapters are merged into the fused module: down = the stacked
 * A's, up = block-diagonal (zeros elsewhere, including rows no piece adapts), alpha multiplied by the number of pieces so
 * that alpha / rank is unchanged for loaders that take the rank from lora_down (ComfyUI, diffusers, sd-scripts). The
 * pieces are recorded in {@code impasto.pieces} so impasto reads them back split.
 */
public final class LoraFileWriter {
    private LoraFileWriter() {}

    static final String LORA_ADAPTER_METADATA = "lora_adapter_metadata";
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT).configure(JsonNodeFeature.WRITE_PROPERTIES_SORTED, true);

    /**
     * @param dtype     element type of the LoRA weights: F32 (default), BF16 or F16
     * @param config    the model's architecture; needed only when the MLP width cannot be told from the groups
     *                  (kohya output of an attention-only linear1 LoRA with nothing else on MLP layers)
     * @param bakeScale DIFFUSERS only: multiply B by alpha/rank and write alpha = rank, for loaders that ignore
     *                  lora_adapter_metadata
     */
    public record Options(DType dtype, FluxConfig config, boolean bakeScale) {
        public Options {
            if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F16)
                throw new IllegalArgumentException("LoRA files are written as F32, BF16 or F16, not " + dtype);
        }

        public static Options defaults() {
            return new Options(DType.F32, null, false);
        }

        public Options withDtype(DType d) {
            return new Options(d, config, bakeScale);
        }

        public Options withConfig(FluxConfig c) {
            return new Options(dtype, c, bakeScale);
        }

        public Options withBakeScale(boolean bake) {
            return new Options(dtype, config, bake);
        }
    }

    public static void write(Path file, List<LoraGroup> groups, Backend be, LoraFormat format, Map<String, String> metadata) throws IOException {
        write(file, groups, be, format, metadata, Options.defaults());
    }

    /** Writes {@code groups} to {@code file}; {@code metadata} entries are added to the file's metadata as given. */
    public static void write(Path file, List<LoraGroup> groups, Backend be, LoraFormat format, Map<String, String> metadata, Options opt)
            throws IOException {
        if (!format.writable()) throw new IllegalArgumentException("impasto writes LoRA files as DIFFUSERS or KOHYA, not " + format);
        if (groups.isEmpty()) throw new IllegalArgumentException("no LoRA groups to write");
        Map<String, String> user = metadata == null ? Map.of() : metadata;
        for (String reserved : List.of(LORA_ADAPTER_METADATA, LoraFileReader.IMPASTO_PIECES))
            if (user.containsKey(reserved)) throw new IllegalArgumentException("metadata key " + reserved + " is written by impasto itself");
        long[] hm = widths(groups, opt.config);
        Set<String> seen = new HashSet<>();
        List<Object[]> mods = new ArrayList<>(); // {group, module}
        for (LoraGroup g : groups) {
            FluxLoraLayout.Module m = FluxLoraLayout.module(g.key, hm[0], hm[1]);
            if (m == null) throw new IllegalArgumentException("LoRA group " + g.key + " is not a block linear of a FLUX transformer");
            if (!seen.add(g.key)) throw new IllegalArgumentException("two LoRA groups for " + g.key);
            if (m.in() >= 0 && g.in() != m.in())
                throw new IllegalArgumentException("LoRA group " + g.key + " has input width " + g.in() + ", the module has " + m.in());
            long prev = 0;
            for (LoraGroup.Piece p : g.pieces) {
                if (p.rowStart() < prev || p.rowEnd() <= p.rowStart() || (m.out() >= 0 && p.rowEnd() > m.out()))
                    throw new IllegalArgumentException("LoRA group " + g.key + ": pieces must be in row order, non-empty, non-overlapping and inside the module's "
                            + m.out() + " rows; found " + g.pieces);
                prev = p.rowEnd();
            }
            mods.add(new Object[] {g, m});
        }
        Map<String, String> md = new LinkedHashMap<>();
        md.put("format", "pt");
        md.putAll(user);
        md.put("impasto.format", format.name().toLowerCase(Locale.ROOT));
        md.put("impasto.dtype", opt.dtype.name());
        List<SafetensorsWriter.Tensor> items = new ArrayList<>();
        if (format == LoraFormat.DIFFUSERS) diffusers(mods, be, opt, items, md);
        else kohya(mods, be, opt, items, md);
        SafetensorsWriter.write(file, md, items);
    }

    /** A tensor whose values are computed only when the writer reaches it, so one tensor is in memory at a time. */
    private static SafetensorsWriter.Tensor tensor(String name, DType dtype, long[] shape, Supplier<double[]> values) {
        return SafetensorsWriter.Tensor.lazyFloats(name, dtype, shape, () -> {
            double[] v = values.get();
            float[] f = new float[v.length];
            for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
            return f;
        });
    }

    // ------------------------------------------------------------------------------------------------ diffusers

    private static void diffusers(List<Object[]> mods, Backend be, Options opt, List<SafetensorsWriter.Tensor> items, Map<String, String> md) {
        Map<String, Integer> ranks = new LinkedHashMap<>();
        Map<String, Double> alphas = new LinkedHashMap<>();
        for (Object[] gm : mods) {
            LoraGroup g = (LoraGroup) gm[0];
            FluxLoraLayout.Module m = (FluxLoraLayout.Module) gm[1];
            double bScale = opt.bakeScale ? g.scale() : 1;
            double alpha = opt.bakeScale ? g.rank : g.alpha;
            for (int i = 0; i < g.pieces.size(); i++) {
                LoraGroup.Piece p = g.pieces.get(i);
                List<FluxLoraLayout.Segment> covered = new ArrayList<>();
                long at = p.rowStart();
                for (FluxLoraLayout.Segment s : m.segments()) {
                    if (s.rowStart() >= p.rowStart() && s.rowEnd() <= p.rowEnd()) {
                        if (s.rowStart() != at) break;
                        covered.add(s);
                        at = s.rowEnd();
                    }
                }
                if (at != p.rowEnd())
                    throw new IllegalArgumentException("LoRA group " + g.key + ": piece \"" + p.name() + "\" rows [" + p.rowStart() + ", " + p.rowEnd()
                            + ") do not fall on diffusers module boundaries " + m.segments());
                final int pi = i;
                for (FluxLoraLayout.Segment s : covered) {
                    String base = "transformer." + s.diffusersModule();
                    items.add(tensor(base + ".lora_A.weight", opt.dtype, new long[] {g.rank, g.in()},
                            () -> be.toDoubles(g.pieceA(pi))));
                    long r0 = s.rowStart() - p.rowStart(), r1 = s.rowEnd() - p.rowStart();
                    items.add(tensor(base + ".lora_B.weight", opt.dtype, new long[] {s.rows(), g.rank}, () -> {
                        double[] v = be.toDoubles(g.pieceB(pi).rows(r0, r1));
                        if (bScale != 1) for (int k = 0; k < v.length; k++) v[k] *= bScale;
                        return v;
                    }));
                    ranks.put(s.diffusersModule(), g.rank);
                    alphas.put(s.diffusersModule(), alpha);
                }
            }
        }
        int r = mostCommon(new ArrayList<>(ranks.values()));
        double alpha = mostCommon(new ArrayList<>(alphas.values()));
        ObjectNode cfg = JSON.createObjectNode();
        cfg.put("transformer.r", r);
        putNumber(cfg, "transformer.lora_alpha", alpha);
        ObjectNode rp = cfg.putObject("transformer.rank_pattern"), ap = cfg.putObject("transformer.alpha_pattern");
        for (var e : ranks.entrySet()) if (e.getValue() != r) rp.put(e.getKey(), e.getValue());
        for (var e : alphas.entrySet()) if (e.getValue() != alpha) putNumber(ap, e.getKey(), e.getValue());
        ArrayNode tm = cfg.putArray("transformer.target_modules");
        new TreeMap<>(ranks).keySet().forEach(tm::add);
        cfg.put("transformer.lora_dropout", ((LoraGroup) mods.get(0)[0]).dropout);
        cfg.put("transformer.bias", "none");
        cfg.put("transformer.use_dora", false);
        cfg.put("transformer.use_rslora", false);
        cfg.put("transformer.init_lora_weights", true);
        cfg.put("transformer.fan_in_fan_out", false);
        try {
            md.put(LORA_ADAPTER_METADATA, JSON.writeValueAsString(cfg));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        if (opt.bakeScale) md.put("impasto.scale_baked_into_lora_B", "true");
    }

    private static void putNumber(ObjectNode n, String k, double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1L << 53) n.put(k, (long) v);
        else n.put(k, v);
    }

    private static <T> T mostCommon(List<T> values) {
        Map<T, Integer> c = new LinkedHashMap<>();
        for (T v : values) c.merge(v, 1, Integer::sum);
        return c.entrySet().stream().max(Comparator.comparingInt(Map.Entry::getValue)).orElseThrow().getKey();
    }

    // ------------------------------------------------------------------------------------------------ kohya

    private static void kohya(List<Object[]> mods, Backend be, Options opt, List<SafetensorsWriter.Tensor> items, Map<String, String> md) {
        if (opt.bakeScale) throw new IllegalArgumentException("bakeScale is for DIFFUSERS output; kohya files carry alpha themselves");
        ObjectNode pieces = JSON.createObjectNode();
        List<Integer> dims = new ArrayList<>();
        List<Double> alphas = new ArrayList<>();
        for (Object[] gm : mods) {
            LoraGroup g = (LoraGroup) gm[0];
            FluxLoraLayout.Module m = (FluxLoraLayout.Module) gm[1];
            int np = g.pieces.size(), width = g.width();
            boolean whole = np == 1 && g.pieces.get(0).rowStart() == 0 && g.pieces.get(0).rowEnd() == m.out();
            if (m.out() < 0)
                throw new IllegalArgumentException("cannot tell the MLP width needed to write " + g.key + " in kohya layout; pass the model config (Options.withConfig)");
            long out = m.out();
            String name = m.kohyaName();
            items.add(tensor(name + ".lora_down.weight", opt.dtype, new long[] {width, g.in()}, () -> be.toDoubles(g.a)));
            items.add(tensor(name + ".lora_up.weight", opt.dtype, new long[] {out, width}, () -> {
                if (whole) return be.toDoubles(g.b);
                double[] up = new double[Math.toIntExact(Math.multiplyExact(out, (long) width))];
                for (int i = 0; i < np; i++) {
                    LoraGroup.Piece p = g.pieces.get(i);
                    double[] bi = be.toDoubles(g.pieceB(i));
                    for (long row = 0; row < p.rows(); row++)
                        System.arraycopy(bi, (int) (row * g.rank), up, (int) ((p.rowStart() + row) * width + (long) i * g.rank), g.rank);
                }
                return up;
            }));
            double alpha = g.alpha * np;
            items.add(tensor(name + ".alpha", DType.F32, new long[0], () -> new double[] {alpha}));
            dims.add(width);
            alphas.add(alpha);
            if (!whole) {
                ArrayNode l = pieces.putArray(g.key);
                for (LoraGroup.Piece p : g.pieces) l.addArray().add(p.name()).add(p.rowStart()).add(p.rowEnd());
            }
        }
        // sd-scripts' training metadata keys that UIs (and sd-scripts' own tools) read to show rank and alpha
        md.putIfAbsent("ss_network_module", "networks.lora_flux");
        md.putIfAbsent("ss_base_model_version", "flux1");
        md.putIfAbsent("ss_network_dim", Integer.toString(mostCommon(dims)));
        md.putIfAbsent("ss_network_alpha", Double.toString(mostCommon(alphas)));
        if (!pieces.isEmpty()) {
            try {
                md.put(LoraFileReader.IMPASTO_PIECES, new ObjectMapper().writeValueAsString(pieces));
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ widths

    /** {hidden, mlp} from the config, else from the groups' shapes (mlp -1 when nothing tells it). */
    static long[] widths(List<LoraGroup> groups, FluxConfig cfg) {
        if (cfg != null) return new long[] {cfg.hidden(), cfg.mlpHidden()};
        Map<String, Long> hs = new HashMap<>(), ms = new HashMap<>();
        for (LoraGroup g : groups) {
            String k = g.key;
            boolean whole1 = g.pieces.size() == 1 && g.pieces.get(0).rowStart() == 0;
            if (k.endsWith("_mlp.2")) {
                ms.put(k, g.in());
                if (whole1) hs.put(k, g.pieces.get(0).rowEnd());
            } else if (k.endsWith(".linear2")) {
                if (whole1) {
                    long h = g.pieces.get(0).rowEnd();
                    hs.put(k, h);
                    ms.put(k, g.in() - h);
                }
            } else {
                hs.put(k, g.in());
                if (k.endsWith("_mlp.0") && whole1) ms.put(k, g.pieces.get(0).rowEnd());
            }
        }
        long h = agree(hs, "hidden width");
        if (h < 0) throw new IllegalArgumentException("cannot tell the hidden width from the LoRA groups; pass the model config (Options.withConfig)");
        for (LoraGroup g : groups) {
            if (!g.key.endsWith(".linear1") || h < 0) continue;
            long end = g.pieces.get(g.pieces.size() - 1).rowEnd();
            if (end > 3 * h) ms.put(g.key, end - 3 * h);
        }
        return new long[] {h, agree(ms, "MLP width")};
    }

    private static long agree(Map<String, Long> m, String what) {
        long v = -1;
        String from = null;
        for (var e : m.entrySet()) {
            if (v >= 0 && e.getValue() != v)
                throw new IllegalArgumentException("LoRA groups disagree on the " + what + ": " + from + " says " + v + ", " + e.getKey() + " says " + e.getValue());
            v = e.getValue();
            from = e.getKey();
        }
        return v;
    }
}
