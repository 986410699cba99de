package dev.impasto.train;

import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.model.FluxModel;
import dev.impasto.model.LoraGroup;
import dev.impasto.model.RandomWeights;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The toy world's base model, "pretrained" from scratch on style A: a full-rank LoRA on every block linear of a
 * randomly initialised FLUX-toy is trained with the ordinary trainer, then merged into the base weights, and the
 * result is saved as an ordinary BFL-layout checkpoint (flux-toy-base.safetensors) that the rest of impasto loads
 * like any FLUX file. Deterministic: the same recipe gives the same file; it is built once per output folder.
 */
public final class ToyBase {
    public static final String RECIPE = "toy-base-v1";

    private ToyBase() {}

    public static TrainConfig recipe(Path folder) {
        TrainConfig c = new TrainConfig();
        c.name = "pretrain";
        c.output = folder.toString();
        c.device = "cpu";
        c.lora.rank = 64;
        c.lora.alpha = 64;
        c.optimizer.lr = 2e-3;
        c.optimizer.weightDecay = 0;
        c.schedule.type = "cosine";
        c.schedule.warmupSteps = 20;
        c.schedule.minLrRatio = 0.1;
        c.training.steps = 240;
        c.training.batchSize = 8;
        c.training.seed = 7;
        c.training.captionDropout = 0.1;
        c.training.timestepSampling = "uniform";
        c.checkpoint.every = 0;
        c.checkpoint.keep = 1;
        c.sample.every = 0;
        c.data.toyStyle = "A";
        return c;
    }

    /** The toy base checkpoint under {@code folder}, trained first if it is not there yet. */
    public static synchronized Path ensure(Path folder, PrintStream log) throws IOException {
        Path file = folder.resolve("flux-toy-base.safetensors");
        if (Files.isRegularFile(file)) {
            try (var f = dev.impasto.io.safetensors.SafetensorsFile.open(file)) {
                if (RECIPE.equals(f.metadata().get("impasto.recipe"))) return file;
            } catch (IOException e) {
                log.println("[impasto] rebuilding the toy base: " + e.getMessage());
            }
        }
        log.println("[impasto] pretraining the toy world's base model on style A (once; about a minute on 2 CPU cores)");
        TrainConfig c = recipe(folder);
        Backend be = new CpuBackend();
        try (FluxModel model = FluxModel.build(ToyWorld.config(), be, DType.F32, new RandomWeights(be, DType.F32, 7, 1.0))) {
            Trainer t = new Trainer(c, be, model, new ToyWorld(ToyWorld.Style.A, c.data.toyPerClass, 11), log);
            t.run(false);
            model.mergeLora();
            for (LoraGroup g : model.detachLora()) g.close();
            List<SafetensorsWriter.Tensor> tensors = new ArrayList<>();
            for (Map.Entry<String, Object[]> e : model.baseWeights().entrySet())
                tensors.add(SafetensorsWriter.Tensor.ofFloats(e.getKey(), DType.F32, (long[]) e.getValue()[0], (float[]) e.getValue()[1]));
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("impasto.recipe", RECIPE);
            meta.put("impasto.config", ToyWorld.config().toJson());
            SafetensorsWriter.write(file, meta, tensors);
        }
        return file;
    }
}
