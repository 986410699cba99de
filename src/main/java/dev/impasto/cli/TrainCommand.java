package dev.impasto.cli;

import dev.impasto.Backends;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.model.CheckpointWeights;
import dev.impasto.model.FluxConfig;
import dev.impasto.model.FluxModel;
import dev.impasto.model.WeightProvider;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.train.LatentCache;
import dev.impasto.train.ToyBase;
import dev.impasto.train.ToyReport;
import dev.impasto.train.ToyWorld;
import dev.impasto.train.TrainConfig;
import dev.impasto.train.Trainer;
import dev.impasto.train.TrainingSet;
import dev.impasto.util.ProgressBar;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** `impasto train`: LoRA training. With no arguments: the toy world on the CPU (or GPU), end to end. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Trains a LoRA on a FLUX model by flow matching.",
                "With no arguments it runs the toy world: pretrains a tiny FLUX on style A (once), trains a LoRA on style B,",
                "and writes samples, a loss plot, a base-vs-LoRA comparison and the LoRA files to runs/toy-lora/.",
                "Every field of the config (run.json) is also a flag: --lora.rank 32, --optimizer.lr 2e-4, ..."})
public final class TrainCommand implements Callable<Integer> {
    @Option(names = "--config", paramLabel = "run.json", description = "Training config (JSON); flags override its fields.")
    Path config;

    @Option(names = "--resume", description = "Continue from the newest intact checkpoint of the run folder.")
    boolean resume;

    @Option(names = "--print-config", description = "Print the effective config and exit.")
    boolean printConfig;

    @Spec
    CommandSpec spec;

    private ConfigFlags flags;
    private final PrintStream out;

    public TrainCommand() {
        this(System.out);
    }

    public TrainCommand(PrintStream out) {
        this.out = out;
    }

    /** The command with one flag per config field. */
    public static CommandLine commandLine(PrintStream out) {
        TrainCommand c = new TrainCommand(out);
        CommandLine cl = new CommandLine(c);
        c.flags = new ConfigFlags(TrainConfig.defaults(), cl.getCommandSpec());
        return cl;
    }

    @Override
    public Integer call() throws Exception {
        TrainConfig cfg = config == null ? TrainConfig.defaults() : TrainConfig.load(config);
        cfg.apply(flags.patch(spec.commandLine().getParseResult()), "command line");
        try {
            cfg.validate();
        } catch (IllegalArgumentException e) {
            out.println(e.getMessage());
            return 2;
        }
        if (printConfig) {
            out.println(cfg.toJson());
            return 0;
        }
        return run(cfg, resume, out);
    }

    static Integer run(TrainConfig cfg, boolean resume, PrintStream out) throws Exception {
        boolean toy = cfg.data.cache.isBlank();
        String weights = cfg.model.weights;
        if (toy && weights.isBlank()) weights = ToyBase.ensure(Path.of(cfg.output, "toy-base"), System.err).toString();
        String w = weights;
        if (cfg.gpus == 1) {
            try (Backend be = Backends.open(cfg.device)) {
                return trainRank(cfg, resume, out, be, w, dev.impasto.train.dist.Collective.SOLO);
            }
        }
        int[] devices = new int[cfg.gpus];
        for (int i = 0; i < devices.length; i++) devices[i] = i;
        try (var group = new dev.impasto.train.dist.NcclCollective.Group(devices, 600)) {
            System.err.println("[impasto] data-parallel training on " + cfg.gpus + " GPUs (NCCL " + dev.impasto.train.dist.NcclCollective.version() + ")");
            var codes = dev.impasto.train.dist.DataParallel.run(cfg.gpus, group::abort, rank -> {
                try (var be = dev.impasto.tensor.cuda.CudaBackend.open(rank)) {
                    return trainRank(cfg, resume, rank == 0 ? out : new PrintStream(java.io.OutputStream.nullOutputStream()), be, w,
                            new dev.impasto.train.dist.NcclCollective(group, rank, be));
                }
            });
            return codes.getFirst();
        }
    }

