package dev.impasto.io.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.io.Shapes;
import dev.impasto.io.StoredTensor;
import dev.impasto.io.UnknownLayoutException;
import dev.impasto.io.WeightFileException;
import dev.impasto.io.WeightFileSet;
import dev.impasto.io.flux.FluxArchitecture;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.io.lora.LoraFileInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code impasto inspect FILE|DIR}: what a weight file or model folder holds (format, tensors, dtypes, metadata,
 * detected FLUX architecture, missing and unexpected keys), or what a LoRA file adapts. Exit status 0 when the file
 * was read, 2 when it is malformed (the message says how), 3 when it is readable but not a layout impasto knows.
 */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Show what a weight file or model folder holds: format, tensors, dtypes, metadata, detected FLUX "
                + "architecture, and missing or unexpected keys.",
        exitCodeListHeading = "%nExit status:%n",
        exitCodeList = {"0:read and understood", "2:malformed file (the message says what is wrong and how to fix it)",
                "3:readable, but not a FLUX transformer, LoRA or other layout impasto knows"})
public final class InspectCommand implements Callable<Integer> {
    public static final int OK = 0, MALFORMED = 2, UNKNOWN_LAYOUT = 3;

    @Parameters(index = "0", paramLabel = "FILE|DIR",
            description = "a .safetensors or .gguf file, a *.safetensors.index.json, or a folder (diffusers model folders are searched for transformer/)")
    Path path;

    @Option(names = "--all", description = "list every tensor instead of grouping repeated blocks")
    boolean all;

    @Option(names = "--json", description = "print one JSON object instead of text")
    boolean json;

    @Spec
    CommandSpec spec;

    // block index: a dotted path segment ("double_blocks.7.") or, for kohya names, an underscore-delimited one
    private static final Pattern DOTTED_INDEX = Pattern.compile("(?<=\\.)(\\d+)(?=\\.)");
    private static final Pattern KOHYA_INDEX = Pattern.compile("(?<=_)(\\d+)(?=_)");

    private static Matcher indexMatcher(String name) {
        Matcher m = DOTTED_INDEX.matcher(name);
        if (m.find()) return m;
        m = KOHYA_INDEX.matcher(name);
        return m.find() ? m : null;
    }

    /** One line of the tensor table: a tensor, or a group of tensors that differ only in their block index. */
    record Row(String template, String type, long[] shape, long bytesEach, List<Integer> indices) {
        String name() {
            return indices.isEmpty() ? template : template.replace("{}", "{" + ranges(indices) + "}");
        }

        int count() {
            return Math.max(1, indices.size());
        }
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        ObjectNode j = new ObjectMapper().createObjectNode();
        j.put("path", path.toString());
        int exit;
        String error = null;
        List<String> text = new ArrayList<>();
        try (WeightFileSet set = WeightFileSet.open(path)) {
            exit = describe(set, j, text);
            if (j.has("error")) error = j.get("error").asText();
        } catch (NoSuchFileException e) {
            exit = MALFORMED;
            error = path + ": no such file or folder";
        } catch (WeightFileException e) {
            exit = MALFORMED;
            error = e.getMessage();
        } catch (UnknownLayoutException e) {
            exit = UNKNOWN_LAYOUT;
            error = e.getMessage();
        } catch (IOException e) {
            exit = MALFORMED;
            error = path + ": cannot be read: " + e;
        }
        j.put("exitCode", exit);
        if (error != null) j.put("error", error);
        if (json) {
            try {
                out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(j));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        } else {
            text.forEach(out::println);
            if (error != null) err.println("error: " + error);
        }
        out.flush();
        err.flush();
        return exit;
    }

