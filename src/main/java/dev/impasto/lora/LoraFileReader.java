package dev.impasto.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.io.Shapes;
import dev.impasto.io.TensorCodec;
import dev.impasto.io.TensorEntry;
import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.io.safetensors.SafetensorsFormatException;
import dev.impasto.model.FluxConfig;
import dev.impasto.model.LoraGroup;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Reads a FLUX LoRA file in any layout {@link LoraFormat} knows into {@link LoraGroup}s keyed by BFL module.
 *
 * <p>Per module, the adapters of the file (one fused, or one per diffusers piece) become one group: pieces in row
 * order, ranks padded to the largest with zero rows of A and zero columns of B (the same product), and pieces whose
 * scale alpha/rank differs from the first piece's get the ratio folded into their B. Split pieces that share one
 * bit-identical down matrix (a fused LoRA written in diffusers naming) are fused back into one adapter, so a
 * kohya -> diffusers -> kohya conversion does not grow. A kohya module written by impasto from per-piece adapters
 * (metadata {@code impasto.pieces}) is split back when its up matrix is still block-diagonal.
 *
 * <p>alpha, per adapter: its {@code .alpha} tensor (0 means rank, as sd-scripts reads it); else, in diffusers files,
 * diffusers' {@code lora_adapter_metadata} (peft LoraConfig: lora_alpha, alpha_pattern, r, rank_pattern, use_rslora);
 * else alpha = rank (scale 1), which is what diffusers (lora_conversion_utils: default_alpha = rank), ComfyUI
 * (weight_adapter/lora.py: no alpha -> 1.0) and sd-scripts (LoRAModule: alpha None -> lora_dim) all do.
 */
public final class LoraFileReader {
    private LoraFileReader() {}

    static final String IMPASTO_PIECES = "impasto.pieces";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Reads {@code file} for a model of architecture {@code cfg}; groups are created on {@code be} for compute dtype {@code computeType}. */
    public static LoadedLora read(Path file, FluxConfig cfg, Backend be, DType computeType) throws IOException {
        try (SafetensorsFile sf = open(file)) {
            return new Reading(file, sf, cfg, be, computeType).run();
        }
    }

    /** The validated, mapped file; a malformed one is a {@link LoraFileException} with the reader's message. */
    private static SafetensorsFile open(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new LoraFileException(file, "no such file");
        try {
            return SafetensorsFile.open(file);
        } catch (SafetensorsFormatException e) {
            throw new LoraFileException(file, e);
        }
    }

    /** One adapter of the file: the tensors of one stem. */
    private static final class Adapter {
        final LoraKeys.Parsed first;
        String down, up, alpha;

        Adapter(LoraKeys.Parsed p) {
            this.first = p;
        }

        String anyKey() {
            return down != null ? down : up != null ? up : alpha;
        }
    }

    /** An adapter loaded: rows [r0, r1) of its module, A [rank, in] and B [rows, rank] row-major. */
    private static final class Seg {
        long r0, r1;
        String name;
        int rank;
        double alpha;
        double[] a, b;
        String key;
        LoraFormat format;
    }

    private static final class Reading {
        final Path file;
        final SafetensorsFile sf;
        final FluxConfig cfg;
        final Backend be;
        final DType computeType;
        final List<String> unknown = new ArrayList<>(), te = new ArrayList<>(), notes = new ArrayList<>();
        final Map<String, Integer> counts = new LinkedHashMap<>();  // aggregated notes: message -> modules
        final Map<String, String> examples = new LinkedHashMap<>();
        PeftMeta peft;

        Reading(Path file, SafetensorsFile sf, FluxConfig cfg, Backend be, DType computeType) {
            this.file = file;
            this.sf = sf;
            this.cfg = cfg;
            this.be = be;
            this.computeType = computeType;
        }

        void count(String what, String example) {
            counts.merge(what, 1, Integer::sum);
            examples.putIfAbsent(what, example);
        }

