package dev.impasto.api;

import dev.impasto.lora.LoraFileWriter;
import dev.impasto.lora.LoraFormat;
import dev.impasto.model.LoraConfig;
import dev.impasto.model.LoraGroup;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.cpu.CpuBackend;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** A rank-4 LoRA for {@link FluxGenerator#tinyRandom} with non-zero B (so it changes the pictures), as a diffusers file. */
public final class TinyLora {
    private TinyLora() {}

    public static Path write(Path file) throws IOException {
        Backend be = new CpuBackend();
        try (FluxGenerator maker = FluxGenerator.tinyRandom(be, 1, Map.of())) {
            List<LoraGroup> gs = maker.model().attachLora(LoraConfig.defaults(4), 3);
            for (LoraGroup g : gs) {
                be.randn(g.b, g.key.hashCode());
                be.axpby(g.b, 0.5, g.b, 0);
                g.syncCompute(be);
            }
            LoraFileWriter.write(file, gs, be, LoraFormat.DIFFUSERS, Map.of());
        }
        return file;
    }
}
