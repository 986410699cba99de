package dev.impasto.lora;

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
    final List<SafetensorsLite.Item> items = new ArrayList<>();
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

    double[] add(String name, DType dt, long[] shape, double[] v) {
        items.add(new SafetensorsLite.Item(name, dt, shape, () -> v));
        values.put(name, v);
        return v;
    }

    TestFile meta(String k, String v) {
        metadata.put(k, v);
        return this;
    }

    Path write(Path p) throws IOException {
        SafetensorsLite.write(p, items, metadata);
        return p;
    }
}
