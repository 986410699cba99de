package dev.impasto.train;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.cuda.CudaOutOfMemoryException;
import dev.impasto.encoders.FluxEncoders;
import dev.impasto.image.LatentImages;
import dev.impasto.quant.BaseFormat;
import dev.impasto.image.Png;
import dev.impasto.io.TensorEntry;
import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.model.FluxModel;
import dev.impasto.model.Latents;
import dev.impasto.model.LoraContext;
import dev.impasto.model.LoraGroup;
import dev.impasto.model.Rope;
import dev.impasto.sample.Sampler;
import dev.impasto.tensor.AdamWConfig;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.util.ProgressBar;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * LoRA training by flow matching (x_t = (1 - t) x0 + t noise, target noise - x0, MSE in fp32), with AdamW on fp32
 * master weights, gradient clipping and accumulation, LR schedules, optional EMA, caption dropout, bucketed data,
 * atomic resumable checkpoints, NaN/Inf step skipping, metrics, a loss plot and sample grids.
 *
 * <p>Every random choice is a pure function of (seed, step, micro-batch, item): the data order of an epoch, the
 * timesteps, the caption-dropout coin, the noise (Philox on the device), the LoRA dropout masks. So a run killed at
 * any point and resumed from its last checkpoint ends with the same weights as one that was never interrupted.
 */
public final class Trainer {
    /** What a finished run reports. */
    public record Result(long steps, double firstLoss, double lastLossEma, long skippedSteps, Path runDir, Path lora) {}

    private final TrainConfig cfg;
    private final dev.impasto.train.dist.Collective coll;
    private final Backend be;
    private final FluxModel model;
    private final TrainingSet data;
    private final PrintStream log;
    private final Path runDir;
    private final List<LoraGroup> groups;
    private final List<Tensor> params = new ArrayList<>(), grads = new ArrayList<>(), m = new ArrayList<>(), v = new ArrayList<>(),
            ema = new ArrayList<>();
    private final List<String> names = new ArrayList<>();
    /** Called after each optimizer step (tests use it to stop a run at a chosen step). */
    private java.util.function.LongConsumer afterStep = s -> {};
    /** Extra sample sets for the grid: label -> (text [1, Lt, ctx], pooled [1, vec]) on the host. */
    private final Map<String, TrainingSet.Item> samplePrompts = new LinkedHashMap<>();

    public Trainer(TrainConfig cfg, Backend be, FluxModel model, TrainingSet data, PrintStream log) {
        this(cfg, be, model, data, log, dev.impasto.train.dist.Collective.SOLO);
    }

    /**
     * A rank of data-parallel training: every rank runs this on its own device with the same config; each global
     * batch of batchSize x world items is split among the ranks, gradients and loss are averaged across them, and
     * rank 0 alone writes checkpoints, metrics, samples and LoRA files.
     */
    public Trainer(TrainConfig cfg, Backend be, FluxModel model, TrainingSet data, PrintStream log, dev.impasto.train.dist.Collective coll) {
        cfg.validate();
        this.cfg = cfg;
        this.coll = coll;
        this.be = be;
        this.model = model;
        this.data = data;
        this.log = log;
        this.runDir = cfg.runDir();
        this.groups = model.loras().isEmpty() ? model.attachLora(cfg.loraConfig(), cfg.training.seed) : model.loras();
        for (LoraGroup g : groups) {
            for (Tensor[] pg : new Tensor[][] {{g.a, g.gradA}, {g.b, g.gradB}}) {
                params.add(pg[0]);
                grads.add(pg[1]);
                m.add(be.zeros(pg[0].dtype(), pg[0].shape()));
                v.add(be.zeros(pg[0].dtype(), pg[0].shape()));
                if (cfg.training.ema > 0) {
                    Tensor e = be.empty(pg[0].dtype(), pg[0].shape());
                    be.copy(e, pg[0]);
                    ema.add(e);
                }
                names.add(g.key + (pg[0] == g.a ? ".a" : ".b"));
            }
        }
        model.setCheckpointing(cfg.training.gradientCheckpointing);
        if (data instanceof ToyWorld toy)
            for (int c = 0; c < ToyWorld.CLASSES.length; c++) samplePrompts.put(ToyWorld.CLASSES[c], toy.prompt(c));
        else for (int i : cfg.sample.items) if (i >= 0 && i < data.size()) samplePrompts.put("item " + i + ": " + data.item(i).caption(), data.item(i));
    }

