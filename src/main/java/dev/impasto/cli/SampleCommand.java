package dev.impasto.cli;

import dev.impasto.Backends;
import dev.impasto.image.LatentImages;
import dev.impasto.image.Png;
import dev.impasto.io.TensorEntry;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.lora.LoadedLora;
import dev.impasto.lora.LoraFileReader;
import dev.impasto.model.CheckpointWeights;
import dev.impasto.model.FluxConfig;
import dev.impasto.model.FluxModel;
import dev.impasto.model.Latents;
import dev.impasto.model.LoraGroup;
import dev.impasto.model.LoraStack;
import dev.impasto.model.RandomWeights;
import dev.impasto.model.WeightProvider;
import dev.impasto.quant.BaseFormat;
import dev.impasto.sample.Sampler;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.train.LatentCache;
import dev.impasto.train.ToyBase;
import dev.impasto.train.ToyWorld;
import dev.impasto.train.TrainingSet;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** `impasto sample`: pictures (or latents) from a FLUX base with any number of LoRAs stacked. */
@Command(name = "sample", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Samples from a FLUX model (Euler on the FLUX schedule) with zero or more LoRAs, each at its own strength.",
                "With no arguments it samples the toy world's base model on the CPU.",
                "Writes PNGs (prompt, seed and settings in the PNG text chunks) and the latents (safetensors)."})
public final class SampleCommand implements Callable<Integer> {
    @Option(names = "--model", defaultValue = "flux-toy", description = "flux-dev, flux-schnell, flux-toy or a JSON config (default: ${DEFAULT-VALUE}).")
    String model;

    @Option(names = {"--base", "--weights"}, description = "Base checkpoint (BFL, diffusers, bnb-NF4, GGUF); the toy world's base when empty.")
    Path base;

    @Option(names = "--base-format", defaultValue = "bf16", description = "bf16, nf4, int8, int4, ... (default: ${DEFAULT-VALUE}).")
    String baseFormat;

    @Option(names = "--lora", paramLabel = "FILE[:STRENGTH]", description = "A LoRA file (diffusers, kohya, ai-toolkit, XLabs); repeat to stack.")
    List<String> loras = new ArrayList<>();

    @Option(names = "--prompt", description = "Prompt text (the toy world knows: disc, square, stripes, ring).")
    String prompt;

    @Option(names = "--encoders", paramLabel = "DIR|tiny-random",
            description = "Text encoders, tokenizers and VAE (a FLUX.1 folder: text_encoder/, tokenizer/, text_encoder_2/, tokenizer_2/, ae.safetensors or vae/): encodes --prompt and decodes the pictures. tiny-random: the miniature encoders with random weights (with --model flux-tiny: every code path on the CPU, noise pictures).")
    Path encodersDir;

    @Option(names = "--prompt-embeds", description = "safetensors with t5 [L, 4096] and clip [768] embeddings (until text encoders are given).")
    Path promptEmbeds;

    @Option(names = "--cache", description = "Take the prompt embeddings of --item from this training cache.")
    Path cache;

    @Option(names = "--item", defaultValue = "0")
    int item;

    @Option(names = "--seed", defaultValue = "1", description = "First seed; sample b of the batch uses seed + b.")
    long seed;

    @Option(names = "--batch", defaultValue = "1")
    int batch;

    @Option(names = "--steps", defaultValue = "0", description = "Euler steps (0 = 28 for dev, 4 for schnell, 20 for the toy).")
    int steps;

    @Option(names = "--guidance", defaultValue = "-1", description = "Guidance (default: 3.5 for dev, 1 for the toy).")
    double guidance;

    @Option(names = "--width", defaultValue = "0", description = "Pixels (multiple of 16; default 1024, toy 128).")
    int width;

    @Option(names = "--height", defaultValue = "0")
    int height;

    @Option(names = "--device", defaultValue = "auto")
    String device;

    @Option(names = "--out", defaultValue = "samples", description = "Output folder (default: ${DEFAULT-VALUE}).")
    Path out;

    private final PrintStream stdout;

    public SampleCommand() {
        this(System.out);
    }

    public SampleCommand(PrintStream out) {
        this.stdout = out;
    }