    /**
     * The architecture of a cache or synthetic run: --model.preset when given; with the default (flux-toy, which only
     * the built-in toy data uses) the one whose text and pooled widths the cache was made with (flux-dev for
     * synthetic data).
     */
    public static FluxConfig architecture(TrainConfig cfg, LatentCache cache, boolean lead) throws java.io.IOException {
        if (!cfg.model.preset.equals("flux-toy")) {
            FluxConfig arch = FluxConfig.load(cfg.model.preset);
            if (cache != null && (cache.manifest().textDim != arch.contextDim() || cache.manifest().pooledDim != arch.vecDim()))
                throw new IllegalArgumentException("--model.preset " + cfg.model.preset + " takes text embeddings of width " + arch.contextDim()
                        + " and pooled " + arch.vecDim() + ", the cache " + cfg.data.cache + " holds " + cache.manifest().textDim + " and "
                        + cache.manifest().pooledDim + ": pick the preset the cache was made for (or re-cache with its encoders)");
            return arch;
        }
        if (cache == null) return FluxConfig.dev();
        for (FluxConfig c : List.of(FluxConfig.dev(), FluxConfig.tiny()))
            if (cache.manifest().textDim == c.contextDim() && cache.manifest().pooledDim == c.vecDim()) {
                if (lead) System.err.println("[impasto] " + cfg.data.cache + ": text width " + c.contextDim() + ", training " + c.name()
                        + " (set --model.preset to choose)");
                return c;
            }
        throw new IllegalArgumentException("the cache " + cfg.data.cache + " holds text embeddings of width " + cache.manifest().textDim
                + " and pooled " + cache.manifest().pooledDim + ", which no preset takes: pass --model.preset with a JSON config of those widths");
    }

    /** Builds the data and the model of one rank on its backend and trains. */
    private static int trainRank(TrainConfig cfg, boolean resume, PrintStream out, Backend be, String weights,
                                 dev.impasto.train.dist.Collective coll) throws Exception {
        boolean toy = cfg.data.cache.isBlank();
        boolean synthetic = cfg.data.cache.startsWith("synthetic");
        DType dt = Backends.computeType(be);
        boolean lead = coll.rank() == 0;
        LatentCache cache = toy || synthetic ? null : LatentCache.open(Path.of(cfg.data.cache));
        FluxConfig arch;
        try {
            arch = toy ? ToyWorld.config() : architecture(cfg, cache, lead);
        } catch (RuntimeException | java.io.IOException e) {
            if (cache != null) cache.close();
            throw e;
        }
        try (TrainingSet data = toy ? new ToyWorld(ToyWorld.Style.valueOf(cfg.data.toyStyle), cfg.data.toyPerClass, 11)
                : synthetic ? dev.impasto.train.SyntheticSet.parse(cfg.data.cache, arch.contextDim(), arch.vecDim())
                : cache;
             FluxCheckpoint ckpt = weights.isBlank() ? null : FluxCheckpoint.open(Path.of(weights))) {
            WeightProvider wp;
            ProgressBar bar = null;
            if (ckpt == null) {
                if (lead) System.err.println("[impasto] no --model.weights: training on RANDOM " + cfg.model.baseFormat + " base weights (benchmarks only)");
                wp = new dev.impasto.model.RandomQuantizedWeights(be, dt, BaseFormat.parse(cfg.model.baseFormat), 1);
            } else {
                if (!ckpt.isComplete()) ckpt.requireComplete();
                bar = new ProgressBar("load " + Path.of(weights).getFileName(), ckpt.weights().size(), "tensors",
                        lead ? System.err : new PrintStream(java.io.OutputStream.nullOutputStream()), System.console() != null, System::nanoTime);
                wp = new CheckpointWeights(ckpt, be, dt, BaseFormat.parse(cfg.model.baseFormat), false, bar);
            }
            try (FluxModel model = FluxModel.build(arch, be, dt, wp)) {
                if (bar != null) bar.close();
                return train(cfg, resume, out, be, model, data, toy, coll);
            }
        }
    }

    private static int train(TrainConfig cfg, boolean resume, PrintStream out, Backend be, FluxModel model, TrainingSet data, boolean toy,
                             dev.impasto.train.dist.Collective coll) throws Exception {
        Trainer t = new Trainer(cfg, be, model, data, System.err, coll);
        Trainer.Result r = t.run(resume);
        if (coll.rank() != 0) return 0;
        out.printf(java.util.Locale.ROOT, "trained %d steps: loss %.4f -> %.4f (moving average)%n", r.steps(), r.firstLoss(), r.lastLossEma());
        out.println("  LoRA (diffusers/peft): " + r.lora());
        out.println("  LoRA (kohya):          " + r.runDir().resolve("lora_kohya.safetensors"));
        out.println("  loss plot:             " + r.runDir().resolve("loss.png"));
        out.println("  samples:               " + r.runDir().resolve("samples"));
        if (toy) {
            ToyReport rep = ToyReport.make(t, (ToyWorld) data, r.runDir());
            out.print(rep.text());
            out.println("  comparison:            " + r.runDir().resolve("comparison.png"));
        }
        return 0;
    }
}