    /** Dotted names of the settings whose values differ between two run.json texts ("optimizer.lr: 1e-4 -> 2e-4"). */
    static List<String> changedSettings(String before, String after) {
        List<String> out = new java.util.ArrayList<>();
        try {
            com.fasterxml.jackson.databind.ObjectMapper m = new com.fasterxml.jackson.databind.ObjectMapper();
            diff("", m.readTree(before), m.readTree(after), out);
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            out.add("the previous run.json is unreadable: " + e.getOriginalMessage());
        }
        return out;
    }

    private static void diff(String path, com.fasterxml.jackson.databind.JsonNode a, com.fasterxml.jackson.databind.JsonNode b, List<String> out) {
        if (a != null && b != null && a.isObject() && b.isObject()) {
            java.util.Set<String> names = new java.util.TreeSet<>();
            a.fieldNames().forEachRemaining(names::add);
            b.fieldNames().forEachRemaining(names::add);
            for (String n : names) diff(path.isEmpty() ? n : path + "." + n, a.get(n), b.get(n), out);
        } else if (a == null || b == null || !a.equals(b)) {
            out.add(path + ": " + (a == null ? "(unset)" : a.toString()) + " -> " + (b == null ? "(unset)" : b.toString()));
        }
    }

    public void onStep(java.util.function.LongConsumer c) {
        afterStep = c;
    }

    public List<LoraGroup> groups() {
        return groups;
    }

    long parameterCount() {
        return groups.stream().mapToLong(LoraGroup::parameterCount).sum();
    }

    // ------------------------------------------------------------------------------------------------