        LoadedLora run() throws IOException {
            LoraFormat format;
            try {
                format = LoraFormat.detect(sf.tensorMap().keySet());
            } catch (IllegalArgumentException e) {
                throw new LoraFileException(file, e.getMessage());
            }
            Map<String, FluxLoraLayout.Module> modules = FluxLoraLayout.modules(cfg);
            Map<String, Adapter> adapters = new LinkedHashMap<>();
            int outside = 0, unsupported = 0, alphaOnly = 0;
            for (String key : sf.tensorMap().keySet()) {
                LoraKeys.Parsed p = LoraKeys.parse(key);
                switch (p.kind()) {
                    case TEXT_ENCODER -> te.add(key);
                    case OUTSIDE_BLOCKS -> { unknown.add(key); outside++; }
                    case UNSUPPORTED_TYPE -> { unknown.add(key); unsupported++; }
                    case UNKNOWN -> unknown.add(key);
                    case BLOCK -> {
                        Adapter a = adapters.computeIfAbsent(p.stem(), s -> new Adapter(p));
                        String prev = switch (p.role()) {
                            case DOWN -> a.down;
                            case UP -> a.up;
                            case ALPHA -> a.alpha;
                        };
                        if (prev != null)
                            throw new LoraFileException(file, "tensors \"" + prev + "\" and \"" + key + "\" are both the " + p.role().name().toLowerCase()
                                    + " weight of adapter " + p.stem());
                        switch (p.role()) {
                            case DOWN -> a.down = key;
                            case UP -> a.up = key;
                            case ALPHA -> a.alpha = key;
                        }
                    }
                }
            }
            Map<String, List<Adapter>> byModule = new LinkedHashMap<>();
            for (String k : modules.keySet()) byModule.put(k, new ArrayList<>());
            for (Adapter a : adapters.values()) {
                if (a.down == null && a.up == null) {
                    unknown.add(a.alpha);
                    alphaOnly++;
                    continue;
                }
                if (a.down == null || a.up == null)
                    throw new LoraFileException(file, "\"" + a.anyKey() + "\" has no matching " + (a.down == null ? "down (lora_A / lora_down)" : "up (lora_B / lora_up)")
                            + " weight; the file is incomplete");
                List<Adapter> l = byModule.get(a.first.module());
                if (l == null)
                    throw new LoraFileException(file, "\"" + a.down + "\" adapts " + a.first.module() + ", which the model " + cfg.name() + " does not have ("
                            + cfg.depth() + " double and " + cfg.depthSingle() + " single blocks): the LoRA was made for another model");
                l.add(a);
            }
            if (outside > 0)
                notes.add(outside + " tensors adapt layers outside the transformer blocks (embedders, final layer); impasto applies LoRA only inside the blocks");
            if (unsupported > 0)
                notes.add(unsupported + " tensors belong to adapter types impasto does not implement (DoRA, LoHa, LoKr, OFT, full diffs)");
            if (alphaOnly > 0) notes.add(alphaOnly + " alpha tensors have no LoRA weights beside them");
            if (!te.isEmpty()) notes.add("text-encoder LoRA keys are not applied (" + te.size() + " tensors)");
            peft = PeftMeta.parse(sf.metadata(), notes);
            Map<String, List<Object[]>> impastoPieces = parseImpastoPieces(sf.metadata());

            List<LoraGroup> groups = new ArrayList<>();
            try {
                for (var e : byModule.entrySet()) {
                    if (e.getValue().isEmpty()) continue;
                    FluxLoraLayout.Module m = modules.get(e.getKey());
                    List<Seg> segs = new ArrayList<>();
                    for (Adapter a : e.getValue()) segs.add(load(m, a));
                    segs.sort(Comparator.comparingLong((Seg s) -> s.r0));
                    for (int i = 1; i < segs.size(); i++)
                        if (segs.get(i).r0 < segs.get(i - 1).r1)
                            throw new LoraFileException(file, "\"" + segs.get(i - 1).key + "\" and \"" + segs.get(i).key + "\" both adapt rows of " + m.key()
                                    + " (a file mixing fused and split adapters of the same layer)");
                    if (segs.size() > 1) segs = fuseShared(m, segs);
                    else if (impastoPieces.containsKey(m.key())) segs = splitImpasto(m, segs.get(0), impastoPieces.get(m.key()));
                    groups.add(group(m, segs));
                }
            } catch (IOException | RuntimeException ex) {
                groups.forEach(LoraGroup::close);
                throw ex;
            }
            if (groups.isEmpty()) notes.add("the file holds no LoRA weights for the transformer blocks");
            for (var c : counts.entrySet()) notes.add(c.getKey() + " (" + c.getValue() + (c.getValue() == 1 ? " module" : " modules") + ", e.g. " + examples.get(c.getKey()) + ")");
            if (peft != null && peft.rankMismatch > 0)
                notes.add("lora_adapter_metadata gives ranks that differ from the tensors for " + peft.rankMismatch + " adapters; the tensors' ranks are used");
            return new LoadedLora(groups, format, sf.metadata(), unknown, notes, te);
        }

