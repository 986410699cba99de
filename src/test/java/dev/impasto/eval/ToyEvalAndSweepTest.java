package dev.impasto.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.eval.cli.EvalCommand;
import dev.impasto.eval.cli.SweepCommand;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * impasto sweep and impasto eval end to end in the toy world: two LoRAs trained from one base (learning rate 2e-4
 * vs 1e-3, 60 steps), compared side by side, then one of them evaluated on its own with a strength sweep.
 */
class ToyEvalAndSweepTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir static Path dir;
    static Path runs;
    static String sweepOut;
    static int sweepRc;

    record Run(int rc, String out, String err) {}

    static Run run(Object command, String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = new CommandLine(command);
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int rc = cl.execute(args);
        return new Run(rc, out.toString(), err.toString());
    }

    /** A small, fast toy sweep: 60 steps at batch 2, samples at 8 steps, no intermediate checkpoints. */
    static String[] sweepArgs(String grid, int steps, String... more) throws Exception {
        List<String> a = new java.util.ArrayList<>(List.of("--output", runs.toString(), "--name", "lr", "--weights", ToyEvalFixtures.baseFile().toString(),
                "--device", "cpu", "--grid", grid, "--set", "training.steps=" + steps, "--set", "training.batchSize=2", "--set", "sample.every=0",
                "--set", "sample.steps=8", "--set", "checkpoint.every=0"));
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    @BeforeAll
    static void sweep() throws Exception {
        runs = dir.resolve("runs");
        Run r = run(new SweepCommand(), sweepArgs("optimizer.lr=2e-4,1e-3", 60, "--eval.seeds", "1-3", "--eval.steps", "8"));
        sweepRc = r.rc;
        sweepOut = r.out + r.err;
    }

    @Test
    void sweepTrainsTheGridAndComparesTheRuns() throws Exception {
        assertEquals(0, sweepRc, sweepOut);
        Path cmp = runs.resolve("lr-comparison");
        JsonNode sweep = JSON.readTree(cmp.resolve("sweep.json").toFile());
        assertEquals(2, sweep.path("runs").size());
        assertEquals("lr-lr2e-4", sweep.path("runs").get(0).path("name").asText());
        assertEquals("trained", sweep.path("runs").get(1).path("status").asText());
        assertEquals("1e-3", sweep.path("runs").get(1).path("values").path("optimizer.lr").asText());
        for (String n : List.of("lr-lr2e-4", "lr-lr1e-3")) assertTrue(Files.isRegularFile(runs.resolve(n).resolve("lora.safetensors")), n);

        EvalResult r = EvalResult.readJson(cmp.resolve("report.json"));
        assertEquals(List.of("training", "base", "lr-lr2e-4", "lr-lr1e-3"), r.sets().stream().map(EvalResult.SetResult::name).toList());
        assertTrue(r.comparedFields().contains("optimizer.lr"));
        assertEquals("0.001", r.loras().get(1).config().get("optimizer.lr"));
        assertTrue(r.loras().get(1).finalLoss() < r.loras().get(0).finalLoss(), "final losses " + r.loras());
        EvalResult.SetResult base = r.set("base", false), slow = r.set("lr-lr2e-4", false), fast = r.set("lr-lr1e-3", false);
        assertEquals(12, base.count());
        // the base paints style A: dark backgrounds and saturated colours; style B (training) is pale: no near-black at all
        assertEquals(0.0, r.set("training", false).summary().get("near_black").mean());
        assertTrue(base.summary().get("near_black").mean() > 0.1, base.summary().toString());
        assertTrue(base.summary().get("saturation").mean() > 0.55, base.summary().toString());
        // both LoRAs remove the dark backgrounds; the higher learning rate moves saturation and colourfulness to B's as well
        assertTrue(slow.gapClosed().get("near_black") > 0.9 && fast.gapClosed().get("near_black") > 0.9, slow.gapClosed() + " / " + fast.gapClosed());
        assertTrue(fast.gapClosed().get("saturation") > 0.8, fast.gapClosed().toString());
        assertTrue(fast.gapClosed().get("colourfulness") > slow.gapClosed().get("colourfulness"), slow.gapClosed() + " / " + fast.gapClosed());
        assertTrue(fast.styleScore() > slow.styleScore() + 0.1, slow.styleScore() + " vs " + fast.styleScore());
        assertTrue(fast.distanceSd() < slow.distanceSd() && slow.distanceSd() < base.distanceSd());
        assertTrue(fast.kid().mean() < base.kid().mean() / 2, fast.kid() + " vs " + base.kid());
        assertEquals(5, r.grids().size()); // 4 prompts + the training strip
        assertTrue(Files.readString(cmp.resolve("report.html")).contains("LoRAs compared"));

        // a rerun finds both runs finished with the same config and trains nothing
        Run again = run(new SweepCommand(), sweepArgs("optimizer.lr=2e-4,1e-3", 60, "--no-eval"));
        assertEquals(0, again.rc, again.out + again.err);
        sweep = JSON.readTree(cmp.resolve("sweep.json").toFile());
        assertEquals("skipped", sweep.path("runs").get(0).path("status").asText());
        assertEquals("skipped", sweep.path("runs").get(1).path("status").asText());
        // ... and refuses to mix a changed config into an existing run folder
        Run changed = run(new SweepCommand(), sweepArgs("optimizer.lr=2e-4", 70, "--no-eval"));
        assertEquals(1, changed.rc);
        assertTrue(changed.err.contains("exists with a different config") && changed.err.contains("training.steps 60 -> 70"), changed.err);
    }

    @Test
    void evalOfOneRunWithAStrengthSweep() throws Exception {
        assertEquals(0, sweepRc, sweepOut);
        Path run = runs.resolve("lr-lr1e-3");
        Run r = run(new EvalCommand(), "--run", run.toString(), "--seeds", "1,2", "--steps", "8", "--scales", "0.5,1", "--transfer-prompt", "a ring");
        assertEquals(0, r.rc, r.out + r.err);
        Path out = run.resolve("eval");
        assertTrue(r.out.contains(out.resolve("report.html").toString()), r.out);
        EvalResult e = EvalResult.readJson(out.resolve("report.json"));
        assertEquals(List.of("disc", "square", "stripes", "ring"), e.settings().prompts);
        assertEquals("toy world, style B (128 pictures)", e.trainingImages());
        double b = e.set("base", false).summary().get("near_black").mean(), half = e.set("lr-lr1e-3 x0.5", false).summary().get("near_black").mean(),
                full = e.set("lr-lr1e-3", false).summary().get("near_black").mean();
        assertTrue(b > half && half >= full, b + " > " + half + " >= " + full);
        assertEquals(3, e.transferSets().size());
        assertEquals(2, e.set("lr-lr1e-3", true).count());
        assertTrue(Files.isRegularFile(out.resolve("plots/scale-sweep.png")));
        assertTrue(Files.isRegularFile(out.resolve("grids/transfer-00-a-ring.png")));
        assertEquals(8 * 3 + 2 * 3, e.images().size());
        assertTrue(Files.isRegularFile(out.resolve("images/lr-lr1e-3_x0.5/p03-s2.png")));
    }

    @Test
    void evalWithATinyRandomClipScoresEveryPictureAndComputesKidOnItsEmbeddings() throws Exception {
        assertEquals(0, sweepRc, sweepOut);
        Path run = runs.resolve("lr-lr1e-3"), out = dir.resolve("clip-eval");
        Run r = run(new EvalCommand(), "--run", run.toString(), "--seeds", "1,2", "--steps", "8", "--clip", "tiny-random", "--features", "clip",
                "--no-images", "--out", out.toString());
        assertEquals(0, r.rc, r.out + r.err);
        assertTrue(r.out.contains("CLIP score with tiny random CLIP") && r.out.contains("also the KID features"), r.out);
        JsonNode j = JSON.readTree(out.resolve("report.json").toFile());
        String name = j.path("clipModel").asText();
        assertTrue(name.startsWith("tiny random CLIP"), name);
        assertEquals(name, j.path("kidFeatures").asText(), "KID on the CLIP extractor's embeddings");
        EvalResult e = EvalResult.readJson(out.resolve("report.json"));
        assertEquals(2 * 4 * 2, e.images().size());
        for (String set : List.of("base", "lr-lr1e-3")) {
            EvalResult.SetResult s = e.set(set, false);
            double mean = 0;
            for (EvalResult.ImageResult im : e.images())
                if (im.set().equals(set)) {
                    assertTrue(im.clipScore() != null && im.clipScore() >= 0 && im.clipScore() <= 2.5, set + " " + im.prompt() + ": " + im.clipScore());
                    mean += im.clipScore() / 8;
                }
            assertEquals(mean, s.clipScore(), 1e-12, set);
            assertTrue(Double.isFinite(s.clipScore()) && s.clipScore() >= 0 && s.clipScore() <= 2.5, set + ": " + s.clipScore());
            assertEquals(8, s.clipScoreSummary().count());
            assertTrue(s.clipScoreSummary().p10() <= s.clipScoreSummary().median() && s.clipScoreSummary().median() <= s.clipScoreSummary().p90());
            assertEquals(List.of("disc", "square", "stripes", "ring"), List.copyOf(s.clipScoreByPrompt().keySet()));
            for (double v : s.clipScoreByPrompt().values()) assertTrue(v >= 0 && v <= 2.5, s.clipScoreByPrompt().toString());
            assertTrue(s.kid() != null && Double.isFinite(s.kid().mean()), set + ": " + s.kid());
        }
        assertEquals(null, e.set("training", false).clipScore());
        assertTrue(e.plots().stream().anyMatch(f -> f.file().equals("plots/hist-clip-score.png")));
        assertTrue(Files.isRegularFile(out.resolve("plots/hist-clip-score.png")));
        String html = Files.readString(out.resolve("report.html"));
        assertTrue(html.contains("<h2>CLIP score</h2>") && html.contains("Mean CLIP score per prompt"), "report.html has the CLIP section");
    }

    @Test
    void clipOptionsAreChecked() {
        assertEquals(0, sweepRc, sweepOut);
        String run = runs.resolve("lr-lr1e-3").toString();
        Run r = run(new EvalCommand(), "--run", run, "--features", "clip");
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("--features clip needs a CLIP model: give --clip"), r.err);
        r = run(new EvalCommand(), "--run", run, "--clip", dir.resolve("no-such-clip").toString());
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("no-such-clip: no such file or folder"), r.err);
        r = run(new EvalCommand(), "--run", run, "--features", "inception");
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("--features: palette, clip or none, got inception"), r.err);
    }

    @Test
    void evalNeedsSomethingToEvaluate() {
        Run r = run(new EvalCommand());
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("--lora FILE, --run DIR or --runs A,B,C"), r.err);
        r = run(new EvalCommand(), "--run", dir.resolve("nope").toString());
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("no such run folder"), r.err);
        r = run(new SweepCommand(), "--grid", "lora.rank", "--dry-run");
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("expected FIELD=V1,V2"), r.err);
    }

    @Test
    void aRealModelSweepHandsEvalTheModelAsTrainedAndItsEncoders() throws Exception {
        Path w = Files.writeString(dir.resolve("flux1-dev.safetensors"), "not read by a dry run");
        String[] common = {"--output", dir.resolve("real").toString(), "--weights", w.toString(), "--device", "cuda", "--set", "model.preset=flux-dev",
            "--set", "model.baseFormat=nf4", "--grid", "lora.rank=8,16", "--dry-run"};
        Run r = run(new SweepCommand(), common);
        assertEquals(2, r.rc, r.out + r.err);
        assertTrue(r.err.contains("--eval.encoders DIR is needed to compare runs of a real FLUX model"), r.err);
        Path enc = Files.createDirectories(dir.resolve("FLUX.1-dev"));
        String[] withEncoders = java.util.stream.Stream.concat(java.util.Arrays.stream(common), java.util.stream.Stream.of("--eval.encoders", enc.toString()))
                .toArray(String[]::new);
        r = run(new SweepCommand(), withEncoders);
        assertEquals(0, r.rc, r.out + r.err);
        assertTrue(r.out.contains("impasto eval --runs ") && r.out.contains("--title 'impasto sweep: sweep'")
                && r.out.contains("--model " + w + " --arch flux-dev --base-format nf4 --device cuda --encoders " + enc), r.out);
        // what would fail the comparison after the training is refused before it
        for (String[] bad : new String[][] {{"--eval.features", "clip"}, {"--eval.clip", dir.resolve("no-clip").toString()}, {"--eval.features", "inception"}}) {
            String[] a = java.util.stream.Stream.concat(java.util.Arrays.stream(withEncoders), java.util.Arrays.stream(bad)).toArray(String[]::new);
            Run b = run(new SweepCommand(), a);
            assertEquals(2, b.rc, String.join(" ", bad) + ": " + b.out + b.err);
            assertTrue(b.err.contains(bad[0]), b.err);
        }
        String[] noEval = java.util.stream.Stream.concat(java.util.Arrays.stream(common), java.util.stream.Stream.of("--no-eval")).toArray(String[]::new);
        assertEquals(0, run(new SweepCommand(), noEval).rc, "training only needs no encoders");
    }

    @Test
    void sweepDryRunPlansTheProduct() {
        Run r = run(new SweepCommand(), "--output", dir.resolve("dry").toString(), "--grid", "lora.rank+lora.alpha=4,8,16", "--grid", "optimizer.lr=1e-4,5e-4",
                "--set", "training.steps=10", "--dry-run");
        assertEquals(0, r.rc, r.out + r.err);
        assertTrue(r.out.contains("sweep sweep: 6 runs"), r.out);
        assertTrue(r.out.contains("sweep-rank16-lr5e-4"), r.out);
        assertTrue(r.out.contains("--training.steps 10 --lora.rank 4 --lora.alpha 4 --optimizer.lr 1e-4 --name sweep-rank4-lr1e-4"), r.out);
        r = run(new SweepCommand(), "--grid", "lora.rank+lora.alpha=4,8", "--set", "lora.alpha=8", "--dry-run");
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("--set lora.alpha is also a --grid axis"), r.err);
        assertTrue(!Files.exists(dir.resolve("dry")), "a dry run writes nothing");
    }
}
