package dev.impasto.train;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.model.LoraConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Everything a training run is configured by (run.json). Every field is also a command-line flag named by its
 * path ({@code --lora.rank 32}, {@code --optimizer.lr 2e-4}). The defaults train a LoRA in the toy world on the CPU.
 */
public final class TrainConfig {
    @JsonPropertyDescription("Name of the run; outputs go to <output>/<name>")
    public String name = "toy-lora";
    @JsonPropertyDescription("Folder that receives the run folder")
    public String output = "runs";
    @JsonPropertyDescription("cpu, cuda, cuda:N or auto")
    public String device = "auto";
    @JsonPropertyDescription("GPUs for data-parallel training (NCCL): each takes batchSize items of every step")
    public int gpus = 1;
    public Model model = new Model();
    public Data data = new Data();
    public Lora lora = new Lora();
    public Optimizer optimizer = new Optimizer();
    public Schedule schedule = new Schedule();
    public Training training = new Training();
    public Checkpoint checkpoint = new Checkpoint();
    public Sample sample = new Sample();

    public static final class Model {
        @JsonPropertyDescription("Architecture: flux-dev, flux-schnell, flux-toy, or a JSON config file")
        public String preset = "flux-toy";
        @JsonPropertyDescription("Base weights: a FLUX checkpoint (BFL .safetensors, diffusers folder, bnb-NF4, GGUF); empty = the toy world's pretrained base (toy) or random weights")
        public String weights = "";
        @JsonPropertyDescription("How base weights are held on the device: bf16, nf4, nf4-dq, int8, int4, q8_0, q4_0, q4_k")
        public String baseFormat = "bf16";
    }

    public static final class Data {
        @JsonPropertyDescription("Latent cache folder written by `impasto cache`; empty = the toy world; synthetic:HxW[:N] = random data of that size (timing runs)")
        public String cache = "";
        @JsonPropertyDescription("Toy world only: the style the LoRA learns (A or B)")
        public String toyStyle = "B";
        @JsonPropertyDescription("Toy world only: pictures per class")
        public int toyPerClass = 32;
    }

    public static final class Lora {
        public int rank = 16;
        @JsonPropertyDescription("Scale = alpha / rank")
        public double alpha = 16;
        @JsonPropertyDescription("all | attention | attention-mlp | a regex over module keys")
        public String targets = "all";
        @JsonPropertyDescription("Regex: only modules whose key matches (block-wise selection)")
        public String include = "";
        @JsonPropertyDescription("Regex: modules to leave out")
        public String exclude = "";
        @JsonPropertyDescription("Regex over module keys -> rank (block-wise ranks)")
        public Map<String, Integer> blockRanks = new LinkedHashMap<>();
        public double dropout = 0;
        @JsonPropertyDescription("One adapter per fused projection (kohya style) instead of per q/k/v piece")
        public boolean fused = false;
    }

    public static final class Optimizer {
        public double lr = 1e-4;
        public double beta1 = 0.9;
        public double beta2 = 0.999;
        public double eps = 1e-8;
        public double weightDecay = 1e-2;
        @JsonPropertyDescription("Global gradient-norm clip (0 = off)")
        public double maxGradNorm = 1.0;
    }

    public static final class Schedule {
        @JsonPropertyDescription("constant | linear | cosine")
        public String type = "constant";
        public int warmupSteps = 0;
        @JsonPropertyDescription("Final learning rate as a fraction of lr (linear/cosine)")
        public double minLrRatio = 0;
    }

