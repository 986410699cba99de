package dev.impasto.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.io.TensorEntry;
import dev.impasto.io.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A CPU training run killed with SIGKILL at an arbitrary step and resumed ends with exactly the LoRA weights of the
 * run that was never interrupted; a corrupt newest checkpoint is skipped with a message.
 */
class ResumeTest {
    static final int STEPS = 36;

    static String[] args(Path out, String name) throws Exception {
        return new String[] {"train", "--device", "cpu", "--output", out.toString(), "--name", name, "--model.weights", ToyFixtures.base().toString(),
                "--training.steps", Integer.toString(STEPS), "--checkpoint.every", "5", "--checkpoint.keep", "2", "--sample.every", "0",
                "--training.batchSize", "2", "--training.ema", "0.9", "--lora.dropout", "0.1"};
    }

    static Map<String, byte[]> tensors(Path file) throws Exception {
        Map<String, byte[]> m = new TreeMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (TensorEntry e : f.tensors()) m.put(e.name(), e.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
        }
        return m;
    }

    @Test
    void killedAndResumedRunEqualsUninterruptedRun(@TempDir Path out) throws Exception {
        // reference: one uninterrupted run, in process
        assertEquals(0, dev.impasto.cli.Main.commandLine().execute(args(out, "straight")));
        // the same run in a child JVM, killed with SIGKILL somewhere after its third checkpoint
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), "dev.impasto.cli.Main"));
        cmd.addAll(List.of(args(out, "killed")));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.resolve("child.log").toFile()).start();
        Path ck = out.resolve("killed").resolve("checkpoints");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        int killAfter = 15 + (int) (System.nanoTime() % 7); // an arbitrary step between checkpoints
        while (p.isAlive() && System.nanoTime() < deadline) {
            Path metrics = out.resolve("killed").resolve("metrics.jsonl");
            if (Files.exists(metrics) && MetricsLog.read(metrics).size() >= killAfter) break;
            Thread.sleep(20);
        }
        assertTrue(p.isAlive(), "the child finished before it could be killed; see " + out.resolve("child.log"));
        p.destroyForcibly();
        p.waitFor(30, TimeUnit.SECONDS);
        int done = MetricsLog.read(out.resolve("killed").resolve("metrics.jsonl")).size();
        assertTrue(done < STEPS, "killed at step " + done);
        // resume in process
        assertEquals(0, dev.impasto.cli.Main.commandLine().execute(concat(args(out, "killed"), "--resume")));
        assertEquals(tensors(out.resolve("straight").resolve("lora.safetensors")).keySet(), tensors(out.resolve("killed").resolve("lora.safetensors")).keySet());
        Map<String, byte[]> a = tensors(out.resolve("straight").resolve("lora.safetensors")), b = tensors(out.resolve("killed").resolve("lora.safetensors"));
        for (String k : a.keySet()) assertArrayEquals(a.get(k), b.get(k), "LoRA tensor " + k + " differs after kill at step " + done + " and resume");
        // the rewound metrics log has exactly one row per step
        assertEquals(STEPS, MetricsLog.read(out.resolve("killed").resolve("metrics.jsonl")).size());
        assertTrue(Files.exists(ck));
    }

    @Test
    void aChangedConfigIsNamedWhenResuming() {
        TrainConfig a = TrainConfig.defaults(), b = TrainConfig.defaults();
        b.optimizer.lr = a.optimizer.lr * 2;
        b.training.steps = a.training.steps + 5;
        List<String> changed = Trainer.changedSettings(a.toJson(), b.toJson());
        assertEquals(2, changed.size(), changed.toString());
        assertTrue(changed.get(0).startsWith("optimizer.lr: "), changed.toString());
        assertTrue(changed.get(1).startsWith("training.steps: " + a.training.steps + " -> " + b.training.steps), changed.toString());
        assertTrue(Trainer.changedSettings(a.toJson(), a.toJson()).isEmpty());
        assertTrue(Trainer.changedSettings("{not json", a.toJson()).getFirst().contains("unreadable"));
    }

    @Test
    void corruptNewestCheckpointIsSkippedWithAMessage(@TempDir Path out) throws Exception {
        String[] a = args(out, "run");
        a[java.util.Arrays.asList(a).indexOf("--training.steps") + 1] = "12";
        assertEquals(0, dev.impasto.cli.Main.commandLine().execute(a));
        Path ck = out.resolve("run").resolve("checkpoints");
        Path newest = ck.resolve("step-00000012").resolve("state.safetensors");
        byte[] bytes = Files.readAllBytes(newest);
        bytes[bytes.length - 3] ^= 0x5A;
        Files.write(newest, bytes);
        TrainCheckpoints tc = new TrainCheckpoints(out.resolve("run"), new PrintStream(new ByteArrayOutputStream()));
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        TrainCheckpoints.Valid v = new TrainCheckpoints(out.resolve("run"), new PrintStream(log)).latestValid();
        assertEquals(10, v.state().step);
        assertTrue(log.toString().contains("skipping checkpoint step-00000012") && log.toString().contains("corrupt"), log.toString());
        // an interrupted save (no state.json) is skipped too
        Files.delete(ck.resolve("step-00000010").resolve("state.json"));
        assertEquals(null, tc.latestValid());
    }

    static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