        private Seg load(FluxLoraLayout.Module m, Adapter ad) throws LoraFileException {
            LoraKeys.Parsed p = ad.first;
            Seg s = new Seg();
            s.key = ad.down;
            s.format = p.format();
            s.name = p.segment();
            long h = cfg.hidden();
            if (p.segment().isEmpty()) {
                s.r0 = 0;
                s.r1 = m.out();
            } else if (p.segment().equals("q+k+v")) {
                s.r0 = 0;
                s.r1 = 3 * h;
            } else {
                FluxLoraLayout.Segment seg = m.segment(p.segment());
                s.r0 = seg.rowStart();
                s.r1 = seg.rowEnd();
            }
            TensorEntry down = sf.tensor(ad.down), up = sf.tensor(ad.up);
            if (down.shape().length != 2 || down.shape()[0] < 1 || down.shape()[1] != m.in())
                throw new LoraFileException(file, "\"" + ad.down + "\": expected shape [rank, " + m.in() + "] for " + m.key() + ", found " + Shapes.format(down.shape()));
            long rank = down.shape()[0];
            if (rank > Integer.MAX_VALUE / 2) throw new LoraFileException(file, "\"" + ad.down + "\": rank " + rank + " is absurd");
            s.rank = (int) rank;
            long rows = s.r1 - s.r0;
            if (up.shape().length != 2 || up.shape()[0] != rows || up.shape()[1] != rank)
                throw new LoraFileException(file, "\"" + ad.up + "\": expected shape [" + rows + ", " + rank + "] (rank " + rank + " from " + ad.down
                        + "), found " + Shapes.format(up.shape()));
            s.a = finite(ad.down, values(down));
            s.b = finite(ad.up, values(up));
            if (ad.alpha != null) {
                TensorEntry al = sf.tensor(ad.alpha);
                if (al.numel() != 1) throw new LoraFileException(file, "\"" + ad.alpha + "\": expected a scalar, found shape " + Shapes.format(al.shape()));
                double v = values(al)[0];
                if (!Double.isFinite(v)) throw new LoraFileException(file, "\"" + ad.alpha + "\" is " + v);
                if (v == 0) {
                    count("alpha 0 read as alpha = rank, as sd-scripts does", m.key());
                    v = rank;
                }
                s.alpha = v;
                if (p.format() == LoraFormat.DIFFUSERS && peft != null) count("alpha tensors used instead of lora_adapter_metadata", m.key());
            } else if (p.format() == LoraFormat.DIFFUSERS && peft != null) {
                s.alpha = peft.alphaFor(p.diffusersName(), s.rank);
            } else {
                s.alpha = rank;
                count("no alpha in the file: scale 1 (alpha = rank), as diffusers and ComfyUI load it", m.key());
            }
            return s;
        }