    public static final class Training {
        public int steps = 300;
        public int batchSize = 4;
        public int gradAccum = 1;
        public long seed = 42;
        @JsonPropertyDescription("uniform | sigmoid | logit_normal | flux_shift")
        public String timestepSampling = "sigmoid";
        public double sigmoidScale = 1.0;
        public double logitMean = 0.0;
        public double logitStd = 1.0;
        @JsonPropertyDescription("Guidance value fed to guidance-distilled models while training")
        public double guidance = 1.0;
        @JsonPropertyDescription("Probability of training an item on the empty prompt")
        public double captionDropout = 0.05;
        @JsonPropertyDescription("EMA decay of the LoRA weights (0 = off, e.g. 0.999)")
        public double ema = 0;
        public boolean gradientCheckpointing = false;
        @JsonPropertyDescription("Stop after this many steps in a row with a non-finite loss or gradient")
        public int maxNonFiniteSteps = 10;
    }

    public static final class Checkpoint {
        @JsonPropertyDescription("Save a resumable checkpoint every N steps (0 = only at the end)")
        public int every = 100;
        @JsonPropertyDescription("Keep the last K checkpoints")
        public int keep = 3;
    }

    public static final class Sample {
        @JsonPropertyDescription("Sample the fixed prompts every N steps (0 = only at the end)")
        public int every = 100;
        @JsonPropertyDescription("Dataset items whose prompts are sampled (cache runs); the toy world samples each class")
        public List<Integer> items = new ArrayList<>(List.of(0, 1, 2, 3));
        public List<Long> seeds = new ArrayList<>(List.of(1L, 2L));
        public int steps = 20;
        @JsonPropertyDescription("Guidance for samples; 0 = auto: 3.5 for guidance-distilled FLUX.1-dev, the training guidance for the toy world")
        public double guidance = 0;
        @JsonPropertyDescription("Cache runs: the autoencoder that decodes the samples into pictures; empty = the one the cache was made with, none = latent previews, or a path (ae.safetensors or vae/)")
        public String vae = "";

        /** The guidance to sample with. */
        public double effectiveGuidance(boolean toy, double trainingGuidance) {
            return guidance > 0 ? guidance : toy ? trainingGuidance : 3.5;
        }
    }

    // ------------------------------------------------------------------------------------------------

    static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(SerializationFeature.INDENT_OUTPUT);

    public static TrainConfig defaults() {
        return new TrainConfig();
    }

