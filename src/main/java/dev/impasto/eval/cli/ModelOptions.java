package dev.impasto.eval.cli;

import dev.impasto.api.ImageGenerator;
import dev.impasto.api.ToyGenerator;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine.Option;

/** Which model generates (shared by eval, sweep and serve): the toy world's model by default. */
public final class ModelOptions {
    public static final String TOY = "toy";

    @Option(names = "--model", paramLabel = "toy|FILE", defaultValue = TOY,
            description = "The model: toy (the toy world's tiny FLUX on the CPU, no weights needed) or a FLUX checkpoint (default: ${DEFAULT-VALUE}).")
    public String model = TOY;

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
        throw new IllegalArgumentException("--model " + model + ": generating with real FLUX weights needs the T5/CLIP text encoders and the VAE, "
                + "which are not in this build yet (docs/guide.md, \"Real weights\"); use --model toy, or pass any dev.impasto.api.ImageGenerator "
                + "to dev.impasto.eval.Evaluator / dev.impasto.serve.DemoServer from Java");
    }
}
