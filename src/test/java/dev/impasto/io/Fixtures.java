package dev.impasto.io;

import dev.impasto.io.flux.FluxArchitecture;
import dev.impasto.io.flux.FluxKeyMap;
import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.tensor.DType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/** Tiny FLUX-shaped checkpoints for tests: hidden 64 (2 heads x 32), mlp 256, in/out 16, context 32, vec 16. */
public final class Fixtures {
    private Fixtures() {}

    public static final FluxArchitecture TINY = new FluxArchitecture(16, 16, 64, 2, 32, 256, 1, 1, 32, 16, 256, true, true);

    /** A tensor of the fixture: canonical BFL key, shape, values (already BF16-representable). */
    public record T(String name, long[] shape, float[] values) {}

    /** Random weights for every key of {@code arch}, values rounded to BF16 so BF16 storage is exact. */
    public static List<T> randomBfl(FluxArchitecture arch, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        List<T> out = new ArrayList<>();
        for (Map.Entry<String, long[]> e : arch.expectedShapes().entrySet()) {
            float[] v = new float[(int) Shapes.numel(e.getValue())];
            for (int i = 0; i < v.length; i++) v[i] = (float) DType.BF16.round(nextGaussian(rnd) * 0.05);
            out.add(new T(e.getKey(), e.getValue(), v));
        }
        return out;
    }

    static double nextGaussian(SplittableRandom r) {
        double u = 1 - r.nextDouble(), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }

    /** Writes the tensors as a BFL safetensors file (keys prefixed by {@code prefix}). */
    public static void writeBfl(Path file, List<T> tensors, String prefix, DType dtype) throws IOException {
        List<SafetensorsWriter.Tensor> ts = new ArrayList<>();
        for (T t : tensors) ts.add(SafetensorsWriter.Tensor.ofFloats(prefix + t.name(), dtype, t.shape(), t.values()));
        SafetensorsWriter.write(file, Map.of("format", "pt"), ts);
    }

    /**
     * Converts BFL tensors to the diffusers layout with the key map in reverse (qkv split in 3 equal row blocks,
     * linear1 split (h, h, h, mlp), final adaLN halves swapped) and writes them sharded with an index.
     */
    public static List<Path> writeDiffusers(Path dir, List<T> tensors, int hidden, DType dtype, long maxShardBytes) throws IOException {
        Map<String, float[]> values = new LinkedHashMap<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (T t : tensors) {
            FluxKeyMap.Source src = FluxKeyMap.bflToDiffusers(t.name()).orElseThrow(() -> new AssertionError("no diffusers key for " + t.name()));
            long[] shape = t.shape();
            long cols = shape.length > 1 ? shape[1] : 1;
            int rows = (int) shape[0];
            float[] v = t.values();
            if (src.swapHalves()) {
                float[] s = new float[v.length];
                int half = v.length / 2;
                System.arraycopy(v, half, s, 0, half);
                System.arraycopy(v, 0, s, half, half);
                v = s;
            }
            List<String> keys = src.diffusersKeys();
            int[] splitRows;
            if (keys.size() == 1) splitRows = new int[]{rows};
            else if (keys.size() == 3) splitRows = new int[]{rows / 3, rows / 3, rows / 3};
            else splitRows = new int[]{hidden, hidden, hidden, rows - 3 * hidden};
            int at = 0;
            for (int i = 0; i < keys.size(); i++) {
                int n = (int) (splitRows[i] * cols);
                float[] part = new float[n];
                System.arraycopy(v, at, part, 0, n);
                at += n;
                long[] ps = shape.clone();
                ps[0] = splitRows[i];
                values.put(keys.get(i), part);
                shapes.put(keys.get(i), ps);
            }
        }
        List<SafetensorsWriter.Tensor> ts = new ArrayList<>();
        for (String k : values.keySet()) ts.add(SafetensorsWriter.Tensor.ofFloats(k, dtype, shapes.get(k), values.get(k)));
        return SafetensorsWriter.writeSharded(dir, "diffusion_pytorch_model", maxShardBytes, Map.of("format", "pt"), ts);
    }
}
