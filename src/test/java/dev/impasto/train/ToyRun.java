package dev.impasto.train;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.io.TensorEntry;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.model.CheckpointWeights;
import dev.impasto.model.FluxModel;
import dev.impasto.model.LoraGroup;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A small CPU training run on the toy base for tests that look inside the trainer: the toy model in F32, the toy
 * world (or a wrapper of it), and readers for what a run leaves behind (checkpoint tensors, state.json, metrics).
 */
final class ToyRun implements AutoCloseable {
    static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    final Backend be = new CpuBackend();
    final FluxCheckpoint ck;
    final FluxModel model;

    ToyRun() throws IOException {
        ck = FluxCheckpoint.open(ToyFixtures.base());
        model = FluxModel.build(ToyWorld.config(), be, DType.F32, new CheckpointWeights(ck, be, DType.F32, BaseFormat.F32, false, null));
    }

    /** A small, fast toy config: batch 2, 8 pictures per class, no caption dropout, no intermediate samples. */
    static TrainConfig config(Path out, String name, int steps) throws IOException {
        TrainConfig c = ToyFixtures.loraConfig(out, name, steps);
        c.lora.rank = 4;
        c.lora.alpha = 4;
        c.training.batchSize = 2;
        c.training.captionDropout = 0;
        c.data.toyPerClass = 8;
        c.optimizer.lr = 1e-3;
        c.sample.steps = 2;
        c.sample.seeds = new java.util.ArrayList<>(List.of(1L));
        c.checkpoint.every = 0;
        c.checkpoint.keep = 1;
        return c;
    }

    ToyWorld world(TrainConfig c) {
        return new ToyWorld(ToyWorld.Style.B, c.data.toyPerClass, 11);
    }

    /** Every LoRA master of the trainer, named as in its checkpoints ("key.a", "key.b"), as doubles. */
    static Map<String, double[]> masters(Backend be, List<LoraGroup> groups) {
        Map<String, double[]> m = new LinkedHashMap<>();
        for (LoraGroup g : groups) {
            m.put(g.key + ".a", be.toDoubles(g.a));
            m.put(g.key + ".b", be.toDoubles(g.b));
        }
        return m;
    }

    /** The tensors of checkpoint step-N (masters, ".m", ".v", ".ema"), exactly as saved (fp32 widened to double). */
    static Map<String, double[]> checkpoint(Path runDir, long step) throws IOException {
        return tensors(checkpointFolder(runDir, step).resolve("state.safetensors"));
    }

    static Path checkpointFolder(Path runDir, long step) {
        return runDir.resolve("checkpoints").resolve(String.format("step-%08d", step));
    }

    static JsonNode checkpointState(Path runDir, long step) throws IOException {
        return MetricsLog.JSON.readTree(checkpointFolder(runDir, step).resolve("state.json").toFile());
    }

    static Map<String, double[]> tensors(Path file) throws IOException {
        Map<String, double[]> m = new TreeMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (TensorEntry e : f.tensors()) m.put(e.name(), e.toDoubleArray());
        }
        return m;
    }

    static List<JsonNode> metrics(Path runDir) throws IOException {
        return MetricsLog.read(runDir.resolve("metrics.jsonl"));
    }

    /**
     * The learning rate AdamW applied between two checkpoints (or the initial masters and a checkpoint), by least
     * squares over every element of {@code names}: p1 = p0 (1 - lr wd) - lr m^ / (sqrt(v^) + eps), with m^ and v^ the
     * new moments bias-corrected for AdamW's update count {@code adamStep}.
     */
    static double appliedLr(Map<String, double[]> before, Map<String, double[]> now, java.util.Collection<String> names, long adamStep, TrainConfig c) {
        double bc1 = 1 - Math.pow(c.optimizer.beta1, adamStep), bc2 = 1 - Math.pow(c.optimizer.beta2, adamStep);
        double num = 0, den = 0;
        for (String name : names) {
            double[] p0 = before.get(name), p1 = now.get(name), m = now.get(name + ".m"), v = now.get(name + ".v");
            for (int i = 0; i < p1.length; i++) {
                double d = p0[i] * c.optimizer.weightDecay + m[i] / bc1 / (Math.sqrt(v[i]) / Math.sqrt(bc2) + c.optimizer.eps);
                num += (p0[i] - p1[i]) * d;
                den += d * d;
            }
        }
        return num / den;
    }

    @Override
    public void close() throws IOException {
        model.close();
        ck.close();
    }
}
