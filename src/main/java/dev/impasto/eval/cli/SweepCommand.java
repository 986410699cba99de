package dev.impasto.eval.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.cli.TrainCommand;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * `impasto sweep`: trains a small grid of configs one after another (the same data, base and cache for all, each an
 * ordinary `impasto train` run folder) and ends with `impasto eval --runs` over them. Rerunning a sweep skips the
 * runs that are finished with the same config and resumes the unfinished ones from their checkpoints.
 */
@Command(name = "sweep", sortOptions = false, mixinStandardHelpOptions = true,
        description = "Trains every combination of the --grid values (e.g. rank x learning rate) one after another, then compares the "
                + "LoRAs side by side with `impasto eval --runs` on the same prompts and seeds. With no arguments: the toy world, "
                + "rank 4 and 16 (alpha = rank) x learning rate 1e-4 and 4e-4. Any `impasto train` field can be swept or fixed (--set).",
        footer = {"", "Examples:",
                "  impasto sweep --grid lora.rank+lora.alpha=8,16,32 --set training.steps=200",
                "  impasto sweep --name impr --cache cache/impressionism --weights flux1-dev.safetensors --device cuda \\",
                "      --grid lora.rank+lora.alpha=16,32 --grid optimizer.lr=1e-4,2e-4 --eval.train-images curated --eval.trigger mnt_impr \\",
                "      --eval.encoders FLUX.1-dev"})
