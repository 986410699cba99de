package dev.impasto.encoders.cli;

import dev.impasto.Backends;
import dev.impasto.encoders.FluxEncoders;
import dev.impasto.encoders.cache.CacheBuilder;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** `impasto cache`: pictures and captions to the training cache (latents, T5 tokens, CLIP vectors). */
@Command(name = "cache", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Encodes a folder of captioned pictures once into the training cache `impasto train --data.cache` reads:",
                "each picture resized and cropped to its aspect-ratio bucket and encoded by FLUX's VAE, each caption by T5 and CLIP.",
                "Resumable: rerun the same command after an interruption and finished pictures are skipped.",
                "Data: an imagefolder (train/metadata.jsonl with file_name and text, as `impasto curate`/`caption` write it)",
                "or images with .txt captions beside them."})
public final class CacheCommand implements Callable<Integer> {
    @Option(names = "--data", required = true, paramLabel = "DIR", description = "The dataset folder.")
    Path data;

    @Option(names = "--out", required = true, paramLabel = "CACHE", description = "The cache folder to create or complete.")
    Path out;

    @Option(names = "--model", defaultValue = "flux", paramLabel = "flux|tiny",
            description = "flux: FLUX.1's encoders from files (--flux or --t5/--clip/--vae); tiny: random miniature encoders (tests, CPU demo). Default: ${DEFAULT-VALUE}.")
    String model;

    @Option(names = "--flux", paramLabel = "DIR", description = "A FLUX.1 diffusers folder (text_encoder, text_encoder_2, tokenizer, tokenizer_2, vae or ae.safetensors).")
    Path fluxFolder;

    @Option(names = "--t5", paramLabel = "PATH", description = "T5-XXL weights (t5xxl_fp16.safetensors, t5xxl_fp8_e4m3fn.safetensors or text_encoder_2/).")
    Path t5;

    @Option(names = "--t5-tokenizer", paramLabel = "PATH", description = "T5 tokenizer (tokenizer_2/, tokenizer.json or spiece.model).")
    Path t5Tokenizer;

    @Option(names = "--clip", paramLabel = "PATH", description = "CLIP-L weights (clip_l.safetensors or text_encoder/).")
    Path clip;

    @Option(names = "--clip-tokenizer", paramLabel = "PATH", description = "CLIP tokenizer (tokenizer/, tokenizer.json or vocab.json + merges.txt).")
    Path clipTokenizer;

    @Option(names = "--vae", paramLabel = "PATH", description = "Autoencoder weights (ae.safetensors or vae/).")
    Path vae;

    @Option(names = "--t5-max-length", defaultValue = "512", description = "T5 tokens per caption: 512 for FLUX.1-dev, 256 for schnell. Default: ${DEFAULT-VALUE}.")
    int t5MaxLength;

    @Option(names = "--t5-format", defaultValue = "bf16", paramLabel = "bf16|int8|nf4", description = "How T5's 4.7 B weights are held while encoding. Default: ${DEFAULT-VALUE}.")
    String t5Format;

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto. Default: ${DEFAULT-VALUE}.")
    String device;

    @Option(names = "--resolution", paramLabel = "PX", description = "Bucket area is PX x PX pixels (default 1024; 32 with --model tiny).")
    Integer resolution;

    @Option(names = "--bucket-step", defaultValue = "0", paramLabel = "PX", description = "Bucket sides are multiples of this (default 16 = VAE 8x times 2x2 patches).")
    int bucketStep;

    @Option(names = "--max-aspect", defaultValue = "2.0", description = "Widest bucket aspect ratio. Default: ${DEFAULT-VALUE}.")
    double maxAspect;

    @Option(names = "--no-upscale", description = "Pictures smaller than the bucket area keep their own size instead of being upscaled.")
    boolean noUpscale;

    @Option(names = "--flip", description = "Also cache every picture mirrored left-right (a second item per picture).")
    boolean flip;

