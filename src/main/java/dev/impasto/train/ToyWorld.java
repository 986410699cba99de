package dev.impasto.train;

import dev.impasto.model.FluxConfig;
import java.util.Random;

/**
 * A world small enough to learn on a CPU in seconds, with no downloads: 16x16 RGB pictures of four shape classes
 * (disc, square, stripes, ring) used directly as 3-channel "latents" in [-1, 1], and a fixed random "text" embedding
 * per class. Style A paints each class in a warm palette on a dark background; style B is the same world in a cool,
 * pale palette: a style shift a LoRA should learn while the shapes stay.
 */
public final class ToyWorld implements TrainingSet {
    public static final String[] CLASSES = {"disc", "square", "stripes", "ring"};
    public static final int SIZE = 16, CHANNELS = 3, TEXT_LEN = 4, TEXT_DIM = 32, POOLED_DIM = 16;

    public enum Style { A, B }

    /** Shape colour and background colour per class, RGB in [0, 1]. */
    static final float[][][] PALETTE_A = {
        {{0.90f, 0.25f, 0.15f}, {0.10f, 0.05f, 0.05f}},
        {{0.95f, 0.60f, 0.10f}, {0.15f, 0.08f, 0.02f}},
        {{0.85f, 0.80f, 0.20f}, {0.20f, 0.10f, 0.05f}},
        {{0.80f, 0.35f, 0.45f}, {0.08f, 0.02f, 0.06f}}};
    static final float[][][] PALETTE_B = {
        {{0.35f, 0.70f, 0.95f}, {0.80f, 0.88f, 0.95f}},
        {{0.40f, 0.85f, 0.70f}, {0.85f, 0.95f, 0.90f}},
        {{0.55f, 0.55f, 0.95f}, {0.88f, 0.88f, 0.98f}},
        {{0.30f, 0.80f, 0.85f}, {0.82f, 0.92f, 0.96f}}};

    private final Style style;
    private final int perClass;
    private final long seed;
    private final float[][] text = new float[CLASSES.length][], pooled = new float[CLASSES.length][];

    public ToyWorld(Style style, int perClass, long seed) {
        this.style = style;
        this.perClass = perClass;
        this.seed = seed;
        // the text side does not depend on the style: the same prompts, a different look
        Random r = new Random(0x70E5);
        for (int c = 0; c < CLASSES.length; c++) {
            text[c] = new float[TEXT_LEN * TEXT_DIM];
            for (int i = 0; i < text[c].length; i++) text[c][i] = (float) r.nextGaussian();
            pooled[c] = new float[POOLED_DIM];
            for (int i = 0; i < POOLED_DIM; i++) pooled[c][i] = (float) r.nextGaussian();
        }
    }

    /** The FLUX architecture the toy world trains: FLUX in miniature, with 3-channel latents (12 features a token). */
    public static FluxConfig config() {
        return new FluxConfig("flux-toy", CHANNELS * 4, TEXT_DIM, POOLED_DIM, 64, 2, 1, 1, 4.0, new int[] {4, 14, 14}, 10_000, true, true);
    }

    public Style style() {
        return style;
    }

    @Override
    public int size() {
        return perClass * CLASSES.length;
    }

    public static int classOf(int index) {
        return index % CLASSES.length;
    }

    @Override
    public Item item(int index) {
        int c = classOf(index);
        return new Item(picture(c, style, new Random(seed * 7919 + index)), CHANNELS, SIZE, SIZE, text[c].clone(), TEXT_LEN, pooled[c].clone(),
                "a " + CLASSES[c]);
    }

    /** The prompt embeddings of a class (for sampling). */
    public Item prompt(int cls) {
        return new Item(null, CHANNELS, SIZE, SIZE, text[cls].clone(), TEXT_LEN, pooled[cls].clone(), "a " + CLASSES[cls]);
    }

    @Override
    public String bucket(int index) {
        return SIZE + "x" + SIZE;
    }

    @Override
    public Item emptyPrompt() {
        return new Item(null, CHANNELS, SIZE, SIZE, new float[TEXT_LEN * TEXT_DIM], TEXT_LEN, new float[POOLED_DIM], "");
    }

    @Override
    public int latentChannels() {
        return CHANNELS;
    }

    @Override
    public int textDim() {
        return TEXT_DIM;
    }

    @Override
    public int pooledDim() {
        return POOLED_DIM;
    }

    /** One picture [3, 16, 16] in [-1, 1]: the class's shape at a random position and size, with a little texture. */
    static float[] picture(int cls, Style style, Random r) {
        float[][] pal = (style == Style.A ? PALETTE_A : PALETTE_B)[cls];
        float[] out = new float[CHANNELS * SIZE * SIZE];
        double cx = 6 + r.nextDouble() * 4, cy = 6 + r.nextDouble() * 4, rad = 3.5 + r.nextDouble() * 2;
        int phase = r.nextInt(4);
        for (int y = 0; y < SIZE; y++)
            for (int x = 0; x < SIZE; x++) {
                double dx = x + 0.5 - cx, dy = y + 0.5 - cy, d = Math.hypot(dx, dy);
                boolean in = switch (cls) {
                    case 0 -> d < rad;
                    case 1 -> Math.abs(dx) < rad * 0.85 && Math.abs(dy) < rad * 0.85;
                    case 2 -> ((x + phase) / 2) % 2 == 0;
                    default -> d < rad + 1 && d > rad - 1.2;
                };
                float[] col = in ? pal[0] : pal[1];
                for (int ch = 0; ch < CHANNELS; ch++) {
                    double v = col[ch] + r.nextGaussian() * 0.03;
                    out[(ch * SIZE + y) * SIZE + x] = (float) (Math.max(0, Math.min(1, v)) * 2 - 1);
                }
            }
        return out;
    }

    /** Mean RGB in [0, 1] of a picture [3, H, W] in [-1, 1]. */
    public static double[] meanColour(float[] chw) {
        int plane = chw.length / CHANNELS;
        double[] m = new double[CHANNELS];
        for (int ch = 0; ch < CHANNELS; ch++) {
            double s = 0;
            for (int i = 0; i < plane; i++) s += chw[ch * plane + i];
            m[ch] = (s / plane + 1) / 2;
        }
        return m;
    }

    /** The expected mean colour of a class under a style (measured over many pictures). */
    public static double[] expectedMeanColour(int cls, Style style) {
        double[] acc = new double[CHANNELS];
        Random r = new Random(99);
        int n = 200;
        for (int i = 0; i < n; i++) {
            double[] m = meanColour(picture(cls, style, r));
            for (int ch = 0; ch < CHANNELS; ch++) acc[ch] += m[ch] / n;
        }
        return acc;
    }
}