public final class SweepCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    /** rank with alpha = rank (so the LoRA's scale stays 1 and the learning rate means the same at every rank) x learning rate. */
    static final List<String> DEFAULT_GRID = List.of("lora.rank+lora.alpha=4,16", "optimizer.lr=1e-4,4e-4");

    @Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--name", paramLabel = "NAME", defaultValue = "sweep", description = "Sweep name: runs are <output>/<name>-<values>, the comparison <output>/<name>-comparison (default: ${DEFAULT-VALUE}).")
    String name;

    @Option(names = "--output", paramLabel = "DIR", defaultValue = "runs", description = "Folder that receives the run folders (default: ${DEFAULT-VALUE}).")
    Path output;

    @Option(names = "--config", paramLabel = "run.json", description = "Base training config; --set and --grid override its fields.")
    Path config;

    @Option(names = "--grid", paramLabel = "FIELD=V1,V2,..", description = "A config field and the values to try (repeatable; the grid is their product). FIELD+FIELD sets several fields to the same value "
                    + "(lora.rank+lora.alpha=8,16,32 keeps alpha = rank). Default: lora.rank+lora.alpha=4,16 and optimizer.lr=1e-4,4e-4.")
    List<String> grid = new ArrayList<>();

    @Option(names = "--set", paramLabel = "FIELD=VALUE", description = "A config field fixed for every run (repeatable), e.g. training.steps=200.")
    List<String> fixed = new ArrayList<>();

    @Option(names = "--cache", paramLabel = "DIR", description = "Latent cache shared by every run (= --set data.cache=DIR); none = the toy world.")
    String cache;

    @Option(names = "--weights", paramLabel = "FILE", description = "Base model weights for every run (= --set model.weights=FILE).")
    String weights;

    @Option(names = "--device", paramLabel = "DEV", description = "cpu, cuda, cuda:N or auto (= --set device=DEV).")
    String device;

    @Option(names = "--eval.prompt", paramLabel = "TEXT", description = "Comparison prompt (repeatable; default: the model's example prompts).")
    List<String> evalPrompts = new ArrayList<>();

    @Option(names = "--eval.transfer-prompt", paramLabel = "TEXT", description = "Style-transfer prompt for the comparison (repeatable).")
    List<String> evalTransfer = new ArrayList<>();

    @Option(names = "--eval.seeds", paramLabel = "LIST", defaultValue = "1-6", description = "Comparison seeds (default: ${DEFAULT-VALUE}).")
    String evalSeeds;

    @Option(names = "--eval.steps", paramLabel = "N", description = "Comparison sampling steps (default: the model's).")
    Integer evalSteps;

    @Option(names = "--eval.size", paramLabel = "WxH", description = "Comparison picture size (default: the model's).")
    String evalSize;

    @Option(names = "--eval.scales", paramLabel = "LIST", description = "LoRA strengths for the comparison (default: 1).")
    String evalScales;

    @Option(names = "--eval.train-images", paramLabel = "DIR", description = "Training pictures for the comparison (needed with a cache: the dataset folder it was built from).")
    String evalTrainImages;

    @Option(names = "--eval.trigger", paramLabel = "WORD", description = "Trigger word for [trigger] in the comparison prompts.")
    String evalTrigger;

    @Option(names = "--eval.clip", paramLabel = "DIR|FILE", description = "CLIP model for the comparison's CLIP score (as eval's --clip).")
    String evalClip;

    @Option(names = "--eval.clip-tokenizer", paramLabel = "PATH", description = "Its tokenizer when not beside it (as eval's --clip-tokenizer).")
    String evalClipTokenizer;

    @Option(names = "--eval.features", paramLabel = "palette|clip|none", description = "KID features for the comparison (as eval's --features; default: palette).")
    String evalFeatures;

    @Option(names = "--eval.encoders", paramLabel = "DIR",
            description = "FLUX's text encoders and autoencoder for the comparison (as eval's --encoders): needed when the runs train a real FLUX model.")
    String evalEncoders;

    @Option(names = "--no-eval", description = "Train only; skip the comparison.")
    boolean noEval;

    @Option(names = "--dry-run", description = "Print the planned runs and their train arguments; train nothing.")
    boolean dryRun;

    /** One planned run: its name, the grid values it takes and the `impasto train` arguments. */
    record Planned(String name, Map<String, String> values, List<String> args) {}

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        List<Planned> plan;
        List<JsonNode> configs = new ArrayList<>();
        try {
            plan = plan();
            for (Planned p : plan) configs.add(effectiveConfig(p.args));
        } catch (IllegalArgumentException e) {
            err.println("impasto sweep: " + e.getMessage());
            return 2;
        }
        String evalProblem = noEval ? null : evalProblem(configs.getFirst());
        if (evalProblem != null) { // found now, not after hours of training
            err.println("impasto sweep: " + evalProblem);
            return 2;
        }
        out.printf(Locale.ROOT, "[impasto] sweep %s: %d runs%n", name, plan.size());
        for (Planned p : plan) out.println("  " + p.name + "  " + p.values);
        if (dryRun) {
            for (Planned p : plan) out.println("  impasto train " + String.join(" ", p.args));
            if (!noEval) {
                List<String> planned = new ArrayList<>();
                for (Planned p : plan) planned.add(output.resolve(p.name).toString());
                out.println("  impasto eval " + String.join(" ", evalArgs(planned, output.resolve(name + "-comparison"), configs.getFirst()).stream()
                        .map(SweepCommand::shellQuoted).toList()));
            }
            out.flush();
            return 0;
        }
        out.flush();
        ObjectNode report = JSON.createObjectNode();
        report.put("name", name);
        ArrayNode gridNode = report.putArray("grid");
        grid().forEach((k, v) -> gridNode.addObject().put("field", k).set("values", JSON.valueToTree(v)));
        report.set("fixed", JSON.valueToTree(fixed));
        ArrayNode runs = report.putArray("runs");
        List<String> finished = new ArrayList<>();
        int failed = 0;
        for (int i = 0; i < plan.size(); i++) {
            Planned p = plan.get(i);
            ObjectNode rn = runs.addObject().put("name", p.name);
            rn.set("values", JSON.valueToTree(p.values));
            Path runDir = output.resolve(p.name);
            out.printf(Locale.ROOT, "[impasto] sweep %d/%d: %s%n", i + 1, plan.size(), p.name);
            out.flush();
            long t0 = System.nanoTime();
            String status;
            try {
                status = trainOne(p, configs.get(i), runDir, out);
            } catch (IllegalArgumentException e) {
                status = "failed: " + e.getMessage();
            }
            rn.put("status", status).put("seconds", Math.round((System.nanoTime() - t0) / 1e7) / 100.0).put("run", runDir.toString());
            if (status.startsWith("failed")) {
                failed++;
                err.println("impasto sweep: " + p.name + " " + status);
            } else finished.add(runDir.toString());
        }
        Path cmp = output.resolve(name + "-comparison");
        Files.createDirectories(cmp);
        int evalRc = 0;
        if (!noEval && !finished.isEmpty()) {
            List<String> ev = evalArgs(finished, cmp, configs.getFirst());
            report.set("eval", JSON.valueToTree(ev));
            out.println("[impasto] sweep: comparing " + finished.size() + " runs: impasto eval " + String.join(" ", ev));
            out.flush();
            CommandLine eval = new CommandLine(new EvalCommand());
            eval.setOut(out);
            eval.setErr(err);
            evalRc = eval.execute(ev.toArray(String[]::new));
        }
        Files.writeString(cmp.resolve("sweep.json"), JSON.writeValueAsString(report));
        out.println("[impasto] sweep " + name + ": " + finished.size() + " of " + plan.size() + " runs trained" + (failed > 0 ? ", " + failed + " failed" : "")
                + "; " + cmp.resolve("sweep.json"));
        out.flush();
        return failed > 0 || evalRc != 0 ? 1 : 0;
    }

    /** The grid axes in order: field -> values. */
    Map<String, List<String>> grid() {
        Map<String, List<String>> g = new LinkedHashMap<>();
        for (String spec0 : grid.isEmpty() ? DEFAULT_GRID : grid) {
            int eq = spec0.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--grid " + spec0 + ": expected FIELD=V1,V2,.. (e.g. lora.rank=8,16,32)");
            String field = spec0.substring(0, eq).strip().replaceFirst("^--", "");
            List<String> vals = new ArrayList<>();
            for (String v : spec0.substring(eq + 1).split(",")) if (!v.isBlank()) vals.add(v.strip());
            if (vals.isEmpty()) throw new IllegalArgumentException("--grid " + spec0 + ": no values");
            if (g.put(field, vals) != null) throw new IllegalArgumentException("--grid: " + field + " is given twice");
        }
        return g;
    }

    List<Planned> plan() {
        Map<String, List<String>> g = grid();
        List<String> common = new ArrayList<>();
        if (config != null) common.addAll(List.of("--config", config.toString()));
        for (String f : fixed) {
            int eq = f.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--set " + f + ": expected FIELD=VALUE (e.g. training.steps=200)");
            String field = f.substring(0, eq).strip().replaceFirst("^--", "");
            for (String axis : g.keySet())
                if (List.of(axis.split("\\+")).contains(field)) throw new IllegalArgumentException("--set " + field + " is also a --grid axis");
            if (field.equals("name") || field.equals("output")) throw new IllegalArgumentException("--set " + field + ": use --name/--output of the sweep");
            common.addAll(List.of("--" + field, f.substring(eq + 1).strip()));
        }
        if (cache != null) common.addAll(List.of("--data.cache", cache));
        if (weights != null) common.addAll(List.of("--model.weights", weights));
        if (device != null) common.addAll(List.of("--device", device));
        if (!name.matches("[A-Za-z0-9._-]+")) throw new IllegalArgumentException("--name " + name + ": use letters, digits, '.', '_' and '-'");
        List<Planned> plan = new ArrayList<>();
        List<Map<String, String>> combos = new ArrayList<>();
        combos.add(new LinkedHashMap<>());
        for (var axis : g.entrySet()) {
            List<Map<String, String>> next = new ArrayList<>();
            for (Map<String, String> c : combos)
                for (String v : axis.getValue()) {
                    Map<String, String> m = new LinkedHashMap<>(c);
                    m.put(axis.getKey(), v);
                    next.add(m);
                }
            combos = next;
        }
        if (combos.size() > 64) throw new IllegalArgumentException("the grid has " + combos.size() + " combinations; a sweep runs at most 64");
        for (Map<String, String> c : combos) {
            StringBuilder n = new StringBuilder(name);
            List<String> args = new ArrayList<>(common);
            c.forEach((axis, v) -> {
                String first = axis.split("\\+")[0];
                n.append('-').append(first.substring(first.lastIndexOf('.') + 1)).append(v.replaceAll("[^A-Za-z0-9.+-]+", "_"));
                for (String field : axis.split("\\+")) args.addAll(List.of("--" + field.strip(), v));
            });
            args.addAll(List.of("--name", n.toString(), "--output", output.toString()));
            plan.add(new Planned(n.toString(), c, args));
        }
        return plan;
    }

    /** Trains one run unless it is already finished with the same config; returns "trained", "resumed" or "skipped". */
    private String trainOne(Planned p, JsonNode wanted, Path runDir, PrintWriter out) throws IOException {
        List<String> args = new ArrayList<>(p.args);
        String status = "trained";
        Path runJson = runDir.resolve("run.json");
        if (Files.isRegularFile(runJson)) {
            JsonNode have = JSON.readTree(runJson.toFile());
            List<String> diff = new ArrayList<>();
            diff(have, wanted, "", diff);
            if (!diff.isEmpty())
                throw new IllegalArgumentException(runDir + " exists with a different config (" + String.join(", ", diff)
                        + "): remove it or give the sweep another --name");
            if (Files.isRegularFile(runDir.resolve("lora.safetensors"))) {
                out.println("  already trained with this config: " + runDir);
                return "skipped";
            }
            args.add("--resume");
            status = "resumed";
        }
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        CommandLine train = TrainCommand.commandLine(new PrintStream(buf, true, StandardCharsets.UTF_8));
        train.setCaseInsensitiveEnumValuesAllowed(true);
        List<String> failure = new ArrayList<>();
        train.setExecutionExceptionHandler((ex, line, parse) -> {
            failure.add(ex.getMessage() == null ? ex.toString() : ex.getMessage());
            return 1;
        });
        int rc = train.execute(args.toArray(String[]::new));
        String text = buf.toString(StandardCharsets.UTF_8);
        out.print(text.lines().map(l -> "  " + l).reduce("", (a, b) -> a + b + "\n"));
        out.flush();
        if (rc != 0) return "failed: " + (failure.isEmpty() ? text.strip() : failure.getFirst());
        return status;
    }

    /** The config a run would get, from `impasto train ... --print-config`. */
    private static JsonNode effectiveConfig(List<String> args) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        CommandLine train = TrainCommand.commandLine(new PrintStream(buf, true, StandardCharsets.UTF_8));
        List<String> a = new ArrayList<>(args);
        a.add("--print-config");
        java.io.StringWriter err = new java.io.StringWriter();
        train.setErr(new PrintWriter(err));
        int rc = train.execute(a.toArray(String[]::new));
        String text = buf.toString(StandardCharsets.UTF_8).strip();
        if (rc != 0) throw new IllegalArgumentException("invalid training config: " + (text + " " + err).strip());
        return JSON.readTree(text);
    }

    private static void diff(JsonNode a, JsonNode b, String path, List<String> out) {
        if (a.isObject() && b.isObject()) {
            java.util.Set<String> keys = new java.util.LinkedHashSet<>();
            a.fieldNames().forEachRemaining(keys::add);
            b.fieldNames().forEachRemaining(keys::add);
            for (String k : keys) diff(a.path(k), b.path(k), path.isEmpty() ? k : path + "." + k, out);
        } else if (!a.equals(b)) out.add(path + " " + a + " -> " + b);
    }

    /** What would make the comparison fail after the training, or null. */
    private String evalProblem(JsonNode config0) {
        JsonNode model = config0.path("model");
        boolean realModel = !"flux-toy".equals(model.path("preset").asText());
        if (realModel && evalEncoders == null)
            return "--eval.encoders DIR is needed to compare runs of a real FLUX model (eval's --encoders: the folder with FLUX's "
                    + "text encoders, tokenizers and autoencoder, e.g. a FLUX.1-dev download), or --no-eval to train only";
        if (realModel && model.path("weights").asText("").isBlank())
            return "the comparison needs the runs' base weights: give --weights FILE (or --set model.weights=FILE), or --no-eval";
        if (evalEncoders != null && !java.nio.file.Files.isDirectory(Path.of(evalEncoders)))
            return "--eval.encoders " + evalEncoders + ": no such folder";
        String clipProblem = EvalCommand.clipOptionsProblem("--eval.", evalFeatures, evalClip, evalClipTokenizer);
        if (clipProblem != null) return clipProblem;
        if (evalTrainImages != null && !evalTrainImages.startsWith("toy:") && !java.nio.file.Files.isDirectory(Path.of(evalTrainImages)))
            return "--eval.train-images " + evalTrainImages + ": no such folder";
        return null;
    }

    /** An argument as a POSIX shell reads it back (the dry run prints a command to paste). */
    static String shellQuoted(String a) {
        if (!a.isEmpty() && a.matches("[A-Za-z0-9_./:=,+@%-]+")) return a;
        return "'" + a.replace("'", "'\\''") + "'";
    }

    private List<String> evalArgs(List<String> runs, Path cmp, JsonNode config0) {
        List<String> a = new ArrayList<>(List.of("--runs", String.join(",", runs), "--out", cmp.toString(), "--seeds", evalSeeds, "--title", "impasto sweep: " + name));
        for (String p : evalPrompts) a.addAll(List.of("--prompt", p));
        for (String p : evalTransfer) a.addAll(List.of("--transfer-prompt", p));
        if (evalSteps != null) a.addAll(List.of("--steps", evalSteps.toString()));
        if (evalSize != null) a.addAll(List.of("--size", evalSize));
        if (evalScales != null) a.addAll(List.of("--scales", evalScales));
        if (evalTrainImages != null) a.addAll(List.of("--train-images", evalTrainImages));
        if (evalTrigger != null) a.addAll(List.of("--trigger", evalTrigger));
        if (evalClip != null) a.addAll(List.of("--clip", evalClip));
        if (evalClipTokenizer != null) a.addAll(List.of("--clip-tokenizer", evalClipTokenizer));
        if (evalFeatures != null) a.addAll(List.of("--features", evalFeatures));
        JsonNode model = config0.path("model");
        if (!"flux-toy".equals(model.path("preset").asText())) { // the runs' base model, held as they held it, with its encoders
            a.addAll(List.of("--model", model.path("weights").asText(), "--arch", model.path("preset").asText(),
                    "--base-format", model.path("baseFormat").asText("bf16"), "--device", config0.path("device").asText("auto")));
            if (evalEncoders != null) a.addAll(List.of("--encoders", evalEncoders));
        }
        return a;
    }
}
