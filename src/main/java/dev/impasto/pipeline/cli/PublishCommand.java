package dev.impasto.pipeline.cli;

import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.hub.HubHttp;
import dev.impasto.pipeline.hub.HubUploader;
import dev.impasto.pipeline.hub.UploadPlan;
import dev.impasto.pipeline.publish.DatasetRepoBuilder;
import dev.impasto.pipeline.publish.ModelRepoBuilder;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "publish", sortOptions = false,
        description = "Writes a Hugging Face repo folder and uploads it over the Hub HTTP API (create, preupload, LFS, commit). With --run: a model repo from a training run (LoRA in diffusers and kohya naming, model card, training config, sample grid, loss plot). With --dataset: a dataset repo from a curated folder (imagefolder or parquet + dataset card). The token comes from HF_TOKEN / HUGGING_FACE_HUB_TOKEN or --token-file and is never printed.",
        footer = {"", "Examples:",
                "  impasto publish --run runs/impressionism --repo me/flux-impressionism-lora --dry-run",
                "  HF_TOKEN=... impasto publish --dataset curated --repo me/wikiart-impressionism-1000 --format parquet"})
public final class PublishCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @Option(names = "--run", paramLabel = "DIR", description = "Training run folder (lora.safetensors and/or lora_kohya.safetensors, run.json, samples/, loss.png): publishes a model repo.")
    Path run;

    @Option(names = "--dataset", paramLabel = "DIR", description = "Curated folder (train/metadata.jsonl, report/): publishes a dataset repo.")
    Path dataset;

    @Option(names = "--repo", required = true, paramLabel = "OWNER/NAME", description = "Repo id on the Hub.")
    String repo;

    @Option(names = "--out", paramLabel = "DIR", description = "Where the repo folder is written (default: <run or dataset>/hub_repo).")
    Path out;

    @Option(names = "--trigger", paramLabel = "WORD", description = "Trigger word for the model card (default: \"trigger\" in run.json).")
    String trigger;

    @Option(names = "--dataset-repo", paramLabel = "OWNER/NAME", description = "Dataset repo to link from the model card.")
    String datasetRepo;

    @Option(names = "--format", paramLabel = "F", defaultValue = "imagefolder", description = "Dataset layout: imagefolder or parquet (default: ${DEFAULT-VALUE}).")
    String format;

    @Option(names = "--private", description = "Create the repo private.")
    boolean privateRepo;

    @Option(names = "--revision", paramLabel = "REV", defaultValue = "main", description = "Branch to commit to (default: ${DEFAULT-VALUE}).")
    String revision;

    @Option(names = {"-m", "--message"}, paramLabel = "TEXT", description = "Commit summary (default: \"Upload with impasto\").")
    String message = "Upload with impasto";

    @Mixin HubOptions hub = new HubOptions();

    @Option(names = "--dry-run", description = "Write the repo folder and print the upload plan; contact nothing.")
    boolean dryRun;

    @Option(names = "--retries", paramLabel = "N", defaultValue = "6", description = "Attempts per request on 5xx/429/connection errors (default: ${DEFAULT-VALUE}).")
    int retries;

    @Option(names = "--parallel", paramLabel = "N", defaultValue = "4", description = "LFS files uploaded at once (default: ${DEFAULT-VALUE}).")
    int parallel;

    Map<String, String> env = System.getenv();

    @Override
    public Integer call() throws Exception {
        PrintWriter o = spec.commandLine().getOut();
        PrintStream log = System.err;
        try {
            if ((run == null) == (dataset == null)) throw new PipelineException("give exactly one of --run (model repo) or --dataset (dataset repo)");
            if (retries < 1) throw new PipelineException("option --retries must be >= 1");
            String type = run != null ? "model" : "dataset";
            Path folder = out != null ? out : (run != null ? run : dataset).resolve("hub_repo");
            if (run != null) ModelRepoBuilder.build(run, folder, checkRepo(repo), trigger, datasetRepo);
            else DatasetRepoBuilder.build(dataset, folder, checkRepo(repo), format);
            o.println("wrote " + type + " repo folder " + folder);
            UploadPlan plan = UploadPlan.of(folder, repo, type, revision, log);
            if (dryRun) {
                o.print(plan.describe());
                o.println("dry run: nothing uploaded");
                o.flush();
                return 0;
            }
            HubHttp http = hub.http(hub.token(env, true), retries, Duration.ofMinutes(5));
            HubUploader.Result r = new HubUploader(http, log, parallel).upload(plan, privateRepo, message, "Uploaded by impasto publish.");
            o.println("committed " + r.commitOid() + " (" + r.lfsUploaded() + " LFS uploaded, " + r.lfsAlreadyStored() + " already stored, "
                    + r.regular() + " regular): " + r.commitUrl());
            o.flush();
            return 0;
        } catch (PipelineException e) {
            spec.commandLine().getErr().println("publish: " + e.getMessage());
            spec.commandLine().getErr().flush();
            return 2;
        }
    }

    private static String checkRepo(String repo) {
        if (!repo.matches("[A-Za-z0-9][\\w.-]*/[\\w.-]+")) throw new PipelineException("option --repo: '" + repo + "' is not of the form owner/name");
        return repo;
    }
}
