package dev.impasto.lora.cli;

import dev.impasto.lora.LoadedLora;
import dev.impasto.lora.LoraFileReader;
import dev.impasto.lora.LoraFileWriter;
import dev.impasto.lora.LoraFormat;
import dev.impasto.model.FluxConfig;
import dev.impasto.model.LoraGroup;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code impasto lora-convert}: rewrites a FLUX LoRA in diffusers/peft or kohya layout and prints what was read.
 * Exit codes: 0 written, 1 the input or the options are unusable, 2 the input has tensors the output would lose
 * (pass --drop-unapplied to write anyway).
 */
@Command(name = "lora-convert", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Convert a FLUX LoRA between diffusers/peft (ai-toolkit, SimpleTuner) and kohya (sd-scripts, ComfyUI) layouts.",
                "Reads diffusers/peft, kohya, XLabs and BFL-named files; prints the format found, the modules, and every tensor it cannot carry over."})
public final class LoraConvertCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "INPUT", description = "LoRA .safetensors file to read")
    Path input;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "where to write the converted LoRA")
    Path output;

    @Option(names = "--to", defaultValue = "diffusers", paramLabel = "FORMAT",
            description = "diffusers (= peft, ai-toolkit) or kohya (= sd-scripts) (default: ${DEFAULT-VALUE})")
    String to;

    @Option(names = "--model", defaultValue = "flux-dev", paramLabel = "MODEL",
            description = "the architecture the LoRA is for: flux-dev, flux-schnell, flux-tiny or a FluxConfig JSON file (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--dtype", defaultValue = "f32", paramLabel = "TYPE", description = "weight type of the output: f32, bf16 or f16 (default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--bake-scale", description = "diffusers output: fold alpha/rank into lora_B and store alpha = rank, so loaders that ignore "
            + "lora_adapter_metadata (ComfyUI) apply the same strength")
    boolean bakeScale;

    @Option(names = "--drop-unapplied", description = "write the output even though some input tensors (text encoder, unknown names) cannot be carried over")
    boolean dropUnapplied;

    @Option(names = {"-f", "--force"}, description = "overwrite OUTPUT if it exists")
    boolean force;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        try {
            LoraFormat target = LoraFormat.parse(to);
            if (!target.writable()) throw new IllegalArgumentException("--to must be diffusers or kohya; " + target + " files are read only");
            DType dt = switch (dtype.toLowerCase(Locale.ROOT)) {
                case "f32", "fp32", "float32" -> DType.F32;
                case "bf16", "bfloat16" -> DType.BF16;
                case "f16", "fp16", "float16" -> DType.F16;
                default -> throw new IllegalArgumentException("--dtype must be f32, bf16 or f16, not " + dtype);
            };
            if (!Files.isRegularFile(input)) throw new IllegalArgumentException(input + ": no such file");
            if (Files.exists(output) && Files.isSameFile(input, output)) throw new IllegalArgumentException("OUTPUT is the input file");
            if (Files.exists(output) && !force) throw new IllegalArgumentException(output + " exists; pass --force to overwrite it");
            FluxConfig cfg = FluxConfig.load(model);
            try (CpuBackend be = new CpuBackend()) {
                LoadedLora lora = LoraFileReader.read(input, cfg, be, DType.F32);
                try {
                    out.println(input + ":");
                    for (String l : lora.report()) out.println("  " + l);
                    int lost = lora.unknownKeys().size() + lora.textEncoderKeys().size();
                    if (lost > 0 && !dropUnapplied) {
                        err.println("lora-convert: " + lost + " tensors of " + input + " cannot be carried over (listed above); nothing written. "
                                + "Pass --drop-unapplied to write the rest.");
                        return 2;
                    }
                    if (lora.groups().isEmpty()) throw new IllegalArgumentException(input + " holds no LoRA weights for the transformer blocks");
                    Map<String, String> md = new LinkedHashMap<>();
                    // keep the trainer's own metadata (ss_*, modelspec.*, ...); layout-specific keys are written afresh
                    lora.metadata().forEach((k, v) -> {
                        if (!k.equals("lora_adapter_metadata") && !k.equals("format") && !k.startsWith("impasto.")) md.put(k, v);
                    });
                    md.put("impasto.converted_from", lora.format().name().toLowerCase(Locale.ROOT) + ":" + input.getFileName());
                    LoraFileWriter.write(output, lora.groups(), be, target, md,
                            new LoraFileWriter.Options(dt, cfg, bakeScale));
                    out.println("wrote " + output + " (" + target.description() + ", " + dt + ", " + Files.size(output) + " bytes)");
                    return 0;
                } finally {
                    lora.groups().forEach(LoraGroup::close);
                }
            }
        } catch (IOException | IllegalArgumentException e) {
            err.println("lora-convert: " + e.getMessage());
            return 1;
        }
    }
}
