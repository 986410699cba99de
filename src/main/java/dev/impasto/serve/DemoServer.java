package dev.impasto.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.impasto.api.ImageGenerator;
import dev.impasto.image.Png;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The demo web app (what a Hugging Face Space would run): a page to generate with one model instance, a bounded
 * request queue in front of it (429 when full), validated requests, progress as server-sent events (and a polling
 * route), and the pictures by id. Every route is matched exactly: the only file-like routes take a generated
 * 16-hex-digit id or a fixed asset name, so no request path ever reaches the file system. Binds 127.0.0.1 by default
 * and, when bound to loopback, answers only requests addressed to a loopback name (no DNS rebinding).
 */
public final class DemoServer implements AutoCloseable {
    /**
     * host/port: where to listen (port 0 = any free port); queueCapacity: requests that may wait behind the running
     * one; maxSteps/maxSide/maxPromptChars: request limits; outputs: folder every picture is also saved to (null =
     * memory only); keepImages: pictures held in memory; drainSeconds: how long shutdown waits for the running request.
     */
    public record Options(String host, int port, int queueCapacity, int maxSteps, int maxSide, int maxPromptChars, Path outputs,
                          int keepImages, int drainSeconds, String title) {
        public Options {
            if (queueCapacity < 1) throw new IllegalArgumentException("queue capacity must be >= 1, got " + queueCapacity);
            if (maxSteps < 1 || maxSteps > 200) throw new IllegalArgumentException("max steps must be in 1..200, got " + maxSteps);
            if (maxSide < 16 || maxSide > 2048 || maxSide % 16 != 0) throw new IllegalArgumentException("max size must be a multiple of 16 in 16..2048, got " + maxSide);
            if (maxPromptChars < 1) throw new IllegalArgumentException("max prompt length must be >= 1");
            if (keepImages < 1) throw new IllegalArgumentException("keepImages must be >= 1");
        }

        public static Options defaults() {
            return new Options("127.0.0.1", 7860, 4, 50, 1024, 1000, null, 64, 30, "impasto");
        }

        public Options withPort(int p) {
            return new Options(host, p, queueCapacity, maxSteps, maxSide, maxPromptChars, outputs, keepImages, drainSeconds, title);
        }

        public Options withQueueCapacity(int q) {
            return new Options(host, port, q, maxSteps, maxSide, maxPromptChars, outputs, keepImages, drainSeconds, title);
        }

        public Options withOutputs(Path o) {
            return new Options(host, port, queueCapacity, maxSteps, maxSide, maxPromptChars, o, keepImages, drainSeconds, title);
        }
    }

    static final int MAX_BODY = 16 * 1024, MAX_JOBS = 512;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern JOB = Pattern.compile("/api/jobs/([0-9a-f]{16})(/events)?");
    private static final Pattern IMAGE = Pattern.compile("/images/([0-9a-f]{16})\\.png");
    private static final Map<String, String[]> ASSETS = Map.of(
            "/", new String[] {"index.html", "text/html; charset=utf-8"},
            "/static/app.js", new String[] {"app.js", "text/javascript; charset=utf-8"},
            "/static/style.css", new String[] {"style.css", "text/css; charset=utf-8"});

    private final ImageGenerator generator;
    private final Options options;
    private final PrintStream log;
    private final RequestValidator validator;
    private final LinkedBlockingQueue<Job> queue;
    private final Map<String, Job> jobs = new ConcurrentHashMap<>();
    private final ArrayDeque<Job> finishedOrder = new ArrayDeque<>();
    private final SecureRandom random = new SecureRandom();
    private final ExecutorService handlers = Executors.newVirtualThreadPerTaskExecutor();
    private final Map<String, byte[]> assets = new ConcurrentHashMap<>();
    private HttpServer server;
    private Thread worker;
    private volatile Job running;
    private volatile boolean accepting = true, stopping, cancelRunning;
    private boolean loopback;