    @Override
    public Integer call() throws Exception {
        boolean toy = model.equals("flux-toy");
        FluxConfig cfg = toy ? ToyWorld.config() : FluxConfig.load(model);
        int steps = this.steps > 0 ? this.steps : toy ? 20 : cfg.name().contains("schnell") ? 4 : 28;
        double guidance = this.guidance >= 0 ? this.guidance : toy ? 1.0 : 3.5;
        int w = width > 0 ? width : toy ? 128 : 1024, h = height > 0 ? height : toy ? 128 : 1024;
        if (w % 16 != 0 || h % 16 != 0) throw new IllegalArgumentException("--width/--height must be multiples of 16, got " + w + "x" + h);
        int lh = h / 8, lw = w / 8, ch = cfg.inChannels() / 4;
        boolean tinyEncoders = encodersDir != null && encodersDir.toString().equals("tiny-random") && !Files.exists(encodersDir);
        if (tinyEncoders && cfg.contextDim() != dev.impasto.encoders.FluxEncoders.Configs.tiny().t5().dModel())
            throw new IllegalArgumentException("--encoders tiny-random gives text embeddings of width " + dev.impasto.encoders.FluxEncoders.Configs.tiny().t5().dModel()
                    + ", --model " + model + " takes " + cfg.contextDim() + ": use --model flux-tiny with --encoders tiny-random");
        try (Backend be = Backends.open(toy ? "cpu".equals(device) || "auto".equals(device) ? "cpu" : device : device)) {
            DType dt = toy ? DType.F32 : Backends.computeType(be);
            Path weights = base != null ? base : toy ? ToyBase.ensure(Path.of("runs", "toy-base"), System.err) : null;
            FluxCheckpoint ck = weights == null ? null : FluxCheckpoint.open(weights);
            try (ck) {
                WeightProvider wp = ck == null ? new RandomWeights(be, dt, 1, 1.0) : new CheckpointWeights(ck, be, dt, BaseFormat.parse(baseFormat), false, null);
                if (ck == null) System.err.println("[impasto] no --base: RANDOM weights (the pictures will be noise)");
                try (FluxModel m = FluxModel.build(cfg, be, dt, wp)) {
                    List<LoraStack.Entry> entries = new ArrayList<>();
                    List<LoraGroup> toClose = new ArrayList<>();
                    for (String spec : loras) {
                        int colon = spec.lastIndexOf(':');
                        double strength = 1;
                        String file = spec;
                        if (colon > 0 && spec.substring(colon + 1).matches("-?[0-9.]+")) {
                            strength = Double.parseDouble(spec.substring(colon + 1));
                            file = spec.substring(0, colon);
                        }
                        LoadedLora l = LoraFileReader.read(Path.of(file), cfg, be, dt);
                        for (String line : l.report()) System.err.println("[impasto] " + file + ": " + line);
                        entries.add(new LoraStack.Entry(l.groups(), strength));
                        toClose.addAll(l.groups());
                    }
                    if (!entries.isEmpty()) {
                        m.attachLoraGroups(LoraStack.merge(be, dt, entries));
                        toClose.forEach(LoraGroup::close);
                    }
                    dev.impasto.encoders.FluxEncoders enc = encodersDir == null ? null
                            : tinyEncoders ? dev.impasto.encoders.FluxEncoders.random(be, dt, dev.impasto.encoders.FluxEncoders.Configs.tiny(), seed)
                            : dev.impasto.encoders.FluxEncoders.load(be, dt, dev.impasto.encoders.FluxEncoders.Configs.flux(cfg.name().contains("schnell") ? 256 : 512),
                                    dev.impasto.encoders.FluxEncoders.Paths.fluxFolder(encodersDir), BaseFormat.BF16);
                    try {
                        if (enc != null && enc.textDim() != cfg.contextDim())
                            throw new IllegalArgumentException("the encoders in " + encodersDir + " give text embeddings of width " + enc.textDim()
                                    + ", --model " + model + " takes " + cfg.contextDim());
                        float[][] cond;
                        if (enc != null) {
                            if (prompt == null) throw new IllegalArgumentException("--encoders needs a --prompt");
                            try (var p = enc.encodePrompt(prompt)) {
                                cond = new float[][] {be.toFloats(p.t5()), be.toFloats(p.pooled())};
                                if (p.truncatedT5()) System.err.println("[impasto] the prompt is longer than T5's window: its end is cut");
                            }
                        } else cond = conditioning(toy, cfg);
                        int lt = cond[0].length / cfg.contextDim();
                        float[] txt = new float[batch * cond[0].length], y = new float[batch * cond[1].length];
                        for (int b = 0; b < batch; b++) {
                            System.arraycopy(cond[0], 0, txt, b * cond[0].length, cond[0].length);
                            System.arraycopy(cond[1], 0, y, b * cond[1].length, cond[1].length);
                        }
                        Files.createDirectories(out);
                        long t0 = System.nanoTime();
                        try (Tensor tt = be.fromFloats(txt, dt, batch, lt, cfg.contextDim()); Tensor ty = be.fromFloats(y, dt, batch, cfg.vecDim());
                             Tensor lat = Sampler.sampleWithProgress(m, tt, ty, lh, lw,
                                     new Sampler.Settings(steps, guidance, seed, !cfg.name().contains("schnell"), 1.0), "sample")) {
                            float[] all = be.toFloats(lat);
                            int per = all.length / batch;
                            for (int b = 0; b < batch; b++) {
                                float[] one = new float[per];
                                System.arraycopy(all, b * per, one, 0, per);
                                float[] chw = Latents.unpack(one, ch, lh, lw);
                                Map<String, String> meta = new LinkedHashMap<>();
                                meta.put("prompt", prompt == null ? "" : prompt);
                                meta.put("seed", Long.toString(seed + b));
                                meta.put("steps", Integer.toString(steps));
                                meta.put("guidance", Double.toString(guidance));
                                meta.put("model", cfg.name());
                                meta.put("loras", String.join(", ", loras));
                                meta.put("Software", "impasto");
                                String name = String.format(Locale.ROOT, "seed-%d", seed + b);
                                Png.write(enc != null ? enc.decode(chw, lh, lw) : LatentImages.fromLatent(chw, ch, lh, lw, toy ? 8 : 1), out.resolve(name + ".png"), meta);
                                SafetensorsWriter.write(out.resolve(name + ".latent.safetensors"), meta,
                                        List.of(SafetensorsWriter.Tensor.ofFloats("latent", DType.F32, new long[] {ch, lh, lw}, chw)));
                                stdout.println(out.resolve(name + ".png") + (toy || enc != null ? "" : "  (latent preview: give --encoders for the decoded picture)"));
                            }
                        }
                        System.err.printf(Locale.ROOT, "[impasto] %d sample(s) of %dx%d in %.1f s on %s%n", batch, w, h, (System.nanoTime() - t0) / 1e9, be.name());
                    } finally {
                        if (enc != null) enc.close();
                    }
                }
            }
        }
        return 0;
    }