    /** Fills the JSON object and the text lines; returns the exit status. */
    private int describe(WeightFileSet set, ObjectNode j, List<String> text) {
        List<StoredTensor> tensors = set.tensors();
        String container = switch (set.container()) {
            case SAFETENSORS -> "safetensors";
            case SAFETENSORS_SHARDED -> "safetensors, " + set.files().size() + " shards" + (set.index().isPresent() ? " + index" : "");
            case GGUF -> "GGUF v" + set.gguf().orElseThrow().version() + " (alignment " + set.gguf().orElseThrow().alignment() + ")";
        };
        j.put("resolved", set.resolved().toString());
        ArrayNode files = j.putArray("files");
        set.files().forEach(f -> files.add(f.toString()));
        j.put("container", set.container().name());
        j.put("tensorCount", tensors.size());
        j.put("totalBytes", set.tensorBytes());

        int exit = OK;
        String format;
        FluxCheckpoint ckpt = null;
        String layoutError = null;
        Optional<LoraFileInfo> lora = LoraFileInfo.detect(tensors, set.metadata());
        if (lora.isPresent()) {
            format = "LoRA file: " + lora.get().summary() + " (" + container + ")";
            ObjectNode l = j.putObject("lora");
            l.put("format", lora.get().format());
            lora.get().ranks().forEach(l.putArray("ranks")::add);
            l.put("targets", lora.get().targets());
            l.put("textEncoderTargets", lora.get().textEncoderTargets());
            lora.get().targetKinds().forEach(l.putArray("targetKinds")::add);
            lora.get().alphas().forEach(l.putArray("alphas")::add);
        } else {
            try {
                ckpt = FluxCheckpoint.of(set);
                format = ckpt.formatDescription();
            } catch (UnknownLayoutException e) {
                format = container + ", unknown layout";
                layoutError = e.getMessage();
                exit = UNKNOWN_LAYOUT;
            } catch (IOException e) {
                format = container;
                layoutError = e.getMessage();
                exit = MALFORMED;
            }
        }
        j.put("format", format);

        text.add("File:      " + set.path() + (set.resolved().equals(set.path()) ? "" : " -> " + set.resolved()));
        if (set.files().size() > 1 || !set.files().getFirst().equals(set.path()))
            for (Path f : set.files()) text.add("           " + f.getFileName());
        text.add("Format:    " + format);
        text.add("Tensors:   " + tensors.size() + ", " + human(set.tensorBytes()));

        Map<String, long[]> hist = new TreeMap<>();
        for (StoredTensor t : tensors) {
            long[] h = hist.computeIfAbsent(t.typeName(), k -> new long[2]);
            h[0]++;
            h[1] += t.byteSize();
        }
        List<String> hs = new ArrayList<>();
        ObjectNode dj = j.putObject("dtypes");
        hist.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[1], a.getValue()[1])).forEach(e -> {
            hs.add(e.getKey() + " x" + e.getValue()[0] + " (" + human(e.getValue()[1]) + ")");
            dj.putObject(e.getKey()).put("count", e.getValue()[0]).put("bytes", e.getValue()[1]);
        });
        text.add("DTypes:    " + (hs.isEmpty() ? "-" : String.join(", ", hs)));

        Map<String, String> md = set.metadata();
        ObjectNode mj = j.putObject("metadata");
        md.forEach(mj::put);
        if (md.isEmpty()) text.add("Metadata:  none");
        else {
            text.add("Metadata:");
            for (Map.Entry<String, String> e : md.entrySet()) text.add("  " + e.getKey() + " = " + oneLine(e.getValue(), 160));
        }

        List<Row> rows = rows(tensors, !all);
        ArrayNode tj = j.putArray("tensors");
        for (Row r : rows) {
            ObjectNode o = tj.addObject();
            o.put("name", r.name());
            o.put("dtype", r.type());
            ArrayNode s = o.putArray("shape");
            for (long d : r.shape()) s.add(d);
            o.put("bytes", r.bytesEach() * r.count());
            o.put("count", r.count());
            if (!r.indices().isEmpty()) r.indices().forEach(o.putArray("indices")::add);
        }
        text.add("");
        text.add(all ? "Tensors:" : "Tensors (repeated blocks grouped; --all lists each):");
        text.addAll(table(rows));

        if (ckpt != null) {
            FluxArchitecture a = ckpt.architecture();
            ObjectNode aj = j.putObject("architecture");
            aj.put("variant", a.variant());
            aj.put("inChannels", a.inChannels()).put("outChannels", a.outChannels()).put("hiddenSize", a.hiddenSize())
                    .put("numHeads", a.numHeads()).put("headDim", a.headDim()).put("mlpHiddenDim", a.mlpHiddenDim())
                    .put("depthDouble", a.depthDouble()).put("depthSingle", a.depthSingle()).put("contextDim", a.contextDim())
                    .put("vecInDim", a.vecInDim()).put("timeEmbedDim", a.timeEmbedDim()).put("guidanceEmbed", a.guidanceEmbed())
                    .put("qkvBias", a.qkvBias()).put("parameters", a.parameterCount());
            j.put("naming", ckpt.naming().name());
            j.put("quantization", ckpt.quantization().name());
            j.put("keyPrefix", ckpt.keyPrefix());
            ckpt.missingKeys().forEach(j.putArray("missingKeys")::add);
            ckpt.unexpectedKeys().forEach(j.putArray("unexpectedKeys")::add);
            ckpt.problems().forEach(j.putArray("problems")::add);
            j.put("ignoredKeyCount", ckpt.ignoredKeys().size());

            text.add("");
            long params = a.parameterCount();
            text.add("Architecture: " + a.variant() + (params > 0 ? ", " + count(params) + " parameters" : ""));
            text.add("  " + a.describe());
            text.add("Missing keys: " + (ckpt.missingKeys().isEmpty() ? "none" : ckpt.missingKeys().size()));
            for (String s : groupNames(ckpt.missingKeys())) text.add("  " + s);
            text.add("Unexpected keys: " + (ckpt.unexpectedKeys().isEmpty() ? "none" : ckpt.unexpectedKeys().size()));
            for (String s : groupNames(ckpt.unexpectedKeys())) text.add("  " + s);
            if (!ckpt.ignoredKeys().isEmpty()) {
                Map<String, Integer> comps = new TreeMap<>();
                for (String k : ckpt.ignoredKeys()) comps.merge(k.contains(".") ? k.substring(0, k.indexOf('.')) : k, 1, Integer::sum);
                List<String> cs = new ArrayList<>();
                comps.forEach((k, v) -> cs.add(k + " (" + v + ")"));
                text.add("Other components (not the transformer, ignored): " + String.join(", ", cs));
            }
            if (!ckpt.problems().isEmpty()) {
                text.add("Problems:");
                for (String p : ckpt.problems()) text.add("  " + p);
            }
        } else if (lora.isPresent()) {
            text.add("");
            text.add("LoRA targets: " + lora.get().kindsLine(16));
        }
        if (layoutError != null) j.put("error", layoutError);
        return exit;
    }

    /** Groups tensors that differ only in their first index and share type and shape. */
    static List<Row> rows(List<StoredTensor> tensors, boolean group) {
        List<StoredTensor> sorted = new ArrayList<>(tensors);
        sorted.sort((a, b) -> FluxCheckpoint.naturalCompare(a.name(), b.name()));
        Map<String, Row> byKey = new LinkedHashMap<>();
        List<Row> out = new ArrayList<>();
        for (StoredTensor t : sorted) {
            Matcher m = indexMatcher(t.name());
            if (!group || m == null || m.group(1).length() > 9) {
                out.add(new Row(t.name(), t.typeName(), t.shape(), t.byteSize(), List.of()));
                continue;
            }
            String template = t.name().substring(0, m.start()) + "{}" + t.name().substring(m.end());
            String key = template + "|" + t.typeName() + "|" + Shapes.format(t.shape());
            Row r = byKey.get(key);
            if (r == null) {
                r = new Row(template, t.typeName(), t.shape(), t.byteSize(), new ArrayList<>());
                byKey.put(key, r);
                out.add(r);
            }
            r.indices().add(Integer.parseInt(m.group(1)));
        }
        // a "group" of one is just the tensor
        List<Row> result = new ArrayList<>();
        for (Row r : out)
            result.add(r.indices().size() == 1 ? new Row(r.template().replace("{}", String.valueOf(r.indices().getFirst())), r.type(),
                    r.shape(), r.bytesEach(), List.of()) : r);
        return result;
    }

    /** Key names grouped by block index, for the missing/unexpected lists. */
    static List<String> groupNames(List<String> keys) {
        Map<String, List<Integer>> groups = new LinkedHashMap<>();
        List<String> sorted = new ArrayList<>(keys);
        sorted.sort(FluxCheckpoint::naturalCompare);
        for (String k : sorted) {
            Matcher m = indexMatcher(k);
            if (m != null && m.group(1).length() < 10) {
                groups.computeIfAbsent(k.substring(0, m.start()) + "{}" + k.substring(m.end()), x -> new ArrayList<>())
                        .add(Integer.parseInt(m.group(1)));
            } else groups.put(k, List.of());
        }
        List<String> out = new ArrayList<>();
        groups.forEach((t, idx) -> out.add(idx.isEmpty() ? t : idx.size() == 1 ? t.replace("{}", idx.getFirst().toString())
                : t.replace("{}", "{" + ranges(idx) + "}") + " x" + idx.size()));
        return out;
    }

    private static List<String> table(List<Row> rows) {
        int wn = 4, wt = 5, ws = 5;
        for (Row r : rows) {
            wn = Math.max(wn, r.name().length());
            wt = Math.max(wt, r.type().length());
            ws = Math.max(ws, Shapes.format(r.shape()).length());
        }
        wn = Math.min(wn, 90);
        List<String> out = new ArrayList<>();
        String fmt = "  %-" + wn + "s  %-" + wt + "s  %-" + ws + "s  %5s  %10s";
        out.add(String.format(Locale.ROOT, fmt, "name", "dtype", "shape", "count", "bytes"));
        for (Row r : rows)
            out.add(String.format(Locale.ROOT, fmt, r.name(), r.type(), Shapes.format(r.shape()),
                    r.count() > 1 ? "x" + r.count() : "", human(r.bytesEach() * r.count())).stripTrailing());
        return out;
    }

    /** "0..18" or "0..3,5,7..9" for sorted distinct indices. */
    static String ranges(List<Integer> idx) {
        List<Integer> s = idx.stream().distinct().sorted().toList();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < s.size(); ) {
            int k = i;
            while (k + 1 < s.size() && s.get(k + 1) == s.get(k) + 1) k++;
            if (!sb.isEmpty()) sb.append(',');
            sb.append(s.get(i));
            if (k > i) sb.append(k == i + 1 ? "," : "..").append(s.get(k));
            i = k + 1;
        }
        return sb.toString();
    }

    /** Decimal units, as model hubs show sizes (flux1-dev: 23.80 GB). */
    static String human(long bytes) {
        return bytes < 1000 ? bytes + " B" : thousands(bytes, "KB", "MB", "GB", "TB", "PB");
    }

    /** "11.90 B", "127.86 K" */
    static String count(long n) {
        return n < 1000 ? Long.toString(n) : thousands(n, "K", "M", "B", "T");
    }

    /** n (at least 1000) in the largest of {@code units} (1000, 1000^2, ...) that keeps it at least 1, two decimals. */
    private static String thousands(long n, String... units) {
        double v = n;
        int u = -1;
        while (v >= 1000 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }

    private static String oneLine(String s, int max) {
        String t = s.replaceAll("\\s+", " ");
        return t.length() > max ? t.substring(0, max) + "... (" + s.length() + " chars)" : t;
    }
}