    public Result run(boolean resume) throws IOException {
        Files.createDirectories(runDir);
        Path runJson = runDir.resolve("run.json");
        String previousConfig = resume && Files.exists(runJson) ? Files.readString(runJson) : null;
        cfg.write(runJson);
        TrainCheckpoints ckpts = new TrainCheckpoints(runDir, log);
        TrainState st = new TrainState();
        String configHash = Integer.toHexString(cfg.toJson().hashCode());
        st.configHash = configHash;
        if (resume) {
            TrainCheckpoints.Valid c = ckpts.latestValid();
            if (c == null) log.println("[impasto] no usable checkpoint in " + ckpts.dir() + ": starting from step 0");
            else {
                st = c.state();
                loadState(c.tensors());
                log.printf(Locale.ROOT, "[impasto] resumed from %s (step %d, epoch %d, batch %d)%n", c.folder().getFileName(), st.step, st.epoch, st.batchInEpoch);
                if (!configHash.equals(st.configHash)) {
                    List<String> changed = previousConfig == null ? List.of() : changedSettings(previousConfig, cfg.toJson());
                    log.println("[impasto] warning: the config differs from the one the checkpoint was trained with"
                            + (changed.isEmpty() ? "" : " (" + String.join(", ", changed) + ")") + "; continuing with the new settings");
                    st.configHash = configHash;
                }
            }
        }
        Path metricsFile = runDir.resolve("metrics.jsonl");
        boolean lead = coll.rank() == 0;
        if (st.step > 0 && lead) MetricsLog.truncateAfter(metricsFile, st.step);
        coll.barrier();
        int world = coll.world();
        BucketBatcher batcher = new BucketBatcher(data, cfg.training.batchSize * world, cfg.training.seed);
        if (world > 1)
            for (var e : batcher.bucketSizes().entrySet())
                if (e.getValue() < cfg.training.batchSize * world)
                    throw new IllegalArgumentException("bucket " + e.getKey() + " has " + e.getValue() + " items, fewer than the global batch "
                            + cfg.training.batchSize + " x " + world + " GPUs: lower training.batchSize or add data");
        LrSchedule lrs = new LrSchedule(cfg.schedule.type, cfg.optimizer.lr, cfg.schedule.warmupSteps, cfg.training.steps, cfg.schedule.minLrRatio);
        AdamWConfig adam = new AdamWConfig(cfg.optimizer.beta1, cfg.optimizer.beta2, cfg.optimizer.eps, cfg.optimizer.weightDecay, cfg.optimizer.maxGradNorm);
        TimestepSampler ts = new TimestepSampler(TimestepSampler.Kind.parse(cfg.training.timestepSampling), cfg.training.sigmoidScale,
                cfg.training.logitMean, cfg.training.logitStd);
        if (lead) log.printf(Locale.ROOT, "[impasto] %s on %s%s: %s, LoRA %,d parameters in %d layers (%s), %d items in buckets %s%n", cfg.name, be.name(),
                world > 1 ? " (rank 0 of " + world + ")" : "", model.config, parameterCount(), groups.size(), String.join("; ", cfg.loraConfig().describe()),
                data.size(), batcher.bucketSizes());
        double firstLoss = Double.NaN;
        int globalBatch = cfg.training.batchSize * world;
        if (st.globalBatch > 0 && st.globalBatch != globalBatch) {
            int scaled = (int) ((long) st.batchInEpoch * st.globalBatch / globalBatch);
            if (lead) log.printf(Locale.ROOT, "[impasto] the checkpoint was written with %d items per batch, this run uses %d: continuing at batch %d of epoch %d%n",
                    st.globalBatch, globalBatch, scaled, st.epoch);
            st.batchInEpoch = scaled;
        }
        st.globalBatch = globalBatch;
        List<int[]> plan = batcher.epoch(st.epoch);
        Prefetch next = null;
        java.util.concurrent.ExecutorService prefetcher = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
            Thread th = new Thread(r, "impasto-data");
            th.setDaemon(true);
            return th;
        });
        try (MetricsLog metrics = lead ? new MetricsLog(metricsFile, st.step > 0) : null;
             Tensor loss = be.empty(DType.F32, 1); Tensor lossSum = be.empty(DType.F32, 1); Tensor normSq = be.empty(DType.F32, 1);
             ProgressBar bar = new ProgressBar("train", cfg.training.steps, "it", lead ? System.err : new PrintStream(java.io.OutputStream.nullOutputStream()),
                     System.console() != null, System::nanoTime)) {
            bar.resumeAt(st.step);
            long t0 = System.nanoTime();
            while (st.step < cfg.training.steps) {
                long step = st.step + 1;
                double lr = lrs.at(step);
                for (Tensor g : grads) be.fill(g, 0);
                be.fill(lossSum, 0);
                be.resetPeak();
                for (int micro = 0; micro < cfg.training.gradAccum; micro++) {
                    if (st.batchInEpoch >= plan.size()) {
                        st.epoch++;
                        st.batchInEpoch = 0;
                        plan = batcher.epoch(st.epoch);
                    }
                    int[] global = plan.get(st.batchInEpoch++);
                    HostBatch hb = next != null && next.step() == step && next.micro() == micro ? awaitPrepared(next) : null;
                    if (hb == null) hb = prepareShare(global, step, micro, ts);
                    // the next micro-batch is made on the host while the device works on this one
                    int nextMicro = micro + 1 < cfg.training.gradAccum ? micro + 1 : 0;
                    long nextStep = nextMicro == 0 ? step + 1 : step;
                    if (nextStep <= cfg.training.steps) {
                        int[] following = st.batchInEpoch < plan.size() ? plan.get(st.batchInEpoch) : batcher.epoch(st.epoch + 1).getFirst();
                        TimestepSampler tsf = ts;
                        next = new Prefetch(nextStep, nextMicro, prefetcher.submit(() -> prepareShare(following, nextStep, nextMicro, tsf)));
                    } else next = null;
                    execute(hb, loss);
                    be.axpby(lossSum, 1.0 / cfg.training.gradAccum, loss, 1);
                }
                if (world > 1) {
                    List<Tensor> reduce = new ArrayList<>(grads);
                    reduce.add(lossSum);
                    coll.allReduceMean(reduce);
                }
                be.sumOfSquares(normSq, grads);
                double[] ln = {be.toDoubles(lossSum)[0], be.toDoubles(normSq)[0]};
                double lossV = ln[0], gradNorm = Math.sqrt(ln[1]);
                boolean finite = Double.isFinite(lossV) && Double.isFinite(gradNorm);
                if (finite) {
                    be.adamw(params, grads, m, v, adam, step - st.skippedSteps, lr, normSq, 1);
                    for (LoraGroup g : groups) g.syncCompute(be);
                    for (int i = 0; i < ema.size(); i++) be.axpby(ema.get(i), 1 - cfg.training.ema, params.get(i), cfg.training.ema);
                    st.nonFiniteInARow = 0;
                    if (Double.isNaN(firstLoss)) firstLoss = lossV;
                    st.lossEma = Double.isNaN(st.lossEma) ? lossV : 0.95 * st.lossEma + 0.05 * lossV;
                } else {
                    st.skippedSteps++;
                    st.nonFiniteInARow++;
                    log.printf(Locale.ROOT, "%n[impasto] step %d: non-finite %s (loss %s, grad norm %s): step skipped (%d in a row)%n", step,
                            Double.isFinite(lossV) ? "gradient" : "loss", lossV, gradNorm, st.nonFiniteInARow);
                }
                st.step = step;
                double secs = (System.nanoTime() - t0) / 1e9;
                ObjectNode row = MetricsLog.row();
                row.put("step", step).put("loss", lossV).put("loss_ema", st.lossEma).put("lr", lr).put("grad_norm", gradNorm)
                        .put("epoch", st.epoch).put("skipped", !finite).put("peak_bytes", be.peakBytes()).put("seconds", secs);
                if (lead) metrics.write(row);
                // after the metrics row, so that metrics.jsonl shows the step that stopped the run too
                if (!finite && st.nonFiniteInARow >= cfg.training.maxNonFiniteSteps)
                    throw new TrainingDivergedException("training stopped at step " + step + ": " + st.nonFiniteInARow
                            + " steps in a row had a non-finite loss or gradient. Lower optimizer.lr (now " + cfg.optimizer.lr
                            + "), keep optimizer.maxGradNorm on, or check the cache for bad latents (impasto inspect).");
                bar.set(step);
                bar.status(String.format(Locale.ROOT, "loss %.4f (avg %.4f) | lr %.2e%s", lossV, st.lossEma, lr,
                        be.isGpu() ? String.format(Locale.ROOT, " | GPU %.1f GiB", be.peakBytes() / (double) (1L << 30)) : ""));
                boolean last = step == cfg.training.steps;
                if (lead && ((cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0) || last))
                    ckpts.save(st, this::writeState, cfg.checkpoint.keep);
                if (lead && ((cfg.sample.every > 0 && step % cfg.sample.every == 0) || last)) {
                    try {
                        sampleGrid(step);
                    } catch (IOException | RuntimeException | Error e) {
                        log.println("[impasto] sample grid at step " + step + " failed (" + e + "); training goes on");
                    }
                }
                afterStep.accept(step);
            }
        } catch (CudaOutOfMemoryException e) {
            throw new IllegalStateException("out of GPU memory in training step " + (st.step + 1) + " (batch " + cfg.training.batchSize
                    + ", base " + cfg.model.baseFormat + ", gradient checkpointing " + (cfg.training.gradientCheckpointing ? "on" : "off")
                    + ", peak so far " + CudaOutOfMemoryException.human(be.peakBytes()) + "): " + e.getMessage()
                    + (cfg.training.gradientCheckpointing ? "" : " Turn on --training.gradientCheckpointing true first.")
                    + (cfg.model.baseFormat.startsWith("nf4") || cfg.model.baseFormat.equals("int4") ? "" : " A 4-bit base (--model.baseFormat nf4) needs a quarter of the bf16 weight memory."), e);
        } finally {
            prefetcher.shutdownNow();
            if (sampleDecoder != null) {
                sampleDecoder.close();
                sampleDecoder = null;
            }
        }
        coll.barrier();
        if (!lead) return new Result(st.step, firstLoss, st.lossEma, st.skippedSteps, runDir, runDir.resolve("lora.safetensors"));
        Path lora = writeLoraFiles();
        try {
            LossPlot.write(metricsFile, runDir.resolve("loss.png"), cfg.name + ": training loss");
        } catch (IOException | RuntimeException | Error e) { // a machine without fonts can't draw text: the run still succeeds
            log.println("[impasto] could not draw loss.png (" + e + "); metrics.jsonl has the numbers");
        }
        log.printf(Locale.ROOT, "[impasto] done: %d steps, loss %.4f -> %.4f (moving average), %d skipped; LoRA in %s%n",
                st.step, firstLoss, st.lossEma, st.skippedSteps, lora);
        return new Result(st.step, firstLoss, st.lossEma, st.skippedSteps, runDir, lora);
    }

    /** This rank's share of one micro-batch, made on the host: packed latents, prompt embeddings, timesteps. */
    record HostBatch(int b, int c, int h, int w, int lt, float[] x0, float[] txt, float[] y, double[] t, int globalFirst, long step, int micro) {}

    /**
     * The host side of a micro-step (a pure function of its arguments, so it can run ahead on another thread):
     * {@code globalFirst} is the position of batch[0] in the global batch; every random draw of an item is keyed by
     * (seed, step, micro-batch, global position), so N ranks see exactly the noise and timesteps one rank would for the
     * whole global batch.
     */
    HostBatch prepare(int[] batch, int globalFirst, long step, int micro, TimestepSampler ts) {
        int b = batch.length;
        List<TrainingSet.Item> items = new ArrayList<>(b);
        for (int i : batch) items.add(data.item(i));
        TrainingSet.Item first = items.getFirst();
        int c = first.channels(), h = first.height(), w = first.width();
        int len = (h / 2) * (w / 2), feat = c * 4, lt = first.textLen();
        float[] x0 = new float[b * len * feat], txt = new float[b * lt * data.textDim()], y = new float[b * data.pooledDim()];
        double[] t = new double[b];
        TrainingSet.Item empty = null;
        for (int k = 0; k < b; k++) {
            TrainingSet.Item it = items.get(k);
            if (it.channels() != c || it.height() != h || it.width() != w || it.textLen() != lt)
                throw new IllegalStateException("batch mixes latent sizes: bucketing is broken");
            System.arraycopy(Latents.pack(it.latent(), c, h, w), 0, x0, k * len * feat, len * feat);
            SplittableRandom r = new SplittableRandom(mix(cfg.training.seed, step, micro * 1_000_003L + globalFirst + k));
            TrainingSet.Item cond = it;
            if (r.nextDouble() < cfg.training.captionDropout) cond = empty != null ? empty : (empty = data.emptyPrompt());
            System.arraycopy(cond.text(), 0, txt, k * lt * data.textDim(), lt * data.textDim());
            System.arraycopy(cond.pooled(), 0, y, k * data.pooledDim(), data.pooledDim());
            t[k] = ts.sample(r, len);
        }
        return new HostBatch(b, c, h, w, lt, x0, txt, y, t, globalFirst, step, micro);
    }

    /** Forward, loss and backward of a prepared micro-batch; gradients accumulate, loss (F32 [1]) receives its MSE. */
    private void execute(HostBatch hb, Tensor loss) {
        int b = hb.b(), gh = hb.h() / 2, gw = hb.w() / 2, len = gh * gw, feat = hb.c() * 4, lt = hb.lt();
        long step = hb.step();
        int micro = hb.micro();
        DType dt = model.dtype;
        try (Tensor tx0 = be.fromFloats(hb.x0(), dt, b, len, feat); Tensor ttxt = be.fromFloats(hb.txt(), dt, b, lt, data.textDim());
             Tensor ty = be.fromFloats(hb.y(), dt, b, data.pooledDim()); Tensor tt = be.fromDoubles(hb.t(), DType.F32, b);
             Tensor tg = be.empty(DType.F32, b); Tensor noise = be.empty(dt, b, len, feat); Tensor xt = be.empty(dt, b, len, feat);
             Tensor target = be.empty(dt, b, len, feat); Tensor grad = be.empty(dt, b, len, feat);
             Tensor pe = Rope.tensor(be, model.config, lt, gh, gw)) {
            be.fill(tg, cfg.training.guidance);
            for (int k = 0; k < b; k++)
                be.randn(noise.rows((long) k * len, (long) (k + 1) * len), mix(cfg.training.seed ^ 0x5EED, step, micro * 1_000_003L + hb.globalFirst() + k));
            be.flowMatchMix(xt, target, tx0, noise, tt);
            LoraContext ctx = LoraContext.training(mix(cfg.training.seed ^ 0xD50, step, micro));
            try (FluxModel.Pass p = model.forwardTrain(new FluxModel.Inputs(xt, ttxt, ty, tt, model.config.guidanceEmbed() ? tg : null, pe), ctx)) {
                be.mseLoss(loss, grad, p.output(), target, 1.0 / cfg.training.gradAccum);
                model.backward(p, grad, false);
            }
        }
    }

    /** A micro-batch being made ahead of time. */
    private record Prefetch(long step, int micro, java.util.concurrent.Future<HostBatch> batch) {}

    private HostBatch prepareShare(int[] global, long step, int micro, TimestepSampler ts) {
        int per = global.length / coll.world();
        return prepare(java.util.Arrays.copyOfRange(global, coll.rank() * per, (coll.rank() + 1) * per), coll.rank() * per, step, micro, ts);
    }

    private static HostBatch awaitPrepared(Prefetch p) {
        try {
            return p.batch().get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while preparing data", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
        }
    }

    static long mix(long seed, long step, long micro) {
        long z = seed * 0x9E3779B97F4A7C15L + step * 0xBF58476D1CE4E5B9L + micro * 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    // ------------------------------------------------------------------------------------------------ state

    private void writeState(Path file) throws IOException {
        List<SafetensorsWriter.Tensor> out = new ArrayList<>();
        for (int i = 0; i < params.size(); i++) {
            String n = names.get(i);
            out.add(raw(n, params.get(i)));
            out.add(raw(n + ".m", m.get(i)));
            out.add(raw(n + ".v", v.get(i)));
            if (!ema.isEmpty()) out.add(raw(n + ".ema", ema.get(i)));
        }
        SafetensorsWriter.write(file, Map.of("format", "impasto-train-state", "groups", groupsJson()), out);
    }

    private SafetensorsWriter.Tensor raw(String name, Tensor t) {
        return SafetensorsWriter.Tensor.ofBytes(name, t.dtype(), t.shape(), be.toBytes(t));
    }

    private String groupsJson() {
        StringBuilder sb = new StringBuilder("[");
        for (LoraGroup g : groups) {
            if (sb.length() > 1) sb.append(',');
            sb.append("{\"key\":\"").append(g.key).append("\",\"rank\":").append(g.rank).append(",\"pieces\":").append(g.pieces.size()).append('}');
        }
        return sb.append(']').toString();
    }

    private void loadState(Path file) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (int i = 0; i < params.size(); i++) {
                String n = names.get(i);
                restore(f, n, params.get(i));
                restore(f, n + ".m", m.get(i));
                restore(f, n + ".v", v.get(i));
                if (!ema.isEmpty()) restore(f, n + ".ema", ema.get(i));
            }
        }
        for (LoraGroup g : groups) g.syncCompute(be);
    }

    private void restore(SafetensorsFile f, String name, Tensor into) throws IOException {
        TensorEntry e = f.find(name).orElseThrow(() -> new IOException(f.path() + ": the checkpoint has no tensor " + name
                + " (was it written with another LoRA configuration? compare run.json)"));
        if (!java.util.Arrays.equals(e.shape(), into.shape()) || e.dtype() != into.dtype())
            throw new IOException(f.path() + ": " + name + " is " + e.dtype() + java.util.Arrays.toString(e.shape()) + ", the run needs "
                    + into.dtype() + java.util.Arrays.toString(into.shape()));
        MemorySegment seg = e.data();
        try (Tensor t = be.fromBytes(seg, e.dtype(), into.dtype(), into.shape())) {
            be.copy(into, t);
        }
    }

    // ------------------------------------------------------------------------------------------------ outputs

    /** Runs r with the LoRA weights to publish in the adapters: the EMA when enabled, else the masters as they are. */
    private void withPublishedWeights(Runnable r) {
        if (ema.isEmpty()) {
            r.run();
            return;
        }
        List<Tensor> saved = new ArrayList<>();
        for (int i = 0; i < params.size(); i++) {
            Tensor s = be.empty(params.get(i).dtype(), params.get(i).shape());
            be.copy(s, params.get(i));
            saved.add(s);
            be.copy(params.get(i), ema.get(i));
        }
        for (LoraGroup g : groups) g.syncCompute(be); // a forward pass (sampling) reads the compute copies
        try {
            r.run();
        } finally {
            for (int i = 0; i < params.size(); i++) {
                be.copy(params.get(i), saved.get(i));
                saved.get(i).close();
            }
            for (LoraGroup g : groups) g.syncCompute(be);
        }
    }

    private Path writeLoraFiles() throws IOException {
        Path diffusers = runDir.resolve("lora.safetensors"), kohya = runDir.resolve("lora_kohya.safetensors");
        IOException[] err = new IOException[1];
        withPublishedWeights(() -> {
            try {
                Map<String, String> meta = new LinkedHashMap<>();
                meta.put("impasto.run", cfg.name);
                meta.put("impasto.base", cfg.model.preset);
                meta.put("impasto.steps", Integer.toString(cfg.training.steps));
                var opts = dev.impasto.lora.LoraFileWriter.Options.defaults().withConfig(model.config);
                dev.impasto.lora.LoraFileWriter.write(diffusers, groups, be, dev.impasto.lora.LoraFormat.DIFFUSERS, meta, opts);
                dev.impasto.lora.LoraFileWriter.write(kohya, groups, be, dev.impasto.lora.LoraFormat.KOHYA, meta, opts);
            } catch (IOException e) {
                err[0] = e;
            }
        });
        if (err[0] != null) throw err[0];
        return diffusers;
    }

    private FluxEncoders sampleDecoder;
    private boolean sampleDecoderTried;

    /**
     * The autoencoder that turns sample latents into pictures (cache runs): sample.vae, else the one the cache names;
     * null (latent previews) for the toy world, "none", or when it cannot be loaded (said once; training goes on).
     */
    private FluxEncoders sampleDecoder() {
        if (sampleDecoderTried) return sampleDecoder;
        sampleDecoderTried = true;
        if (!(data instanceof LatentCache cache)) return null;
        String source = cfg.sample.vae.isBlank() ? cache.manifest().vaeWeights : cfg.sample.vae;
        if (source == null || source.isBlank() || source.equals("none")) return null;
        try {
            FluxEncoders.Configs configs = model.config.contextDim() == FluxEncoders.Configs.tiny().t5().dModel()
                    ? FluxEncoders.Configs.tiny() : FluxEncoders.Configs.flux(512);
            if (source.startsWith("tiny-random:")) {
                sampleDecoder = FluxEncoders.random(be, model.dtype, FluxEncoders.Configs.tiny(), Long.parseLong(source.substring("tiny-random:".length())));
            } else {
                sampleDecoder = FluxEncoders.load(be, model.dtype, configs, new FluxEncoders.Paths(null, null, null, null, Path.of(source)), BaseFormat.BF16);
            }
            log.println("[impasto] samples are decoded with " + (source.startsWith("tiny-random:") ? "the tiny random autoencoder" : source));
        } catch (IOException | RuntimeException e) {
            log.println("[impasto] samples stay latent previews: the autoencoder " + source + " could not be loaded (" + e.getMessage()
                    + "); set sample.vae to its weights or to none");
            sampleDecoder = null;
        }
        return sampleDecoder;
    }

    /** samples/step-N.png: one row per prompt, one column per seed, with the LoRA at full strength. */
    private void sampleGrid(long step) throws IOException {
        if (samplePrompts.isEmpty()) return;
        List<List<BufferedImage>> rows = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        for (var e : samplePrompts.entrySet()) {
            List<BufferedImage> row = new ArrayList<>();
            for (long seed : cfg.sample.seeds) {
                float[] lat = sampleLatent(e.getValue(), seed, 1.0);
                TrainingSet.Item it = e.getValue();
                FluxEncoders dec = sampleDecoder();
                row.add(dec != null ? dec.decode(lat, it.height(), it.width())
                        : LatentImages.fromLatent(lat, it.channels(), it.height(), it.width(), Math.max(1, 128 / it.width())));
            }
            rows.add(row);
            labels.add(e.getKey());
        }
        Path png = runDir.resolve("samples").resolve(String.format("step-%06d.png", step));
        Png.write(LatentImages.grid(rows, labels, cfg.sample.seeds.stream().map(s -> "seed " + s).toList(), cfg.name + " at step " + step), png,
                Map.of("step", Long.toString(step), "steps", Integer.toString(cfg.sample.steps),
                        "guidance", Double.toString(cfg.sample.effectiveGuidance(data instanceof ToyWorld, cfg.training.guidance)),
                        "seeds", cfg.sample.seeds.toString(), "Software", "impasto"));
    }

    /**
     * One sample [C, H, W] for a prompt (host floats), with the LoRA that is published: the EMA of the adapters when
     * training.ema is on (so the sample grids and the toy report show lora.safetensors), else the masters.
     */
    public float[] sampleLatent(TrainingSet.Item prompt, long seed, double loraScale) {
        float[][] out = new float[1][];
        withPublishedWeights(() -> out[0] = sampleCurrent(prompt, seed, loraScale));
        return out[0];
    }

    /** One sample with the adapters as they are now. */
    private float[] sampleCurrent(TrainingSet.Item prompt, long seed, double loraScale) {
        try (Tensor txt = be.fromFloats(prompt.text(), model.dtype, 1, prompt.textLen(), data.textDim());
             Tensor y = be.fromFloats(prompt.pooled(), model.dtype, 1, data.pooledDim());
             Tensor out = Sampler.sample(model, txt, y, prompt.height(), prompt.width(),
                     new Sampler.Settings(cfg.sample.steps, cfg.sample.effectiveGuidance(data instanceof ToyWorld, cfg.training.guidance), seed, !model.config.name().contains("schnell"), loraScale), null)) {
            return Latents.unpack(be.toFloats(out), prompt.channels(), prompt.height(), prompt.width());
        }
    }
}