    /** The server does not own the generator: close the generator after {@link #close()}. */
    public DemoServer(ImageGenerator generator, Options options, PrintStream log) {
        this.generator = generator;
        this.options = options;
        this.log = log;
        this.validator = new RequestValidator(options, generator.info(), generator.loras());
        this.queue = new LinkedBlockingQueue<>(options.queueCapacity());
    }

    public DemoServer start() throws IOException {
        for (var e : ASSETS.entrySet()) {
            try (InputStream in = DemoServer.class.getResourceAsStream("static/" + e.getValue()[0])) {
                if (in == null) throw new IOException("missing resource dev/impasto/serve/static/" + e.getValue()[0]);
                assets.put(e.getKey(), in.readAllBytes());
            }
        }
        if (options.outputs() != null) Files.createDirectories(options.outputs());
        InetAddress addr = InetAddress.getByName(options.host());
        loopback = addr.isLoopbackAddress();
        server = HttpServer.create(new InetSocketAddress(addr, options.port()), 64);
        server.setExecutor(handlers);
        server.createContext("/", this::handle);
        worker = Thread.ofPlatform().name("impasto-serve-worker").daemon(true).start(this::work);
        server.start();
        return this;
    }

    public int port() {
        if (server == null) throw new IllegalStateException("the server is not running (start() it first)");
        return server.getAddress().getPort();
    }

    public URI uri() {
        int port = port();
        String h = server.getAddress().getAddress().isAnyLocalAddress() ? "127.0.0.1" : server.getAddress().getAddress().getHostAddress();
        if (h.contains(":")) h = "[" + h + "]";
        return URI.create("http://" + h + ":" + port + "/");
    }

    // ------------------------------------------------------------------------------------------------ worker

    private void work() {
        while (!stopping) {
            Job job;
            try {
                job = queue.poll(200, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                return;
            }
            if (job == null) continue;
            running = job;
            job.running();
            try {
                ImageGenerator.Result r = generator.generate(job.request, step -> {
                    if (cancelRunning) throw new CancelledException();
                    job.step(step);
                });
                ByteArrayOutputStream png = new ByteArrayOutputStream();
                Png.write(r.image(), png, r.settings());
                Path file = null;
                if (options.outputs() != null) {
                    file = options.outputs().resolve(LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss", Locale.ROOT))
                            + "-s" + job.request.seed() + "-" + job.id + ".png");
                    Files.write(file, png.toByteArray());
                }
                job.done(png.toByteArray(), file, r.settings(), r.millis());
                log.printf(Locale.ROOT, "[impasto] serve: %s \"%s\" seed %d, %d steps, %dx%d%s in %d ms%n", job.id, shorten(job.request.prompt()),
                        job.request.seed(), job.request.steps(), job.request.width(), job.request.height(),
                        job.request.lora() == null ? "" : ", " + job.request.lora() + " x" + job.request.loraScale(), r.millis());
            } catch (CancelledException e) {
                job.failed("the server is shutting down");
            } catch (IllegalArgumentException e) {
                job.failed(e.getMessage());
            } catch (IOException | RuntimeException e) {
                job.failed("generation failed: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
                log.println("[impasto] serve: " + job.id + " failed: " + e);
            } finally {
                running = null;
                retire(job);
            }
        }
    }

    private static final class CancelledException extends RuntimeException {
        CancelledException() {
            super("cancelled", null, false, false);
        }
    }

    /** Bounds memory: at most keepImages pictures held, MAX_JOBS jobs remembered. */
    private synchronized void retire(Job job) {
        finishedOrder.addLast(job);
        int withPng = 0;
        for (var it = finishedOrder.descendingIterator(); it.hasNext(); ) {
            Job j = it.next();
            if (j.png() != null && ++withPng > options.keepImages()) j.evictPng();
        }
        while (finishedOrder.size() > MAX_JOBS) jobs.remove(finishedOrder.removeFirst().id);
    }

    // ------------------------------------------------------------------------------------------------ routes

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getRawPath();
            String method = ex.getRequestMethod();
            ex.getResponseHeaders().set("X-Content-Type-Options", "nosniff");
            ex.getResponseHeaders().set("Referrer-Policy", "no-referrer");
            if (loopback && !loopbackHost(ex.getRequestHeaders().getFirst("Host"))) {
                error(ex, 403, "this server answers only requests to localhost / 127.0.0.1 (it is bound to loopback)");
                return;
            }
            String[] asset = ASSETS.get(path);
            if (asset != null) {
                if (!allow(ex, "GET", "HEAD")) return;
                ex.getResponseHeaders().set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'");
                ex.getResponseHeaders().set("Cache-Control", "no-cache");
                send(ex, 200, asset[1], assets.get(path));
                return;
            }
            switch (path) {
                case "/api/info" -> {
                    if (allow(ex, "GET", "HEAD")) sendJson(ex, 200, info());
                    return;
                }
                case "/api/generate" -> {
                    if (allow(ex, "POST")) generate(ex);
                    return;
                }
                case "/api/queue" -> {
                    if (allow(ex, "GET", "HEAD")) sendJson(ex, 200, queueState());
                    return;
                }
                case "/healthz" -> {
                    if (allow(ex, "GET", "HEAD")) sendJson(ex, accepting ? 200 : 503, JSON.createObjectNode().put("ok", accepting));
                    return;
                }
                default -> { }
            }
            Matcher m = JOB.matcher(path);
            if (m.matches()) {
                if (!allow(ex, "GET", "HEAD")) return;
                Job job = jobs.get(m.group(1));
                if (job == null) error(ex, 404, "no such job (jobs are forgotten after " + MAX_JOBS + " newer ones or a restart)");
                else if (m.group(2) != null) events(ex, job);
                else sendJson(ex, 200, jobJson(job));
                return;
            }
            m = IMAGE.matcher(path);
            if (m.matches()) {
                if (allow(ex, "GET", "HEAD")) image(ex, m.group(1));
                return;
            }
            error(ex, 404, "not found: " + path);
        } catch (IOException e) {
            // the client went away
        } catch (RuntimeException e) {
            log.println("[impasto] serve: " + e);
            try {
                error(ex, 500, "internal error: " + e.getMessage());
            } catch (IOException | RuntimeException ignored) {
                // the response was already started
            }
        }
    }

