package dev.impasto.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The `impasto` launcher. */
@Command(name = "impasto", mixinStandardHelpOptions = true, version = "impasto 0.1.0",
        description = "Fine-tune (LoRA) and run FLUX rectified-flow transformers on quantized weights, on NVIDIA GPUs or the CPU.",
        subcommands = {DoctorCommand.class, dev.impasto.io.cli.InspectCommand.class, BenchCommand.class, SampleCommand.class})
public final class Main implements Callable<Integer> {

    @Override
    public Integer call() {
        CommandLine.usage(this, System.out);
        return 0;
    }

    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        cl.addSubcommand("train", TrainCommand.commandLine(System.out));
        cl.addSubcommand(new dev.impasto.lora.cli.LoraConvertCommand());
        cl.addSubcommand(new dev.impasto.pipeline.cli.CurateCommand());
        cl.addSubcommand(new dev.impasto.pipeline.cli.CaptionCommand());
        cl.addSubcommand(new dev.impasto.pipeline.cli.PublishCommand());
        cl.addSubcommand("eval", new dev.impasto.eval.cli.EvalCommand());
        cl.addSubcommand("sweep", new dev.impasto.eval.cli.SweepCommand());
        cl.addSubcommand("serve", new dev.impasto.serve.cli.ServeCommand());
        cl.addSubcommand(new dev.impasto.encoders.cli.CacheCommand());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setExecutionExceptionHandler((ex, line, parse) -> {
            line.getErr().println("impasto " + line.getCommandName() + ": " + (ex.getMessage() == null ? ex.toString() : ex.getMessage()));
            if (System.getenv("IMPASTO_DEBUG") != null) ex.printStackTrace(line.getErr());
            return 1;
        });
        return cl;
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }
}
