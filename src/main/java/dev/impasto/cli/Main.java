package dev.impasto.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The `impasto` launcher. */
@Command(name = "impasto", mixinStandardHelpOptions = true, version = "impasto 0.1.0",
        description = "Fine-tune (LoRA) and run FLUX rectified-flow transformers on quantized weights, on NVIDIA GPUs or the CPU.",
        subcommands = {DoctorCommand.class, dev.impasto.io.cli.InspectCommand.class})
public final class Main implements Callable<Integer> {

    @Override
    public Integer call() {
        CommandLine.usage(this, System.out);
        return 0;
    }

    public static CommandLine commandLine() {
        return new CommandLine(new Main()).setCaseInsensitiveEnumValuesAllowed(true);
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }
}
