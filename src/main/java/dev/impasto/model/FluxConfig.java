package dev.impasto.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Architecture of a FLUX-class transformer (black-forest-labs/flux FluxParams). The same code runs FLUX.1-dev,
 * FLUX.1-schnell and tiny configurations of the same architecture used by tests and the CPU demo.
 *
 * @param inChannels  channels of a packed latent token (16 latent channels x 2 x 2 = 64 for FLUX)
 * @param contextDim  width of the text-encoder (T5) tokens
 * @param vecDim      width of the pooled text vector (CLIP)
 * @param hidden      transformer width (heads x head dim)
 * @param heads       attention heads
 * @param depth       double-stream blocks
 * @param depthSingle single-stream blocks
 * @param mlpRatio    MLP width / hidden
 * @param axesDim     RoPE dimensions per position axis; they sum to the head dim
 * @param theta       RoPE base
 * @param qkvBias     whether the qkv projections have a bias
 * @param guidanceEmbed whether the model takes a guidance value (FLUX.1-dev: distilled guidance)
 */
@JsonIgnoreProperties(ignoreUnknown = false)
public record FluxConfig(String name, int inChannels, int contextDim, int vecDim, int hidden, int heads, int depth,
                         int depthSingle, double mlpRatio, int[] axesDim, int theta, boolean qkvBias,
                         boolean guidanceEmbed) {

    public FluxConfig {
        List<String> errors = new ArrayList<>();
        if (hidden <= 0 || heads <= 0 || hidden % heads != 0) errors.add("hidden (" + hidden + ") must be a positive multiple of heads (" + heads + ")");
        else {
            int headDim = hidden / heads;
            if (headDim % 2 != 0) errors.add("head dim hidden/heads = " + headDim + " must be even (RoPE rotates pairs)");
            if (axesDim == null || Arrays.stream(axesDim).sum() != headDim)
                errors.add("axesDim " + Arrays.toString(axesDim) + " must sum to the head dim " + headDim);
            else for (int a : axesDim) if (a % 2 != 0) errors.add("every axesDim entry must be even, got " + Arrays.toString(axesDim));
        }
        if (inChannels <= 0) errors.add("inChannels must be positive");
        if (contextDim <= 0) errors.add("contextDim must be positive");
        if (vecDim <= 0) errors.add("vecDim must be positive");
        if (depth < 0 || depthSingle < 0 || depth + depthSingle == 0) errors.add("depth/depthSingle must be >= 0 and not both 0");
        if (mlpRatio <= 0) errors.add("mlpRatio must be positive");
        if (!errors.isEmpty()) throw new IllegalArgumentException("invalid FLUX config " + name + ": " + String.join("; ", errors));
        axesDim = axesDim.clone();
    }

    public int headDim() {
        return hidden / heads;
    }

    public int mlpHidden() {
        return (int) (hidden * mlpRatio);
    }

    /** FLUX.1-dev: 12B parameters, guidance-distilled. */
    public static FluxConfig dev() {
        return new FluxConfig("flux-dev", 64, 4096, 768, 3072, 24, 19, 38, 4.0, new int[] {16, 56, 56}, 10_000, true, true);
    }

    /** FLUX.1-schnell: same transformer without the guidance embedder. */
    public static FluxConfig schnell() {
        return new FluxConfig("flux-schnell", 64, 4096, 768, 3072, 24, 19, 38, 4.0, new int[] {16, 56, 56}, 10_000, true, false);
    }

    /** The architecture in miniature: hidden 64, 2 heads of 32, one block of each kind (tests, CPU demo). */
    public static FluxConfig tiny() {
        return new FluxConfig("flux-tiny", 64, 32, 16, 64, 2, 1, 1, 4.0, new int[] {4, 14, 14}, 10_000, true, true);
    }

    public static FluxConfig preset(String name) {
        return switch (name) {
            case "flux-dev", "dev" -> dev();
            case "flux-schnell", "schnell" -> schnell();
            case "flux-tiny", "tiny" -> tiny();
            default -> throw new IllegalArgumentException("unknown model preset \"" + name + "\" (known: flux-dev, flux-schnell, flux-tiny, or a JSON file)");
        };
    }

    /** A preset name or a JSON file holding this record's fields. */
    public static FluxConfig load(String presetOrFile) throws IOException {
        Path p = Path.of(presetOrFile);
        if (!presetOrFile.endsWith(".json") || !Files.exists(p)) return preset(presetOrFile);
        try {
            return new ObjectMapper().readValue(p.toFile(), FluxConfig.class);
        } catch (com.fasterxml.jackson.databind.exc.ValueInstantiationException e) {
            throw new IllegalArgumentException(p + ": " + e.getCause().getMessage(), e);
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new IllegalArgumentException(p + ": not a valid FLUX config: " + e.getOriginalMessage(), e);
        }
    }

    public String toJson() {
        try {
            return new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parameter count of the base transformer. */
    public long parameterCount() {
        long h = hidden, m = mlpHidden();
        long dbl = 2 * (h * 6 * h + 6 * h + h * 3 * h + (qkvBias ? 3 * h : 0) + 2 * headDim() + h * h + h + h * m + m + m * h + h);
        long sgl = h * 3 * h + 3 * h + h * (3 * h + m) + 3 * h + m + (h + m) * h + h + 2 * headDim();
        long emb = inChannels * h + h + contextDim * h + h + 2 * (256 * h + h + h * h + h) * (guidanceEmbed ? 1 : 0)
                + (guidanceEmbed ? 0 : 256 * h + h + h * h + h) + vecDim * h + h + h * h + h;
        long last = h * 2 * h + 2 * h + h * inChannels + inChannels;
        return depth * dbl + depthSingle * sgl + emb + last;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FluxConfig c && c.toJson().equals(toJson());
    }

    @Override
    public int hashCode() {
        return toJson().hashCode();
    }

    @Override
    public String toString() {
        return name + "(hidden " + hidden + ", " + heads + " heads, " + depth + "+" + depthSingle + " blocks, axes " + Arrays.toString(axesDim) + ")";
    }
}
