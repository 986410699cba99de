package dev.impasto.eval;

import dev.impasto.api.ImageGenerator;
import java.awt.image.BufferedImage;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * A deterministic stand-in generator for tests: the prompt names a colour ("red", "green", "blue", "grey"; anything
 * else is refused like the toy model refuses unknown prompts); the LoRA "pale" mixes the colour towards white by
 * 0.5 x strength. Each picture is the colour with a seeded dark square in the top-left quarter, so near-black share
 * and colourfulness are known. Optionally waits on a latch (queue tests) or sleeps per step (cancellation tests).
 */
public final class FakeGenerator implements ImageGenerator {
    public static final Map<String, int[]> COLOURS = new LinkedHashMap<>();

    static {
        COLOURS.put("red", new int[] {220, 30, 30});
        COLOURS.put("green", new int[] {30, 200, 40});
        COLOURS.put("blue", new int[] {30, 40, 220});
        COLOURS.put("grey", new int[] {128, 128, 128});
    }

    public volatile CountDownLatch gate;
    public volatile long sleepPerStepMillis;
    public final AtomicInteger started = new AtomicInteger(), finished = new AtomicInteger();
    public volatile boolean closed;

    @Override
    public Result generate(Request r, IntConsumer onStep) {
        int[] c = COLOURS.get(r.prompt().replace("a ", "").strip());
        if (c == null) throw new IllegalArgumentException("the fake model knows only " + COLOURS.keySet() + " (got \"" + r.prompt() + "\")");
        started.incrementAndGet();
        try {
            if (gate != null && !gate.await(30, TimeUnit.SECONDS)) throw new IllegalStateException("test gate never opened");
            for (int s = 1; s <= r.steps(); s++) {
                if (sleepPerStepMillis > 0) Thread.sleep(sleepPerStepMillis);
                if (onStep != null) onStep.accept(s);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted");
        }
        double mix = r.lora() == null ? 0 : 0.5 * r.loraScale();
        int rgb = 0;
        for (int k = 0; k < 3; k++) rgb = (rgb << 8) | (int) Math.round(c[k] + (255 - c[k]) * mix);
        BufferedImage img = new BufferedImage(r.width(), r.height(), BufferedImage.TYPE_INT_RGB);
        Random rnd = new Random(r.seed());
        int dark = 4 + rnd.nextInt(r.width() / 4 - 3);
        for (int y = 0; y < r.height(); y++)
            for (int x = 0; x < r.width(); x++) img.setRGB(x, y, x < dark && y < dark ? 0 : rgb);
        Map<String, String> settings = new LinkedHashMap<>();
        settings.put("prompt", r.prompt());
        settings.put("seed", Long.toString(r.seed()));
        settings.put("Software", "impasto-test");
        finished.incrementAndGet();
        return new Result(img, new float[0], 0, 0, 0, settings, 1);
    }

    /** The dark square's side for a seed and width (as {@link #generate} draws it). */
    public static int darkSide(long seed, int width) {
        return 4 + new Random(seed).nextInt(width / 4 - 3);
    }

    @Override
    public List<String> loras() {
        return List.of("pale");
    }

    @Override
    public Info info() {
        return new Info("fake (solid colours)", "test", List.copyOf(COLOURS.keySet()), 4, 1.0, 64);
    }

    @Override
    public void close() {
        closed = true;
    }
}
