package dev.impasto.eval.cli;

import dev.impasto.Backends;
import dev.impasto.api.FluxGenerator;
import dev.impasto.api.ImageGenerator;
import dev.impasto.encoders.FluxEncoders;
import dev.impasto.model.FluxConfig;
import dev.impasto.quant.BaseFormat;
import dev.impasto.api.ToyGenerator;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine.Option;

/** Which model generates (shared by eval, sweep and serve): the toy world's model by default. */
public final class ModelOptions {
    public static final String TOY = "toy";

    @Option(names = "--model", paramLabel = "toy|tiny-random|FILE", defaultValue = TOY,
            description = "The model: toy (the toy world's tiny FLUX on the CPU, no weights needed), tiny-random (FLUX, T5, CLIP and VAE in miniature with random weights: every real code path, noise pictures) or a FLUX checkpoint with --encoders (default: ${DEFAULT-VALUE}).")
    public String model = TOY;

    @Option(names = "--encoders", paramLabel = "DIR",
            description = "With a FLUX checkpoint as --model: the folder holding the text encoders, tokenizers and VAE as black-forest-labs/FLUX.1-dev ships them (text_encoder/, tokenizer/, text_encoder_2/, tokenizer_2/, ae.safetensors or vae/).")
    public Path encoders;

    @Option(names = "--arch", defaultValue = "flux-dev", description = "Architecture of a FLUX checkpoint: flux-dev, flux-schnell or a JSON config (default: ${DEFAULT-VALUE}).")
    public String arch = "flux-dev";

    @Option(names = "--base-format", defaultValue = "bf16", description = "How the transformer's weights are held on the GPU: bf16, nf4, int8, ... (default: ${DEFAULT-VALUE}).")
    public String baseFormat = "bf16";

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (default: ${DEFAULT-VALUE}).")
    public String device = "auto";

    @Option(names = "--toy-base", paramLabel = "DIR",
            description = "Folder of the toy world's pretrained base (built there on first use; default: the runs' toy-base folder, else runs/toy-base).")
    public Path toyBase;

    public boolean toy() {
        return TOY.equalsIgnoreCase(model);
    }

    /**
     * The generator, offering {@code loras} (name -> LoRA file) by name. {@code defaultToyBase} is used when
     * {@code --toy-base} is not given.
     */
    public ImageGenerator open(Map<String, Path> loras, Path defaultToyBase, PrintStream log) throws IOException {
        if (toy()) return new ToyGenerator(toyBase != null ? toyBase : defaultToyBase != null ? defaultToyBase : Path.of("runs", "toy-base"), loras, log);
        if (model.equalsIgnoreCase("tiny-random")) return FluxGenerator.tinyRandom(Backends.open(device), 1, loras);
        if (encoders == null)
            throw new IllegalArgumentException("--model " + model + ": a FLUX checkpoint needs --encoders DIR (text encoders, tokenizers and VAE; see docs/guide.md, \"Real weights\")");
        return FluxGenerator.open(Backends.open(device), FluxConfig.load(arch), Path.of(model), BaseFormat.parse(baseFormat),
                FluxEncoders.Paths.fluxFolder(encoders), loras);
    }
}
