package dev.impasto.api;

import java.awt.image.BufferedImage;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * The embedding API: text (and settings) in, picture out. Implementations hold one model on one backend and are
 * not thread-safe: serve one request at a time (the demo server queues them).
 */
public interface ImageGenerator extends AutoCloseable {

    /**
     * One picture. width/height are in pixels (multiples of 16); lora names one of {@link #loras()} or is null for
     * the base model; loraScale multiplies its strength (0 = base).
     */
    record Request(String prompt, long seed, int steps, double guidance, int width, int height, String lora, double loraScale) {
        public Request {
            if (prompt == null) prompt = "";
            if (steps < 1 || steps > 200) throw new IllegalArgumentException("steps must be in 1..200, got " + steps);
            if (width < 16 || height < 16 || width % 16 != 0 || height % 16 != 0 || width > 2048 || height > 2048)
                throw new IllegalArgumentException("width and height must be multiples of 16 in 16..2048, got " + width + "x" + height);
            if (!(guidance >= 0 && guidance <= 30)) throw new IllegalArgumentException("guidance must be in 0..30, got " + guidance);
            if (!(loraScale >= -2 && loraScale <= 4)) throw new IllegalArgumentException("lora scale must be in -2..4, got " + loraScale);
        }

        /** The settings a picture of this request carries (Result.settings, PNG text chunks), made by {@code model}. */
        public Map<String, String> settings(String model) {
            Map<String, String> s = new java.util.LinkedHashMap<>();
            s.put("prompt", prompt);
            s.put("seed", Long.toString(seed));
            s.put("steps", Integer.toString(steps));
            s.put("guidance", Double.toString(guidance));
            s.put("size", width + "x" + height);
            s.put("model", model);
            s.put("lora", lora == null ? "none" : lora + " x" + loraScale);
            s.put("Software", "impasto");
            return s;
        }
    }

    /** The picture, the sampled latent [C, h, w], the settings (also written into PNG text chunks) and the time taken. */
    record Result(BufferedImage image, float[] latent, int latentChannels, int latentHeight, int latentWidth, Map<String, String> settings, long millis) {}

    /** What this generator runs. */
    record Info(String model, String backend, List<String> examplePrompts, int defaultSteps, double defaultGuidance, int defaultSize) {}

    Result generate(Request request, IntConsumer onStep);

    List<String> loras();

    Info info();

    @Override
    void close();
}