    @Option(names = "--crop-jitter", defaultValue = "0", description = "0 crops at the centre; up to 1 moves each crop by a seeded random part of the slack. Default: ${DEFAULT-VALUE}.")
    double cropJitter;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the crop jitter (and of the tiny model's random weights). Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--caption-field", defaultValue = "text", description = "metadata.jsonl field holding the caption. Default: ${DEFAULT-VALUE}.")
    String captionField;

    @Option(names = "--trigger", defaultValue = "", description = "Prepended to every caption (\"TRIGGER, caption\").")
    String trigger;

    @Option(names = "--text-dtype", defaultValue = "bf16", paramLabel = "bf16|f32", description = "Storage of the T5 tokens (bf16 halves the cache). Default: ${DEFAULT-VALUE}.")
    String textDtype;

    @Option(names = "--limit", defaultValue = "0", description = "Cache only the first N pictures (0: all).")
    int limit;

    private final PrintStream stdout;

    public CacheCommand() {
        this(System.out);
    }

    public CacheCommand(PrintStream out) {
        this.stdout = out;
    }

    @Override
    public Integer call() throws Exception {
        boolean tiny = model.toLowerCase(Locale.ROOT).equals("tiny");
        if (!tiny && !model.equalsIgnoreCase("flux")) throw new IllegalArgumentException("--model must be flux or tiny, got " + model);
        DType textType = switch (textDtype.toLowerCase(Locale.ROOT)) {
            case "bf16" -> DType.BF16;
            case "f32", "fp32" -> DType.F32;
            default -> throw new IllegalArgumentException("--text-dtype must be bf16 or f32, got " + textDtype);
        };
        int res = resolution != null ? resolution : tiny ? 32 : 1024;
        CacheBuilder.Settings settings = new CacheBuilder.Settings(res, bucketStep, maxAspect, noUpscale, flip, cropJitter, seed, textType,
                captionField, trigger, limit, 100_000_000L);
        try (Backend be = Backends.open(device)) {
            DType dt = Backends.computeType(be);
            long t0 = System.nanoTime();
            try (FluxEncoders enc = tiny ? FluxEncoders.random(be, dt, FluxEncoders.Configs.tiny(), seed) : loadFlux(be, dt)) {
                System.err.printf(Locale.ROOT, "[impasto] encoders on %s: %s (%.1f s)%n", be.name(), enc.describe(), (System.nanoTime() - t0) / 1e9);
                CacheBuilder.Summary s = new CacheBuilder(enc, settings, System.err).vaeWeights(tiny ? "tiny-random:" + seed : vaeSource()).build(data, out);
                stdout.printf(Locale.ROOT, "cached %d pictures as %d items in %s: %d encoded, %d already there, %d unreadable%n", s.images(), s.items(), out,
                        s.encoded(), s.skipped(), s.failed());
                if (!s.buckets().isEmpty()) stdout.println("  buckets: " + bucketLine(s));
                if (s.emptyCaptions() > 0) stdout.println("  " + s.emptyCaptions() + " pictures have no caption (trained on the empty prompt)");
                if (s.truncatedCaptions() > 0) stdout.println("  " + s.truncatedCaptions() + " captions were longer than the encoders take and were cut");
                stdout.println("  train with: impasto train --data.cache " + out + (tiny ? " --model.preset flux-tiny" : ""));
                return s.failed() > 0 && s.items() == 0 ? 1 : 0;
            }
        }
    }

    private static String bucketLine(CacheBuilder.Summary s) {
        StringBuilder sb = new StringBuilder();
        s.buckets().entrySet().stream().sorted(java.util.Map.Entry.<String, Integer>comparingByValue().reversed())
                .forEach(e -> sb.append(sb.isEmpty() ? "" : ", ").append(e.getKey()).append(" x").append(e.getValue()));
        return sb.toString();
    }

    /** The autoencoder's weights as loadFlux finds them, absolute (recorded in the manifest for training samples). */
    private String vaeSource() {
        Path p = vae != null ? vae : fluxFolder != null ? FluxEncoders.Paths.fluxFolder(fluxFolder).vae() : null;
        return p == null ? "" : p.toAbsolutePath().normalize().toString();
    }

    private FluxEncoders loadFlux(Backend be, DType dt) throws java.io.IOException {
        FluxEncoders.Paths p = fluxFolder != null ? FluxEncoders.Paths.fluxFolder(fluxFolder) : new FluxEncoders.Paths(null, null, null, null, null);
        if (t5 != null || t5Tokenizer != null) p = p.withT5(t5 != null ? t5 : p.t5(), t5Tokenizer != null ? t5Tokenizer : p.t5Tokenizer());
        if (clip != null || clipTokenizer != null) p = p.withClip(clip != null ? clip : p.clip(), clipTokenizer != null ? clipTokenizer : p.clipTokenizer());
        if (vae != null) p = p.withVae(vae);
        java.util.List<String> missing = new java.util.ArrayList<>();
        if (p.t5() == null) missing.add("--t5");
        if (p.clip() == null) missing.add("--clip");
        if (p.vae() == null) missing.add("--vae");
        if (!missing.isEmpty())
            throw new IllegalArgumentException("the cache needs all three encoders: give --flux FLUX.1-dev/ or " + String.join(", ", missing)
                    + " (or --model tiny for a test run with random miniature encoders)");
        return FluxEncoders.load(be, dt, FluxEncoders.Configs.flux(t5MaxLength), p, BaseFormat.parse(t5Format));
    }
}
