package dev.impasto.io.flux;

import dev.impasto.io.Shapes;
import dev.impasto.io.StoredTensor;
import dev.impasto.io.TensorEntry;
import dev.impasto.io.UnknownLayoutException;
import dev.impasto.io.WeightFileSet;
import dev.impasto.io.gguf.GgufTensor;
import dev.impasto.io.lora.LoraFileInfo;
import dev.impasto.tensor.DType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A FLUX.1-style transformer checkpoint in any of the layouts people have on disk, presented under one canonical
 * naming, BFL's ({@code double_blocks.3.img_attn.qkv.weight}):
 * <ul>
 *   <li>BFL single file, keys bare or under ComfyUI's {@code model.diffusion_model.} (other components of an
 *       all-in-one checkpoint, VAE and text encoders, are listed in {@link #ignoredKeys()});</li>
 *   <li>diffusers ({@code transformer/diffusion_pytorch_model*.safetensors} + index), split q/k/v assembled by rows
 *       and norm_out's (scale, shift) halves swapped, see {@link FluxKeyMap};</li>
 *   <li>bitsandbytes NF4 exports (diffusers or BFL/Forge names), weights with their absmax / quant_map / quant_state;</li>
 *   <li>GGUF (city96 / stable-diffusion.cpp: BFL names, quantized blocks, embedders unquantized).</li>
 * </ul>
 * The architecture is detected from the shapes ({@link #architecture()}), and what the layout lacks or has in
 * excess is listed ({@link #missingKeys()}, {@link #unexpectedKeys()}, {@link #problems()}) rather than thrown, so
 * {@code impasto inspect} can show it; the loader decides what is fatal ({@link #requireComplete()}).
 */
public final class FluxCheckpoint implements AutoCloseable {

    /** Key naming of the stored tensors. */
    public enum Naming { BFL, DIFFUSERS }

    /** How the stored weights are quantized. */
    public enum Quantization { NONE, BNB_NF4, GGUF }

    private static final List<String> PREFIXES = List.of("", "model.diffusion_model.", "diffusion_model.", "transformer.", "model.",
            "unet.");
    private static final Pattern DOUBLE_IDX = Pattern.compile("double_blocks\\.(\\d+)\\..+");
    private static final Pattern SINGLE_IDX = Pattern.compile("single_blocks\\.(\\d+)\\..+");
    private static final Pattern QKV_BIAS = Pattern.compile("double_blocks\\.\\d+\\.(img|txt)_attn\\.qkv\\.bias");
    private static final int MAX_BLOCKS = 4096;
    private static final String BNB_STATE = ".quant_state.bitsandbytes__";

    private final WeightFileSet files;
    private final Naming naming;
    private final Quantization quantization;
    private final String prefix;
    private final boolean nestedNf4;
    private final FluxArchitecture architecture;
    private final Map<String, WeightSource> weights;
    private final List<String> missing;
    private final List<String> unexpected;
    private final List<String> ignored;
    private final List<String> problems;

    private FluxCheckpoint(WeightFileSet files, Naming naming, Quantization quantization, String prefix, boolean nestedNf4,
                           FluxArchitecture architecture, Map<String, WeightSource> weights, List<String> missing,
                           List<String> unexpected, List<String> ignored, List<String> problems) {
        this.files = files;
        this.naming = naming;
        this.quantization = quantization;
        this.prefix = prefix;
        this.nestedNf4 = nestedNf4;
        this.architecture = architecture;
        this.weights = weights;
        this.missing = missing;
        this.unexpected = unexpected;
        this.ignored = ignored;
        this.problems = problems;
    }

    /**
     * Opens a file or folder. Malformed files throw a {@link dev.impasto.io.WeightFileException} (subclasses
     * name the format); files whose keys are not a FLUX transformer throw {@link UnknownLayoutException}.
     */
    public static FluxCheckpoint open(Path path) throws IOException {
        WeightFileSet set = WeightFileSet.open(path);
        try {
            return of(set);
        } catch (IOException | RuntimeException e) {
            set.close();
            throw e;
        }
    }

    private sealed interface Raw permits RawDense, RawNf4, RawGguf {
        String name();
    }

    private record RawDense(String name, TensorEntry t) implements Raw {}

    private record RawNf4(String name, Nf4Part p) implements Raw {}

    private record RawGguf(String name, GgufTensor t) implements Raw {}

    /** Interprets an opened file set; on success the checkpoint owns it (closing the checkpoint closes the set). */
    public static FluxCheckpoint of(WeightFileSet set) throws IOException {
        String where = set.path().toString();
        Map<String, StoredTensor> all = set.tensorMap();
        Optional<LoraFileInfo> lora = LoraFileInfo.detect(set.tensors(), set.metadata());
        if (lora.isPresent())
            throw new UnknownLayoutException(where + " is a LoRA file (" + lora.get().summary() + "), not a base model");

        // 1. stored tensors -> raw weights (bitsandbytes companions folded into their weight)
        Set<String> consumed = new HashSet<>();
        Map<String, Raw> raws = new LinkedHashMap<>();
        boolean nested = false;
        for (StoredTensor st : set.tensors()) {
            String key = st.name();
            int at = key.indexOf(BNB_STATE);
            if (at < 0 || !(st instanceof TensorEntry stateTensor)) continue;
            String base = key.substring(0, at);
            String wname = set.path().getFileName() + ": bitsandbytes weight \"" + base + "\"";
            if (!(all.get(base) instanceof TensorEntry packed))
                throw new CheckpointLayoutException(wname + " has a quant_state but no packed weight tensor: the file is incomplete; re-export it");
            if (!stateTensor.isSupported() || stateTensor.dtype() != DType.U8 || stateTensor.byteSize() > (1 << 20))
                throw new CheckpointLayoutException(wname + ": its quant_state tensor is " + stateTensor.typeName() + " "
                        + Shapes.format(stateTensor.shape()) + ", not JSON bytes (U8): the file is corrupt; re-export it");
            BnbQuantState state = BnbQuantState.parse(stateTensor.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), wname);
            Nf4Part part = Nf4Part.of(base, packed, entry(all, base + ".absmax"), entry(all, base + ".quant_map"),
                    entry(all, base + ".nested_absmax"), entry(all, base + ".nested_quant_map"), state, set.path().getFileName().toString());
            nested |= state.nested();
            raws.put(base, new RawNf4(base, part));
            for (String s : new String[]{"", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"}) consumed.add(base + s);
            consumed.add(key);
        }
        boolean bnb = !raws.isEmpty();
        Map<String, Raw> ordered = new LinkedHashMap<>();
        for (StoredTensor st : set.tensors()) {
            String key = st.name();
            if (raws.containsKey(key)) ordered.put(key, raws.get(key));
            if (consumed.contains(key)) continue;
            if (st instanceof TensorEntry t) ordered.put(key, new RawDense(key, t));
            else if (st instanceof GgufTensor g) ordered.put(key, denseFromGguf(g) instanceof TensorEntry t ? new RawDense(key, t) : new RawGguf(key, g));
        }
        boolean ggufQuantized = ordered.values().stream().anyMatch(r -> r instanceof RawGguf);

        // 2. key prefix and naming: the (prefix, naming) pair that explains the most keys
        String bestPrefix = null;
        Naming bestNaming = null;
        int bestCount = 0;
        for (String p : PREFIXES)
            for (Naming n : Naming.values()) {
                int c = 0;
                for (String k : ordered.keySet()) if (k.startsWith(p) && isStructural(k.substring(p.length()), n)) c++;
                if (c > bestCount) {
                    bestCount = c;
                    bestPrefix = p;
                    bestNaming = n;
                }
            }
        if (bestNaming == null)
            throw new UnknownLayoutException(where + " is not a FLUX transformer checkpoint: none of its " + all.size()
                    + " keys is a BFL (double_blocks.*, img_in.*) or diffusers (transformer_blocks.*, x_embedder.*) FLUX key"
                    + (all.isEmpty() ? "" : " (first key: \"" + all.keySet().iterator().next() + "\")"));

        // 3. canonical grouping
        List<String> ignored = new ArrayList<>();
        List<String> unexpected = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        Map<String, Raw[]> groups = new LinkedHashMap<>();
        Map<String, Boolean> swaps = new LinkedHashMap<>();
        for (Raw r : ordered.values()) {
            if (!r.name().startsWith(bestPrefix)) {
                ignored.add(r.name());
                continue;
            }
            String k = r.name().substring(bestPrefix.length());
            String canonical;
            int part = 0, parts = 1;
            boolean swap = false;
            if (bestNaming == Naming.BFL) {
                canonical = k;
            } else {
                Optional<FluxKeyMap.Target> t = FluxKeyMap.diffusersToBfl(k);
                if (t.isEmpty()) {
                    unexpected.add(r.name());
                    continue;
                }
                canonical = t.get().bflKey();
                part = t.get().part();
                parts = t.get().parts();
                swap = t.get().swapHalves();
            }
            Raw[] g = groups.get(canonical);
            if (g == null) {
                g = new Raw[parts];
                groups.put(canonical, g);
            }
            if (g[part] != null)
                throw new CheckpointLayoutException(where + ": \"" + g[part].name() + "\" and \"" + r.name() + "\" both map to "
                        + canonical + ": the checkpoint mixes two layouts; keep one");
            g[part] = r;
            swaps.put(canonical, swap);
        }
        Map<String, WeightSource> weights = new LinkedHashMap<>();
        for (Map.Entry<String, Raw[]> e : groups.entrySet()) {
            String key = e.getKey();
            Raw[] g = e.getValue();
            List<String> have = new ArrayList<>(), lack = new ArrayList<>();
            Optional<FluxKeyMap.Source> src = FluxKeyMap.bflToDiffusers(key);
            for (int i = 0; i < g.length; i++) {
                if (g[i] != null) have.add(g[i].name());
                else lack.add(src.isPresent() && i < src.get().diffusersKeys().size() ? bestPrefix + src.get().diffusersKeys().get(i) : "part " + i);
            }
            if (!lack.isEmpty()) {
                problems.add(key + " cannot be assembled: " + String.join(", ", have) + " present but " + String.join(", ", lack) + " missing");
                continue;
            }
            weights.put(key, build(where + ": " + key, g, swaps.get(key)));
        }

        // 4. architecture, expected keys, shapes
        FluxArchitecture arch = detect(where, weights);
        Map<String, long[]> expected = arch.expectedShapes();
        List<String> missing = new ArrayList<>();
        Map<String, WeightSource> canonicalOrder = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            WeightSource w = weights.get(e.getKey());
            if (w == null) {
                missing.add(e.getKey());
                continue;
            }
            canonicalOrder.put(e.getKey(), w);
            long[] want = e.getValue();
            if (Arrays.stream(want).allMatch(d -> d >= 0) && !Arrays.equals(want, w.shape()))
                problems.add(e.getKey() + " has shape " + Shapes.format(w.shape()) + ", the detected architecture expects "
                        + Shapes.format(want));
        }
        TreeMap<String, WeightSource> extra = new TreeMap<>(FluxCheckpoint::naturalCompare);
        for (Map.Entry<String, WeightSource> e : weights.entrySet())
            if (!expected.containsKey(e.getKey())) extra.put(e.getKey(), e.getValue());
        for (String k : extra.keySet()) unexpected.add(bestNaming == Naming.BFL ? bestPrefix + k : k);
        canonicalOrder.putAll(extra);

        Map<String, Integer> unsupported = new TreeMap<>();
        for (WeightSource w : canonicalOrder.values()) {
            if (w instanceof WeightSource.Dense d && !d.isSupported()) unsupported.merge(d.typeName(), 1, Integer::sum);
            if (w instanceof WeightSource.Gguf g && !g.ggmlType().canDequantize()) unsupported.merge(g.typeName(), 1, Integer::sum);
        }
        for (Map.Entry<String, Integer> e : unsupported.entrySet())
            problems.add(e.getValue() + " weights are stored as " + e.getKey() + ", which impasto does not read: use a BF16/F16 "
                    + "checkpoint, or a GGUF (Q8_0/Q4_K/...) or bitsandbytes-NF4 one");

        Quantization q = bnb ? Quantization.BNB_NF4 : ggufQuantized ? Quantization.GGUF : Quantization.NONE;
        return new FluxCheckpoint(set, bestNaming, q, bestPrefix, nested, arch, Collections.unmodifiableMap(canonicalOrder),
                List.copyOf(missing), List.copyOf(unexpected), List.copyOf(ignored), List.copyOf(problems));
    }

    private static TensorEntry entry(Map<String, StoredTensor> all, String key) {
        return all.get(key) instanceof TensorEntry t ? t : null;
    }

    /** GGUF tensors in a plain float type are dense weights like any other. */
    private static StoredTensor denseFromGguf(GgufTensor g) {
        DType d = switch (g.type()) {
            case F32 -> DType.F32;
            case F16 -> DType.F16;
            case BF16 -> DType.BF16;
            case F64 -> DType.F64;
            default -> null;
        };
        return d == null ? g : new TensorEntry(g.name(), d.safetensorsName(), d, g.shape(), g.data(), g.file());
    }

    private static WeightSource build(String where, Raw[] g, boolean swap) throws CheckpointLayoutException {
        if (Arrays.stream(g).allMatch(r -> r instanceof RawDense))
            return WeightSource.Dense.assemble(where, Arrays.stream(g).map(r -> ((RawDense) r).t()).toList(), swap);
        if (Arrays.stream(g).allMatch(r -> r instanceof RawNf4))
            return WeightSource.BnbNf4.assemble(where, Arrays.stream(g).map(r -> ((RawNf4) r).p()).toList(), swap);
        if (g.length == 1 && g[0] instanceof RawGguf rg && !swap)
            return new WeightSource.Gguf(rg.t(), rg.t().type(), rg.t().shape());
        throw new CheckpointLayoutException(where + " would have to be assembled from " + Arrays.stream(g).map(Raw::name).toList()
                + ", which are stored differently (dense / NF4 / GGUF-quantized) or need a half swap of quantized data: impasto "
                + "cannot assemble that; use a checkpoint in BFL naming");
    }

    private static boolean isStructural(String k, Naming n) {
        List<String> prefixes = n == Naming.BFL ? FluxKeyMap.BFL_TOP_PREFIXES : FluxKeyMap.DIFFUSERS_TOP_PREFIXES;
        for (String p : prefixes) if (k.startsWith(p)) return true;
        return false;
    }

    private static FluxArchitecture detect(String where, Map<String, WeightSource> w) throws IOException {
        int depthDouble = depth(where, w, DOUBLE_IDX), depthSingle = depth(where, w, SINGLE_IDX);
        int hidden = first(dim(w, "img_in.weight", 0), dim(w, "txt_in.weight", 0), blockDim(w, "double_blocks.", ".img_attn.proj.weight", 0),
                blockDim(w, "single_blocks.", ".linear2.weight", 0), dim(w, "final_layer.linear.weight", 1));
        if (hidden < 0)
            throw new UnknownLayoutException(where + ": the keys look like FLUX but the model width cannot be found (img_in, txt_in, "
                    + "block projections and final layer are all missing): the file is not a usable FLUX transformer");
        int headDim = first(blockDim(w, "double_blocks.", ".img_attn.norm.query_norm.scale", 0),
                blockDim(w, "single_blocks.", ".norm.query_norm.scale", 0));
        int heads = headDim > 0 && hidden % headDim == 0 ? hidden / headDim : -1;
        int l1 = blockDim(w, "single_blocks.", ".linear1.weight", 0);
        int mlp = first(blockDim(w, "double_blocks.", ".img_mlp.0.weight", 0), l1 > 3 * hidden ? l1 - 3 * hidden : -1);
        boolean guidance = w.keySet().stream().anyMatch(k -> k.startsWith("guidance_in."));
        boolean qkvBias = w.keySet().stream().anyMatch(k -> QKV_BIAS.matcher(k).matches());
        return new FluxArchitecture(dim(w, "img_in.weight", 1), dim(w, "final_layer.linear.weight", 0), hidden, heads, headDim, mlp,
                depthDouble, depthSingle, dim(w, "txt_in.weight", 1), dim(w, "vector_in.in_layer.weight", 1),
                first(dim(w, "time_in.in_layer.weight", 1), dim(w, "guidance_in.in_layer.weight", 1)), guidance, qkvBias);
    }

    private static int depth(String where, Map<String, WeightSource> w, Pattern p) throws IOException {
        int max = -1;
        for (String k : w.keySet()) {
            Matcher m = p.matcher(k);
            if (!m.matches()) continue;
            int i;
            try {
                i = Integer.parseInt(m.group(1));
            } catch (NumberFormatException e) {
                i = Integer.MAX_VALUE;
            }
            if (i >= MAX_BLOCKS)
                throw new CheckpointLayoutException(where + ": key \"" + k + "\" has block index " + m.group(1) + ", beyond any FLUX model: "
                        + "the file is corrupt");
            max = Math.max(max, i);
        }
        return max + 1;
    }

    private static int first(int... v) {
        for (int x : v) if (x > 0) return x;
        return -1;
    }

    private static int dim(Map<String, WeightSource> w, String key, int i) {
        WeightSource s = w.get(key);
        if (s == null) return -1;
        long[] shape = s.shape();
        return i < shape.length && shape[i] <= Integer.MAX_VALUE ? (int) shape[i] : -1;
    }

    /** A dimension of the block tensor with the lowest index present. */
    private static int blockDim(Map<String, WeightSource> w, String blocks, String suffix, int i) {
        for (int b = 0; b < MAX_BLOCKS; b++) {
            int d = dim(w, blocks + b + suffix, i);
            if (d > 0) return d;
            if (b > 64 && !w.containsKey(blocks + b + suffix)) break;
        }
        return -1;
    }

    /** Orders "double_blocks.10" after "double_blocks.9". */
    public static int naturalCompare(String a, String b) {
        int i = 0, j = 0;
        while (i < a.length() && j < b.length()) {
            char ca = a.charAt(i), cb = b.charAt(j);
            if (Character.isDigit(ca) && Character.isDigit(cb)) {
                int si = i, sj = j;
                while (i < a.length() && Character.isDigit(a.charAt(i))) i++;
                while (j < b.length() && Character.isDigit(b.charAt(j))) j++;
                String na = a.substring(si, i).replaceFirst("^0+(?=.)", ""), nb = b.substring(sj, j).replaceFirst("^0+(?=.)", "");
                int c = na.length() != nb.length() ? Integer.compare(na.length(), nb.length()) : na.compareTo(nb);
                if (c != 0) return c;
            } else {
                if (ca != cb) return Character.compare(ca, cb);
                i++;
                j++;
            }
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }

    public WeightFileSet files() {
        return files;
    }

    public Path path() {
        return files.path();
    }

    public Naming naming() {
        return naming;
    }

    public Quantization quantization() {
        return quantization;
    }

    /** The prefix stripped from every transformer key ("" or e.g. "model.diffusion_model."). */
    public String keyPrefix() {
        return prefix;
    }

    public FluxArchitecture architecture() {
        return architecture;
    }

    /** Every weight by canonical BFL key, in the reference model's order, then any extra keys. */
    public Map<String, WeightSource> weights() {
        return weights;
    }

    public Optional<WeightSource> find(String canonicalKey) {
        return Optional.ofNullable(weights.get(canonicalKey));
    }

    /** The weight; NoSuchElementException naming the checkpoint and key when absent. */
    public WeightSource weight(String canonicalKey) {
        WeightSource w = weights.get(canonicalKey);
        if (w == null) throw new NoSuchElementException(path() + " has no weight " + canonicalKey
                + (missing.contains(canonicalKey) ? " (the checkpoint is incomplete)" : ""));
        return w;
    }

    /** Expected keys (for the detected architecture) that the checkpoint lacks, canonical names. */
    public List<String> missingKeys() {
        return missing;
    }

    /** Keys that are not part of the detected architecture (stored names for unmapped diffusers keys). */
    public List<String> unexpectedKeys() {
        return unexpected;
    }

    /** Keys outside the transformer prefix (VAE, text encoders of an all-in-one file), not used. */
    public List<String> ignoredKeys() {
        return ignored;
    }

    /** Shape mismatches, parts that cannot be assembled, unsupported stored types: one sentence each. */
    public List<String> problems() {
        return problems;
    }

    /** Whether a loader can use the checkpoint as is. */
    public boolean isComplete() {
        return missing.isEmpty() && problems.isEmpty() && architecture.isComplete();
    }

    /** Throws a {@link CheckpointLayoutException} listing what is missing or wrong, unless {@link #isComplete()}. */
    public void requireComplete() throws CheckpointLayoutException {
        if (isComplete()) return;
        StringBuilder sb = new StringBuilder(path() + " is not a complete " + architecture.variant() + " transformer:");
        if (!missing.isEmpty())
            sb.append(" missing ").append(missing.size()).append(" keys (").append(String.join(", ", missing.subList(0, Math.min(5, missing.size()))))
                    .append(missing.size() > 5 ? ", ..." : "").append(");");
        for (String p : problems.subList(0, Math.min(5, problems.size()))) sb.append(' ').append(p).append(';');
        sb.append(" run `impasto inspect ").append(path()).append("` for the full list");
        throw new CheckpointLayoutException(sb.toString());
    }

    /** "BFL safetensors", "diffusers safetensors, 3 shards + index", "bitsandbytes NF4 (diffusers names)", "GGUF v3". */
    public String formatDescription() {
        StringBuilder sb = new StringBuilder();
        switch (quantization) {
            case BNB_NF4 -> sb.append("bitsandbytes NF4").append(nestedNf4 ? " (double-quantized)" : "").append(", ")
                    .append(naming == Naming.BFL ? "BFL" : "diffusers").append(" names");
            case GGUF, NONE -> {
                if (files.container() == WeightFileSet.Container.GGUF) sb.append("GGUF v").append(files.gguf().orElseThrow().version());
                else sb.append(naming == Naming.BFL ? "BFL" : "diffusers").append(" safetensors");
            }
        }
        if (files.container() == WeightFileSet.Container.SAFETENSORS_SHARDED)
            sb.append(", ").append(files.files().size()).append(" shards").append(files.index().isPresent() ? " + index" : "");
        if (!prefix.isEmpty()) sb.append(" (key prefix \"").append(prefix).append("\")");
        return sb.toString();
    }

    @Override
    public void close() {
        files.close();
    }
}