    /** {t5 [L * ctx], pooled [vec]} from the toy world, a prompt-embeds file or a cache item. */
    private float[][] conditioning(boolean toy, FluxConfig cfg) throws Exception {
        if (promptEmbeds != null) {
            try (SafetensorsFile f = SafetensorsFile.open(promptEmbeds)) {
                TensorEntry t5 = f.find("t5").orElseThrow(() -> new IllegalArgumentException(promptEmbeds + " has no tensor \"t5\""));
                TensorEntry clip = f.find("clip").orElseThrow(() -> new IllegalArgumentException(promptEmbeds + " has no tensor \"clip\""));
                if (t5.shape()[t5.rank() - 1] != cfg.contextDim() || clip.numel() != cfg.vecDim())
                    throw new IllegalArgumentException(promptEmbeds + ": t5 must end in " + cfg.contextDim() + " and clip have " + cfg.vecDim() + " values");
                return new float[][] {t5.toFloatArray(), clip.toFloatArray()};
            }
        }
        if (cache != null) {
            try (LatentCache c = LatentCache.open(cache)) {
                TrainingSet.Item it = c.item(item);
                if (prompt == null) prompt = it.caption();
                return new float[][] {it.text(), it.pooled()};
            }
        }
        if (toy) {
            if (prompt == null) prompt = ToyWorld.CLASSES[0];
            TrainingSet.Item it = new ToyWorld(ToyWorld.Style.A, 1, 11).prompt(dev.impasto.api.ToyGenerator.classOf(prompt));
            return new float[][] {it.text(), it.pooled()};
        }
        throw new IllegalArgumentException("give --prompt-embeds FILE or --cache DIR --item N (text encoding of --prompt needs the T5/CLIP encoders)");
    }
}