        /** A tensor's elements, exactly as stored (F64, I64 and I32 too). */
        private double[] values(TensorEntry t) throws LoraFileException {
            if (!t.isSupported())
                throw new LoraFileException(file, "tensor \"" + t.name() + "\" has dtype " + t.typeName() + ", which impasto cannot read as LoRA weights");
            long n = t.numel();
            if (n > TensorCodec.MAX_ARRAY) throw new LoraFileException(file, "tensor \"" + t.name() + "\" has " + n + " elements, too many for a LoRA weight");
            return t.toDoubleArray();
        }

        private double[] finite(String key, double[] v) throws LoraFileException {
            int bad = 0;
            for (double x : v) if (!Double.isFinite(x)) bad++;
            if (bad > 0) throw new LoraFileException(file, "\"" + key + "\" holds " + bad + " NaN or infinite values");
            return v;
        }

        /** Fuses neighbouring pieces that share a bit-identical A, rank and alpha: a fused adapter written split. */
        private List<Seg> fuseShared(FluxLoraLayout.Module m, List<Seg> segs) {
            List<Seg> out = new ArrayList<>();
            Seg cur = segs.get(0);
            List<String> names = new ArrayList<>(List.of(cur.name));
            boolean fused = false;
            for (int i = 1; i <= segs.size(); i++) {
                Seg n = i < segs.size() ? segs.get(i) : null;
                if (n != null && n.r0 == cur.r1 && n.rank == cur.rank && n.alpha == cur.alpha && Arrays.equals(n.a, cur.a)) {
                    double[] b = Arrays.copyOf(cur.b, cur.b.length + n.b.length);
                    System.arraycopy(n.b, 0, b, cur.b.length, n.b.length);
                    cur.b = b;
                    cur.r1 = n.r1;
                    names.add(n.name);
                    fused = true;
                    continue;
                }
                cur.name = cur.r0 == 0 && cur.r1 == m.out() ? "" : String.join("+", names);
                out.add(cur);
                if (n != null) {
                    cur = n;
                    names = new ArrayList<>(List.of(n.name));
                }
            }
            if (fused) count("split pieces sharing one lora_A (a fused LoRA written split) were fused back into one adapter", m.key());
            return out;
        }

        /** Splits a fused kohya module back into the pieces impasto merged it from, if the up matrix is still block-diagonal. */
        private List<Seg> splitImpasto(FluxLoraLayout.Module m, Seg s, List<Object[]> spec) {
            int pieces = spec.size();
            if (s.r0 != 0 || s.r1 != m.out() || pieces < 1 || s.rank % pieces != 0) {
                count("impasto.pieces metadata does not fit the tensors; kept as one fused adapter", m.key());
                return List.of(s);
            }
            int r = s.rank / pieces;
            long rows = m.out();
            for (long row = 0; row < rows; row++) {
                int owner = -1;
                for (int j = 0; j < pieces; j++) if (row >= (long) spec.get(j)[1] && row < (long) spec.get(j)[2]) owner = j;
                for (int c = 0; c < s.rank; c++) {
                    if ((owner < 0 || c / r != owner) && s.b[(int) (row * s.rank + c)] != 0) {
                        count("impasto.pieces metadata present but the up matrix is no longer block-diagonal; kept as one fused adapter", m.key());
                        return List.of(s);
                    }
                }
            }
            List<Seg> out = new ArrayList<>();
            int in = (int) m.in();
            for (int j = 0; j < pieces; j++) {
                Seg p = new Seg();
                p.name = (String) spec.get(j)[0];
                p.r0 = (long) spec.get(j)[1];
                p.r1 = (long) spec.get(j)[2];
                p.rank = r;
                p.alpha = s.alpha / pieces;
                p.key = s.key;
                p.format = s.format;
                p.a = Arrays.copyOfRange(s.a, j * r * in, (j + 1) * r * in);
                int pr = (int) (p.r1 - p.r0);
                p.b = new double[pr * r];
                for (int row = 0; row < pr; row++)
                    System.arraycopy(s.b, (int) ((p.r0 + row) * s.rank + (long) j * r), p.b, row * r, r);
                out.add(p);
            }
            count("kohya module split back into the pieces impasto merged it from (impasto.pieces)", m.key());
            return out;
        }