    /** Reads a run.json over the defaults; errors name the file, the field and what is wrong. */
    public static TrainConfig load(Path file) throws IOException {
        TrainConfig c = new TrainConfig();
        try {
            JsonNode n = JSON.readTree(file.toFile());
            if (n == null || !n.isObject()) throw new IllegalArgumentException(file + ": a training config must be a JSON object");
            c.apply((ObjectNode) n, file.toString());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage() + " (line " + e.getLocation().getLineNr() + ")");
        }
        return c;
    }

    /** Merges a partial config (file contents or command-line flags) into this one. */
    public void apply(ObjectNode patch, String source) {
        try {
            JSON.readerForUpdating(this).readValue(patch);
        } catch (UnrecognizedPropertyException e) {
            throw new IllegalArgumentException(source + ": unknown field \"" + path(e) + "\" (known: " + e.getKnownPropertyIds() + ")");
        } catch (InvalidFormatException e) {
            throw new IllegalArgumentException(source + ": field \"" + path(e) + "\": cannot use " + e.getValue() + " as " + e.getTargetType().getSimpleName());
        } catch (IOException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage());
        }
    }

    private static String path(com.fasterxml.jackson.databind.JsonMappingException e) {
        StringBuilder sb = new StringBuilder();
        for (var r : e.getPath()) {
            if (r.getFieldName() != null) sb.append(sb.isEmpty() ? "" : ".").append(r.getFieldName());
            else sb.append('[').append(r.getIndex()).append(']');
        }
        return sb.toString();
    }

    /** Every problem, each naming its field; empty when the config is usable. */
    public List<String> problems() {
        List<String> p = new ArrayList<>();
        if (name == null || name.isBlank() || name.contains("/") || name.contains("..")) p.add("name: must be a plain folder name, got \"" + name + "\"");
        if (!List.of("bf16", "f16", "f32", "nf4", "nf4-dq", "int8", "int4", "q8_0", "q4_0", "q4_k").contains(model.baseFormat))
            p.add("model.baseFormat: unknown \"" + model.baseFormat + "\" (bf16, nf4, nf4-dq, int8, int4, q8_0, q4_0, q4_k)");
        if (!List.of("A", "B").contains(data.toyStyle)) p.add("data.toyStyle: A or B, got " + data.toyStyle);
        if (data.toyPerClass < 1) p.add("data.toyPerClass: must be >= 1");
        if (gpus < 1) p.add("gpus: must be >= 1");
        try {
            loraConfig();
        } catch (IllegalArgumentException e) {
            p.add("lora: " + e.getMessage());
        }
        if (!(optimizer.lr > 0) || optimizer.lr > 1) p.add("optimizer.lr: must be in (0, 1], got " + optimizer.lr);
        // every range check below is written so that NaN fails it too (x < lo is false for NaN)
        if (!(optimizer.beta1 >= 0 && optimizer.beta1 < 1)) p.add("optimizer.beta1: must be in [0, 1)");
        if (!(optimizer.beta2 >= 0 && optimizer.beta2 < 1)) p.add("optimizer.beta2: must be in [0, 1)");
        if (!(optimizer.eps > 0)) p.add("optimizer.eps: must be positive");
        if (!(optimizer.weightDecay >= 0 && Double.isFinite(optimizer.weightDecay))) p.add("optimizer.weightDecay: must be >= 0");
        if (!(optimizer.maxGradNorm >= 0 && Double.isFinite(optimizer.maxGradNorm))) p.add("optimizer.maxGradNorm: must be >= 0 (0 = no clipping)");
        if (!List.of("constant", "linear", "cosine").contains(schedule.type)) p.add("schedule.type: constant, linear or cosine, got " + schedule.type);
        if (schedule.warmupSteps < 0) p.add("schedule.warmupSteps: must be >= 0");
        if (!(schedule.minLrRatio >= 0 && schedule.minLrRatio <= 1)) p.add("schedule.minLrRatio: must be in [0, 1]");
        if (training.steps < 1) p.add("training.steps: must be >= 1");
        if (training.batchSize < 1) p.add("training.batchSize: must be >= 1");
        if (training.gradAccum < 1) p.add("training.gradAccum: must be >= 1");
        try {
            TimestepSampler.Kind.parse(training.timestepSampling);
        } catch (IllegalArgumentException e) {
            p.add("training.timestepSampling: " + e.getMessage());
        }
        if (!(training.captionDropout >= 0 && training.captionDropout <= 1)) p.add("training.captionDropout: must be in [0, 1]");
        if (!(training.ema >= 0 && training.ema < 1)) p.add("training.ema: 0 (off) or a decay in (0, 1)");
        if (training.maxNonFiniteSteps < 1) p.add("training.maxNonFiniteSteps: must be >= 1");
        if (checkpoint.every < 0) p.add("checkpoint.every: must be >= 0");
        if (checkpoint.keep < 1) p.add("checkpoint.keep: must be >= 1");
        if (sample.every < 0) p.add("sample.every: must be >= 0");
        if (sample.steps < 1 || sample.steps > 1000) p.add("sample.steps: must be in 1..1000");
        if (sample.seeds.isEmpty()) p.add("sample.seeds: give at least one seed");
        return p;
    }

    public void validate() {
        List<String> p = problems();
        if (!p.isEmpty()) throw new IllegalArgumentException("invalid training config:\n  " + String.join("\n  ", p));
    }

    public LoraConfig loraConfig() {
        return new LoraConfig(lora.rank, lora.alpha, lora.targets, blankToNull(lora.include), blankToNull(lora.exclude),
                lora.blockRanks, lora.dropout, lora.fused);
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s;
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public ObjectNode toTree() {
        return JSON.valueToTree(this);
    }

    public Path runDir() {
        return Path.of(output, name);
    }

    public void write(Path file) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        Files.writeString(file, toJson());
    }
}