    static boolean loopbackHost(String host) {
        if (host == null) return false;
        String h = host.toLowerCase(Locale.ROOT);
        if (h.startsWith("[")) h = h.substring(0, h.indexOf(']') + 1);
        else if (h.contains(":")) h = h.substring(0, h.indexOf(':'));
        return h.equals("localhost") || h.equals("127.0.0.1") || h.equals("[::1]") || h.endsWith(".localhost");
    }

    private ObjectNode info() {
        ImageGenerator.Info i = generator.info();
        ObjectNode o = JSON.createObjectNode();
        o.put("title", options.title()).put("model", i.model()).put("backend", i.backend());
        ArrayNode l = o.putArray("loras");
        generator.loras().forEach(l::add);
        ArrayNode ex = o.putArray("examplePrompts");
        i.examplePrompts().forEach(ex::add);
        o.putObject("defaults").put("steps", i.defaultSteps()).put("guidance", i.defaultGuidance()).put("width", i.defaultSize()).put("height", i.defaultSize())
                .put("strength", 1.0);
        o.putObject("limits").put("maxSteps", options.maxSteps()).put("maxSide", options.maxSide()).put("sizeMultiple", 16)
                .put("maxPromptChars", options.maxPromptChars()).put("maxGuidance", RequestValidator.MAX_GUIDANCE)
                .put("minStrength", RequestValidator.MIN_STRENGTH).put("maxStrength", RequestValidator.MAX_STRENGTH)
                .put("maxSeed", RequestValidator.MAX_SEED).put("queueCapacity", options.queueCapacity());
        return o;
    }

    private ObjectNode queueState() {
        Job r = running;
        return JSON.createObjectNode().put("running", r != null).put("waiting", queue.size()).put("capacity", options.queueCapacity()).put("accepting", accepting);
    }