        private LoraGroup group(FluxLoraLayout.Module m, List<Seg> segs) {
            int rank = 0;
            long rows = 0;
            for (Seg s : segs) {
                rank = Math.max(rank, s.rank);
                rows += s.r1 - s.r0;
            }
            Seg s0 = segs.get(0);
            double alpha = s0.rank == rank ? s0.alpha : s0.alpha * rank / s0.rank;
            int in = (int) m.in(), pieces = segs.size();
            double[] a = new double[Math.multiplyExact(pieces * rank, in)];
            double[] b = new double[Math.toIntExact(Math.multiplyExact(rows, (long) rank))];
            List<LoraGroup.Piece> ps = new ArrayList<>();
            boolean padded = false, rescaled = false;
            int rowOff = 0;
            for (int i = 0; i < pieces; i++) {
                Seg s = segs.get(i);
                ps.add(new LoraGroup.Piece(s.name, s.r0, s.r1));
                System.arraycopy(s.a, 0, a, i * rank * in, s.rank * in);
                double f = s.alpha == s0.alpha && s.rank == s0.rank ? 1 : (s.alpha * s0.rank) / (s.rank * s0.alpha);
                padded |= s.rank != rank;
                rescaled |= f != 1;
                int pr = (int) (s.r1 - s.r0);
                for (int row = 0; row < pr; row++)
                    for (int c = 0; c < s.rank; c++) b[(rowOff + row) * rank + c] = s.b[row * s.rank + c] * f;
                rowOff += pr;
            }
            if (padded) count("pieces of different ranks padded to the largest with zero rows of A / columns of B (same output)", m.key());
            if (rescaled) count("pieces with different alpha/rank: the ratio to the first piece's scale is folded into B", m.key());
            LoraGroup g = new LoraGroup(be, m.key(), ps, in, rank, alpha, 0, computeType);
            try (Tensor ta = be.fromDoubles(a, g.a.dtype(), g.a.shape()); Tensor tb = be.fromDoubles(b, g.b.dtype(), g.b.shape())) {
                be.copy(g.a, ta);
                be.copy(g.b, tb);
            }
            g.syncCompute(be);
            return g;
        }

        /** impasto.pieces: {"module": [["q", 0, 3072], ...]} written by {@link LoraFileWriter} for merged kohya modules. */
        private Map<String, List<Object[]>> parseImpastoPieces(Map<String, String> md) {
            Map<String, List<Object[]>> out = new TreeMap<>();
            String raw = md.get(IMPASTO_PIECES);
            if (raw == null) return out;
            try {
                JsonNode root = JSON.readTree(raw);
                for (var e : root.properties()) {
                    List<Object[]> l = new ArrayList<>();
                    for (JsonNode p : e.getValue()) {
                        if (!p.isArray() || p.size() != 3 || !p.get(0).isTextual() || !p.get(1).canConvertToLong() || !p.get(2).canConvertToLong())
                            throw new IllegalArgumentException("bad piece " + p);
                        l.add(new Object[] {p.get(0).textValue(), p.get(1).longValue(), p.get(2).longValue()});
                    }
                    out.put(e.getKey(), l);
                }
            } catch (Exception e) {
                notes.add(IMPASTO_PIECES + " metadata is malformed (" + e.getMessage() + "); modules stay fused");
                out.clear();
            }
            return out;
        }
    }

    /**
     * diffusers' LoRA metadata: {@code __metadata__["lora_adapter_metadata"]} = JSON of the peft LoraConfig, each key
     * prefixed with the component ("transformer.r", "transformer.lora_alpha", ...), as diffusers >= 0.34
     * (loaders/lora_base.py _save_lora_weights / write_lora_layers) writes it. peft's defaults (r = lora_alpha = 8)
     * apply to missing fields; alpha_pattern/rank_pattern keys match module names as peft's get_pattern_key does.
     */
    static final class PeftMeta {
        Double loraAlpha;
        Integer r;
        final Map<String, Double> alphaPattern = new LinkedHashMap<>();
        final Map<String, Integer> rankPattern = new LinkedHashMap<>();
        boolean rslora;
        int rankMismatch;

