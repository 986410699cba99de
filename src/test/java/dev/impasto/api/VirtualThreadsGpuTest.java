package dev.impasto.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.Backends;
import dev.impasto.cuda.Cuda;
import dev.impasto.tensor.cuda.CudaBackend;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A JVM service on virtual threads embeds the engine: the public API moves GPU work to a platform thread (CUDA's
 * current context and libtorch's stream are per OS thread), and the CUDA backend itself refuses virtual threads.
 */
@Tag("gpu")
class VirtualThreadsGpuTest {
    static float[] generate() {
        try (FluxGenerator gen = FluxGenerator.tinyRandom(Backends.open("cuda"), 1, Map.of())) {
            return gen.generate(new ImageGenerator.Request("a red barn in snow", 7, 4, 3.5, 64, 32, null, 1.0), null).latent();
        }
    }

    @Test
    void theApiWorksFromVirtualThreadsAndTheBackendRefusesThem() throws Exception {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        float[] platform = generate();
        AtomicReference<float[]> fromVirtual = new AtomicReference<>();
        AtomicReference<Throwable> failure = new AtomicReference<>(), refused = new AtomicReference<>();
        Thread v = Thread.ofVirtual().start(() -> {
            try {
                fromVirtual.set(generate());
            } catch (Throwable t) {
                failure.set(t);
            }
            try (CudaBackend be = CudaBackend.open(0)) {
                refused.set(new AssertionError("a virtual thread opened a CUDA backend"));
            } catch (Throwable t) {
                refused.set(t);
            }
        });
        v.join();
        if (failure.get() != null) throw new AssertionError("generation from a virtual thread failed", failure.get());
        assertArrayEquals(platform, fromVirtual.get(), "the same picture as from a platform thread");
        assertTrue(refused.get() instanceof IllegalStateException && refused.get().getMessage().contains("virtual thread"), String.valueOf(refused.get()));
    }
}