    private void generate(HttpExchange ex) throws IOException {
        if (!accepting) {
            error(ex, 503, "the server is shutting down");
            return;
        }
        String ct = ex.getRequestHeaders().getFirst("Content-Type");
        if (ct == null || !ct.toLowerCase(Locale.ROOT).startsWith("application/json")) {
            error(ex, 415, "send the request as JSON (Content-Type: application/json)");
            return;
        }
        String origin = ex.getRequestHeaders().getFirst("Origin");
        if (origin != null && !origin.equals("null") && !sameHost(origin, ex.getRequestHeaders().getFirst("Host"))) {
            error(ex, 403, "cross-origin requests are not accepted (Origin " + origin + ")");
            return;
        }
        byte[] body = ex.getRequestBody().readNBytes(MAX_BODY + 1);
        if (body.length > MAX_BODY) {
            error(ex, 413, "the request body is over " + MAX_BODY + " bytes");
            return;
        }
        JsonNode json;
        try {
            json = JSON.readTree(body);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            error(ex, 400, "the body is not valid JSON: " + e.getOriginalMessage());
            return;
        }
        ImageGenerator.Request req;
        try {
            req = validator.parse(json);
        } catch (RequestValidator.Invalid e) {
            ObjectNode o = JSON.createObjectNode().put("error", e.getMessage()).put("field", e.errors.getFirst().field());
            ArrayNode all = o.putArray("errors");
            for (RequestValidator.FieldError fe : e.errors) all.addObject().put("field", fe.field()).put("message", fe.message());
            sendJson(ex, 400, o);
            return;
        } catch (IllegalArgumentException e) {
            error(ex, 400, e.getMessage());
            return;
        }
        Job job = new Job(HexFormat.of().toHexDigits(random.nextLong()), req);
        jobs.put(job.id, job);
        if (!queue.offer(job)) {
            jobs.remove(job.id);
            ex.getResponseHeaders().set("Retry-After", "5");
            error(ex, 429, "the queue is full (" + options.queueCapacity() + " requests are waiting behind the one being generated): try again in a few seconds");
            return;
        }
        ObjectNode o = jobJson(job);
        sendJson(ex, 202, o);
    }

