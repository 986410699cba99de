package dev.impasto.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.tensor.cpu.CpuBackend;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Prompt -> T5 + CLIP -> FLUX (+ LoRA) -> VAE -> picture, end to end on the CPU with tiny random weights. */
class FluxGeneratorTest {
    @Test
    void promptToPictureWithAndWithoutALora(@TempDir Path dir) throws Exception {
        Path lora = TinyLora.write(dir.resolve("tiny.safetensors"));
        try (FluxGenerator gen = FluxGenerator.tinyRandom(new CpuBackend(), 1, Map.of("tiny", lora))) {
            ImageGenerator.Request base = new ImageGenerator.Request("a red barn in snow", 7, 4, 3.5, 64, 32, null, 1.0);
            ImageGenerator.Result r0 = gen.generate(base, null);
            assertEquals(64, r0.image().getWidth());
            assertEquals(32, r0.image().getHeight());
            assertEquals("a red barn in snow", r0.settings().get("prompt"));
            ImageGenerator.Result again = gen.generate(base, null);
            assertTrue(Arrays.equals(r0.latent(), again.latent()), "same seed, same picture");
            ImageGenerator.Result withLora = gen.generate(new ImageGenerator.Request("a red barn in snow", 7, 4, 3.5, 64, 32, "tiny", 1.0), null);
            assertFalse(Arrays.equals(r0.latent(), withLora.latent()), "the LoRA changes the picture");
            ImageGenerator.Result strength0 = gen.generate(new ImageGenerator.Request("a red barn in snow", 7, 4, 3.5, 64, 32, "tiny", 0.0), null);
            assertTrue(Arrays.equals(r0.latent(), strength0.latent()), "strength 0 is the base");
            assertEquals(List.of("tiny"), gen.loras());
            assertThrows(IllegalArgumentException.class, () -> gen.generate(new ImageGenerator.Request("x", 1, 2, 1, 64, 64, "nope", 1), null));
        }
    }
}
