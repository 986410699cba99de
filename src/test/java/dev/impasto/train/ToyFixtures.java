package dev.impasto.train;

import java.io.IOException;
import java.io.PrintStream;
import java.io.OutputStream;
import java.nio.file.Path;

/** One toy base per test JVM (pretraining it takes a minute on 2 cores). */
final class ToyFixtures {
    private static Path base;

    private ToyFixtures() {}

    static synchronized Path base() throws IOException {
        if (base == null) base = ToyBase.ensure(Path.of("target", "toy-base-test"), new PrintStream(OutputStream.nullOutputStream()));
        return base;
    }

    static TrainConfig loraConfig(Path out, String name, int steps) throws IOException {
        TrainConfig c = new TrainConfig();
        c.name = name;
        c.output = out.toString();
        c.device = "cpu";
        c.model.weights = base().toString();
        c.training.steps = steps;
        c.sample.every = 0;
        return c;
    }
}