    private static boolean sameHost(String origin, String host) {
        try {
            URI u = URI.create(origin);
            String auth = u.getRawAuthority();
            return auth != null && host != null && auth.equalsIgnoreCase(host);
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private int position(Job job) {
        int i = 1;
        for (Job j : queue) {
            if (j == job) return i;
            i++;
        }
        return 0;
    }

    private ObjectNode jobJson(Job job) {
        ObjectNode o = JSON.createObjectNode();
        Job.State st = job.state();
        o.put("id", job.id).put("state", st.name().toLowerCase(Locale.ROOT)).put("step", job.step()).put("steps", job.request.steps());
        o.put("position", st == Job.State.QUEUED ? position(job) : 0);
        o.put("status", "/api/jobs/" + job.id).put("events", "/api/jobs/" + job.id + "/events");
        ObjectNode rq = o.putObject("request");
        ImageGenerator.Request r = job.request;
        rq.put("prompt", r.prompt()).put("seed", r.seed()).put("steps", r.steps()).put("guidance", r.guidance()).put("width", r.width())
                .put("height", r.height()).put("lora", r.lora()).put("strength", r.loraScale());
        if (st == Job.State.DONE) {
            o.put("image", "/images/" + job.id + ".png").put("download", "/images/" + job.id + ".png?download=1").put("millis", job.millis());
            o.put("fileName", downloadName(job));
        }
        if (st == Job.State.FAILED) o.put("error", job.error());
        return o;
    }

    private static String downloadName(Job job) {
        return "impasto-" + job.request.seed() + "-" + job.id + ".png";
    }

    /** Server-sent events: "progress" on every change, then "done" or "failed"; a comment every 15 s keeps proxies from closing it. */
    private void events(HttpExchange ex, Job job) throws IOException {
        ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        ex.getResponseHeaders().set("Cache-Control", "no-cache");
        ex.sendResponseHeaders(200, 0);
        OutputStream os = ex.getResponseBody();
        long seen = -1;
        try {
            while (true) {
                long v = job.version();
                if (v != seen || job.state() == Job.State.QUEUED) {
                    seen = v;
                    Job.State st = job.state();
                    String event = st == Job.State.DONE ? "done" : st == Job.State.FAILED ? "failed" : "progress";
                    os.write(("event: " + event + "\ndata: " + JSON.writeValueAsString(jobJson(job)) + "\n\n").getBytes(StandardCharsets.UTF_8));
                    os.flush();
                    if (job.finished()) return;
                }
                // while queued, the position changes without the job changing: look again every second
                long next = job.awaitChange(seen, job.state() == Job.State.QUEUED ? 1000 : 15_000);
                if (next == seen && job.state() != Job.State.QUEUED) {
                    os.write(": keep-alive\n\n".getBytes(StandardCharsets.UTF_8));
                    os.flush();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void image(HttpExchange ex, String id) throws IOException {
        Job job = jobs.get(id);
        byte[] png = job == null ? null : job.png();
        if (png == null && job != null && job.file() != null && Files.isRegularFile(job.file())) png = Files.readAllBytes(job.file());
        if (png == null) {
            error(ex, 404, job == null ? "no such picture" : job.state() == Job.State.DONE ? "the picture is no longer held in memory" : "the picture is not ready");
            return;
        }
        String q = ex.getRequestURI().getRawQuery();
        if (q != null && q.matches("(.*&)?download=1(&.*)?"))
            ex.getResponseHeaders().set("Content-Disposition", "attachment; filename=\"" + downloadName(job) + "\"");
        ex.getResponseHeaders().set("Cache-Control", "private, max-age=3600, immutable");
        send(ex, 200, "image/png", png);
    }

    private static boolean allow(HttpExchange ex, String... methods) throws IOException {
        for (String m : methods) if (m.equals(ex.getRequestMethod())) return true;
        ex.getResponseHeaders().set("Allow", String.join(", ", methods));
        error(ex, 405, ex.getRequestMethod() + " is not allowed here (use " + String.join(" or ", methods) + ")");
        return false;
    }

    private static void error(HttpExchange ex, int status, String message) throws IOException {
        sendJson(ex, status, JSON.createObjectNode().put("error", message));
    }

    private static void sendJson(HttpExchange ex, int status, JsonNode body) throws IOException {
        send(ex, status, "application/json; charset=utf-8", JSON.writeValueAsBytes(body));
    }

    private static void send(HttpExchange ex, int status, String type, byte[] body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", type);
        boolean head = "HEAD".equals(ex.getRequestMethod());
        ex.sendResponseHeaders(status, head ? -1 : body.length == 0 ? -1 : body.length);
        if (!head && body.length > 0) ex.getResponseBody().write(body);
    }

    private static String shorten(String s) {
        return s.length() <= 60 ? s : s.substring(0, 59) + "…";
    }

    // ------------------------------------------------------------------------------------------------ shutdown

    /**
     * Graceful shutdown: refuses new requests, fails the waiting ones, lets the running one finish for up to
     * drainSeconds (then cancels it at its next step), and stops the HTTP server. Safe to call twice.
     */
    @Override
    public void close() {
        if (server == null) return;
        accepting = false;
        stopping = true;
        failWaiting();
        try {
            if (options.drainSeconds() > 0) worker.join(TimeUnit.SECONDS.toMillis(options.drainSeconds())); // join(0) would wait forever
            if (worker.isAlive()) {
                cancelRunning = true;
                worker.join(TimeUnit.SECONDS.toMillis(30));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        failWaiting();
        server.stop(1);
        handlers.shutdownNow();
        server = null;
    }

    private void failWaiting() {
        List<Job> dropped = new ArrayList<>();
        queue.drainTo(dropped);
        for (Job j : dropped) j.failed("the server is shutting down");
    }
}