        static PeftMeta parse(Map<String, String> md, List<String> notes) {
            String raw = md.get(LoraFileWriter.LORA_ADAPTER_METADATA);
            if (raw == null) return null;
            JsonNode root;
            try {
                root = JSON.readTree(raw);
            } catch (Exception e) {
                notes.add("lora_adapter_metadata is not valid JSON; alphas default to the ranks (scale 1)");
                return null;
            }
            if (root == null || !root.isObject()) {
                notes.add("lora_adapter_metadata is not a JSON object; alphas default to the ranks (scale 1)");
                return null;
            }
            Map<String, JsonNode> f = new LinkedHashMap<>();
            boolean prefixed = false;
            for (var e : root.properties()) prefixed |= e.getKey().startsWith("transformer.");
            for (var e : root.properties()) {
                String k = e.getKey();
                if (prefixed && k.startsWith("transformer.")) f.put(k.substring("transformer.".length()), e.getValue());
                else if (!prefixed && !k.contains(".")) f.put(k, e.getValue());
            }
            if (f.isEmpty()) return null;
            PeftMeta m = new PeftMeta();
            if (f.get("lora_alpha") != null && f.get("lora_alpha").isNumber()) m.loraAlpha = f.get("lora_alpha").doubleValue();
            if (f.get("r") != null && f.get("r").canConvertToInt()) m.r = f.get("r").intValue();
            if (f.get("alpha_pattern") != null)
                for (var e : f.get("alpha_pattern").properties()) if (e.getValue().isNumber()) m.alphaPattern.put(e.getKey(), e.getValue().doubleValue());
            if (f.get("rank_pattern") != null)
                for (var e : f.get("rank_pattern").properties()) if (e.getValue().canConvertToInt()) m.rankPattern.put(e.getKey(), e.getValue().intValue());
            m.rslora = f.get("use_rslora") != null && f.get("use_rslora").asBoolean();
            if (f.get("use_dora") != null && f.get("use_dora").asBoolean())
                notes.add("lora_adapter_metadata says use_dora: impasto does not implement DoRA; its magnitude tensors are listed as not applied");
            if (m.loraAlpha == null && m.alphaPattern.isEmpty())
                notes.add("lora_adapter_metadata has no lora_alpha: peft's default 8 applies");
            if (m.rslora) notes.add("lora_adapter_metadata says use_rslora: scale = lora_alpha / sqrt(rank)");
            notes.add("alpha from lora_adapter_metadata (lora_alpha " + m.loraAlpha + (m.alphaPattern.isEmpty() ? "" : ", " + m.alphaPattern.size() + " alpha_pattern entries") + ")");
            return m;
        }

        /** The effective alpha (scale * rank) of module {@code name} whose tensors have rank {@code rank}. */
        double alphaFor(String name, int rank) {
            Double a = match(alphaPattern, name);
            double alpha = a != null ? a : loraAlpha != null ? loraAlpha : 8;
            Integer rm = match(rankPattern, name);
            int metaRank = rm != null ? rm : r != null ? r : 8;
            if (metaRank != rank) rankMismatch++;
            return rslora ? alpha * rank / Math.sqrt(rank) : alpha;
        }

        private static <T> T match(Map<String, T> patterns, String name) {
            for (var e : patterns.entrySet()) {
                if (e.getKey().equals(name)) return e.getValue();
                try {
                    if (Pattern.compile("(.*\\.)?(" + e.getKey() + ")$").matcher(name).matches()) return e.getValue();
                } catch (PatternSyntaxException ignored) {
                    // peft would fail on it too; an exact-name match was already tried
                }
            }
            return null;
        }
    }
}
