package dev.impasto.serve.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.api.ImageGenerator;
import dev.impasto.eval.cli.ModelOptions;
import dev.impasto.serve.DemoServer;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** `impasto serve`: the demo web app on one model instance. */
@Command(name = "serve", sortOptions = false, mixinStandardHelpOptions = true,
        description = "Serves the demo web page: prompt, seed, steps, guidance, size, LoRA and strength; progress while it generates; "
                + "a gallery of this session's pictures with downloads. One model instance behind a bounded queue (429 when "
                + "full). With no arguments: the toy model on the CPU at http://127.0.0.1:7860/, offering the LoRAs found in "
                + "runs/*/.",
        footer = {"", "Examples:",
                "  impasto serve",
                "  impasto serve --run runs/toy-lora --port 8080 --queue 8",
                "  impasto serve --host 0.0.0.0 --outputs outputs   # reachable from other machines: mind who can reach it"})
public final class ServeCommand implements Callable<Integer> {
    @Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--host", paramLabel = "ADDR", defaultValue = "127.0.0.1", description = "Address to listen on (default: ${DEFAULT-VALUE}, this machine only).")
    String host;

    @Option(names = "--port", paramLabel = "N", defaultValue = "7860", description = "Port (0 = any free port; default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--lora", paramLabel = "[NAME=]FILE", description = "A LoRA to offer (repeatable); the name defaults to the run folder or file name.")
    List<String> loras = new ArrayList<>();

    @Option(names = "--run", paramLabel = "DIR", description = "A training run folder whose lora.safetensors is offered (repeatable).")
    List<Path> runs = new ArrayList<>();

    @Option(names = "--loras-from", paramLabel = "DIR", defaultValue = "runs",
            description = "With neither --lora nor --run: offer every DIR/*/lora.safetensors trained on the same model (default: ${DEFAULT-VALUE}).")
    Path lorasFrom;

    @Option(names = "--queue", paramLabel = "N", defaultValue = "4", description = "Requests that may wait behind the running one; more get HTTP 429 (default: ${DEFAULT-VALUE}).")
    int queue;

    @Option(names = "--max-steps", paramLabel = "N", defaultValue = "50", description = "Largest steps a request may ask for (default: ${DEFAULT-VALUE}).")
    int maxSteps;

    @Option(names = "--max-size", paramLabel = "PX", defaultValue = "1024", description = "Largest side (and width x height at most PX^2; default: ${DEFAULT-VALUE}).")
    int maxSize;

    @Option(names = "--max-prompt", paramLabel = "CHARS", defaultValue = "1000", description = "Longest prompt (default: ${DEFAULT-VALUE}).")
    int maxPrompt;

    @Option(names = "--outputs", paramLabel = "DIR", description = "Also save every picture here (PNG with its settings in text chunks); default: memory only.")
    Path outputs;

    @Option(names = "--keep-images", paramLabel = "N", defaultValue = "64", description = "Pictures held in memory for the page (default: ${DEFAULT-VALUE}).")
    int keepImages;

    @Option(names = "--drain", paramLabel = "SECONDS", defaultValue = "30", description = "On shutdown, how long the running picture may take to finish (default: ${DEFAULT-VALUE}).")
    int drain;

    @Option(names = "--title", paramLabel = "TEXT", defaultValue = "impasto", description = "Page title (default: ${DEFAULT-VALUE}).")
    String title;

    @Mixin ModelOptions modelOptions = new ModelOptions();

