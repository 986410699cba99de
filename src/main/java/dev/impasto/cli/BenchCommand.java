package dev.impasto.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.bench.FluxBench;
import dev.impasto.model.FluxConfig;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.cuda.CudaBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** `impasto bench`: forward, sampler step and LoRA training step at FLUX.1-dev size on the GPU, JSON out. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Times a forward pass, a sampler step (forward + Euler update) and a LoRA training step (forward + backward + AdamW) of FLUX",
                "with random weights, LoRA rank 16 on every block linear, batch 1, 512 text tokens, with CUDA events",
                "(median after warm-up), and reports peak device memory. bench/run.sh runs it beside the PyTorch reference."})
public final class BenchCommand implements Callable<Integer> {
    @Option(names = "--model", defaultValue = "flux-dev", description = "Architecture (default: ${DEFAULT-VALUE}).")
    String model;

    @Option(names = "--formats", defaultValue = "bf16,nf4,int8", split = ",", description = "Base weight formats (default: ${DEFAULT-VALUE}).")
    List<String> formats;

    @Option(names = "--tokens", defaultValue = "1024,4096", split = ",", description = "Image tokens: 1024 = 512x512, 4096 = 1024x1024.")
    int[] tokens;

    @Option(names = "--checkpointing", defaultValue = "off,on", split = ",", description = "Gradient checkpointing settings to time: off, on or both (default: ${DEFAULT-VALUE}).")
    List<String> checkpointing;

    @Option(names = "--warmup", defaultValue = "3")
    int warmup;

    @Option(names = "--iters", defaultValue = "10")
    int iters;

    @Option(names = "--json", description = "Write the results to this file.")
    Path json;

    @Option(names = "--device", defaultValue = "0", description = "GPU ordinal.")
    int device;

    @Override
    public Integer call() throws Exception {
        FluxConfig cfg = FluxConfig.load(model);
        try (CudaBackend be = CudaBackend.open(device)) {
            boolean[] ck = new boolean[checkpointing.size()];
            for (int i = 0; i < ck.length; i++) {
                String c = checkpointing.get(i).trim().toLowerCase(java.util.Locale.ROOT);
                if (!List.of("on", "off", "true", "false").contains(c)) throw new IllegalArgumentException("--checkpointing takes on/off, got " + c);
                ck[i] = c.equals("on") || c.equals("true");
            }
            ObjectNode r = FluxBench.run(be, cfg, formats.stream().map(BaseFormat::parse).toList(), tokens, ck, warmup, iters, System.err);
            String text = new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(r);
            if (json != null) Files.writeString(json, text);
            System.out.println(text);
        }
        return 0;
    }

    @Override
    public String toString() {
        return "bench " + formats + " " + Arrays.toString(tokens);
    }
}
