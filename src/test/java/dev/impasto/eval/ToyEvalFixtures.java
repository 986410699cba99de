package dev.impasto.eval;

import dev.impasto.train.ToyBase;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;

/** The toy base, shared with the trainer's tests (target/toy-base-test): built once, about a minute on 2 cores. */
public final class ToyEvalFixtures {
    public static final Path BASE_DIR = Path.of("target", "toy-base-test");

    private ToyEvalFixtures() {}

    public static synchronized Path baseFile() throws IOException {
        return ToyBase.ensure(BASE_DIR, new PrintStream(OutputStream.nullOutputStream()));
    }
}