    private final CountDownLatch stop = new CountDownLatch(1);
    private volatile DemoServer server;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Map<String, Path> offered;
        DemoServer.Options opts;
        try {
            offered = loraMap();
            opts = new DemoServer.Options(host, port, queue, maxSteps, maxSize, maxPrompt, outputs, keepImages, drain, title);
        } catch (IllegalArgumentException e) {
            spec.commandLine().getErr().println("impasto serve: " + e.getMessage());
            return 2;
        }
        Path toyBase = null;
        for (Path f : offered.values()) {
            Path run = f.toAbsolutePath().getParent();
            if (Files.isRegularFile(run.resolve("run.json"))) {
                JsonNode w = new ObjectMapper().readTree(run.resolve("run.json").toFile()).path("model").path("weights");
                toyBase = !w.asText("").isBlank() ? Path.of(w.asText()).toAbsolutePath().getParent() : run.getParent().resolve("toy-base");
                break;
            }
        }
        if (toyBase == null) toyBase = lorasFrom.resolve("toy-base");
        ImageGenerator generator;
        try {
            generator = modelOptions.open(offered, toyBase, System.err);
        } catch (IllegalArgumentException e) {
            spec.commandLine().getErr().println("impasto serve: " + e.getMessage());
            return 2;
        }
        try (ImageGenerator gen = generator;
             DemoServer s = new DemoServer(gen, opts, System.err)) {
            s.start();
            server = s;
            Thread hook = new Thread(this::shutdown, "impasto-serve-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            out.println("[impasto] serving " + gen.info().model() + (offered.isEmpty() ? "" : " with LoRAs " + offered.keySet()) + " at " + s.uri()
                    + (s.uri().getHost().equals("127.0.0.1") ? "" : " (listening on " + host + ")"));
            out.println("[impasto] queue " + queue + ", steps <= " + maxSteps + ", size <= " + maxSize + "; Ctrl-C stops (the running picture may finish first)");
            out.flush();
            stop.await();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // already shutting down
            }
        }
        return 0;
    }

    /** The URL once started, for embedding and tests; null before. */
    public java.net.URI uri() {
        DemoServer s = server;
        return s == null ? null : s.uri();
    }

    /** Stops the server (as Ctrl-C does): refuses new requests, lets the running one finish, returns from call(). */
    public void shutdown() {
        DemoServer s = server;
        if (s != null) s.close();
        stop.countDown();
    }

    private Map<String, Path> loraMap() throws IOException {
        Map<String, Path> m = new LinkedHashMap<>();
        for (Path r : runs) {
            Path f = r.resolve("lora.safetensors");
            if (!Files.isRegularFile(f)) throw new IllegalArgumentException("--run " + r + ": no lora.safetensors (has the run finished?)");
            put(m, r.toAbsolutePath().normalize().getFileName().toString(), f);
        }
        for (String spec0 : loras) {
            int eq = spec0.indexOf('=');
            Path f = Path.of(eq > 0 ? spec0.substring(eq + 1) : spec0);
            if (!Files.isRegularFile(f)) throw new IllegalArgumentException("--lora " + spec0 + ": no such file");
            String n = eq > 0 ? spec0.substring(0, eq) : f.getFileName().toString().replaceFirst("\\.safetensors$", "");
            if ((n.equals("lora") || n.equals("lora_kohya")) && eq <= 0) n = f.toAbsolutePath().getParent().getFileName().toString();
            put(m, n, f);
        }
        if (m.isEmpty() && runs.isEmpty() && loras.isEmpty() && modelOptions.toy() && Files.isDirectory(lorasFrom)) {
            try (Stream<Path> s = Files.list(lorasFrom)) {
                for (Path d : s.sorted().toList()) {
                    Path f = d.resolve("lora.safetensors"), rj = d.resolve("run.json");
                    if (!Files.isRegularFile(f) || !Files.isRegularFile(rj)) continue;
                    JsonNode cfg = new ObjectMapper().readTree(rj.toFile());
                    if ("flux-toy".equals(cfg.path("model").path("preset").asText()) && cfg.path("model").path("weights").asText("").isBlank())
                        put(m, d.getFileName().toString(), f);
                }
            }
        }
        return m;
    }

    private static void put(Map<String, Path> m, String name, Path f) {
        String n = name;
        for (int i = 2; m.containsKey(n); i++) n = name + "-" + i;
        m.put(n, f);
    }
}
