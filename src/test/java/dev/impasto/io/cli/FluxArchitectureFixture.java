package dev.impasto.io.cli;

import dev.impasto.io.Fixtures;
import dev.impasto.io.flux.FluxArchitecture;
import dev.impasto.tensor.DType;

import java.io.IOException;
import java.nio.file.Path;

/** A tiny model with 3 double and 2 single blocks, to see grouping. */
final class FluxArchitectureFixture {
    private FluxArchitectureFixture() {}

    static void writeThreeBlocks(Path p) throws IOException {
        FluxArchitecture a = new FluxArchitecture(16, 16, 64, 2, 32, 256, 3, 2, 32, 16, 256, true, true);
        Fixtures.writeBfl(p, Fixtures.randomBfl(a, 3), "", DType.BF16);
    }
}
