package dev.impasto.lora;

import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.tensor.DType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Builds safetensors files with arbitrary tensor names, as other tools would write them. */
final class TestFile {
    final List<SafetensorsWriter.Tensor> items = new ArrayList<>();
    final Map<String, double[]> values = new LinkedHashMap<>();
    final Map<String, String> metadata = new LinkedHashMap<>();
    final Random random;

    TestFile(long seed) {
        random = new Random(seed);
    }

    /** A tensor of float32-representable random values (returned). */
    double[] add(String name, long... shape) {
        int n = 1;
        for (long d : shape) n *= (int) d;
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (float) (random.nextGaussian() * 0.5);
        return add(name, DType.F32, shape, v);
    }

    /** A tensor of {@code dt} holding {@code v} (float-representable; read when the file is written, so it may still change). */
    double[] add(String name, DType dt, long[] shape, double[] v) {
        items.add(SafetensorsWriter.Tensor.lazyFloats(name, dt, shape, () -> floats(v)));
        values.put(name, v);
        return v;
    }

    static float[] floats(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
        return f;
    }

    TestFile meta(String k, String v) {
        metadata.put(k, v);
        return this;
    }

    Path write(Path p) throws IOException {
        SafetensorsWriter.write(p, metadata, items);
        return p;
    }
}
