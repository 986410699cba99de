package dev.impasto.train;

import dev.impasto.image.LatentImages;
import dev.impasto.image.Png;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * What a toy-world LoRA learnt, in numbers and a picture: per class, the mean colour of samples from the base
 * (LoRA strength 0) and from the LoRA (strength 1) on the same seeds, and their distance to style A's and style B's
 * mean colours.
 */
public record ToyReport(double[][] baseMeans, double[][] loraMeans, double baseToA, double baseToB, double loraToA, double loraToB, String text) {
    public static final long[] SEEDS = {101, 102, 103, 104};

    public static ToyReport make(Trainer t, ToyWorld world, Path runDir) throws IOException {
        int n = ToyWorld.CLASSES.length;
        double[][] base = new double[n][], lora = new double[n][];
        List<List<BufferedImage>> rows = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        double bA = 0, bB = 0, lA = 0, lB = 0;
        for (int c = 0; c < n; c++) {
            List<BufferedImage> row = new ArrayList<>();
            row.add(LatentImages.fromLatent(ToyWorld.picture(c, world.style(), new Random(c)), 3, ToyWorld.SIZE, ToyWorld.SIZE, 6));
            double[] sb = new double[3], sl = new double[3];
            List<BufferedImage> loraCells = new ArrayList<>();
            for (long seed : SEEDS) {
                float[] b = t.sampleLatent(world.prompt(c), seed, 0.0), l = t.sampleLatent(world.prompt(c), seed, 1.0);
                row.add(LatentImages.fromLatent(b, 3, ToyWorld.SIZE, ToyWorld.SIZE, 6));
                loraCells.add(LatentImages.fromLatent(l, 3, ToyWorld.SIZE, ToyWorld.SIZE, 6));
                double[] mb = ToyWorld.meanColour(b), ml = ToyWorld.meanColour(l);
                for (int k = 0; k < 3; k++) {
                    sb[k] += mb[k] / SEEDS.length;
                    sl[k] += ml[k] / SEEDS.length;
                }
            }
            row.addAll(loraCells);
            rows.add(row);
            labels.add(ToyWorld.CLASSES[c]);
            base[c] = sb;
            lora[c] = sl;
            double[] a = ToyWorld.expectedMeanColour(c, ToyWorld.Style.A), bb = ToyWorld.expectedMeanColour(c, ToyWorld.Style.B);
            bA += dist(sb, a) / n;
            bB += dist(sb, bb) / n;
            lA += dist(sl, a) / n;
            lB += dist(sl, bb) / n;
        }
        List<String> cols = new ArrayList<>(List.of("training (" + world.style() + ")"));
        for (long s : SEEDS) cols.add("base s" + s);
        for (long s : SEEDS) cols.add("LoRA s" + s);
        Png.write(LatentImages.grid(rows, labels, cols, "toy world: base model (style A) vs LoRA (trained on style " + world.style() + "), same seeds"),
                runDir.resolve("comparison.png"), Map.of("Software", "impasto"));
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "toy world, mean-colour distance (RGB, 0..1), averaged over %d classes x %d seeds:%n", n, SEEDS.length));
        sb.append(String.format(Locale.ROOT, "  base (LoRA off):  to style A %.3f   to style B %.3f%n", bA, bB));
        sb.append(String.format(Locale.ROOT, "  with the LoRA:    to style A %.3f   to style B %.3f%n", lA, lB));
        return new ToyReport(base, lora, bA, bB, lA, lB, sb.toString());
    }

    static double dist(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
        return Math.sqrt(s);
    }
}
