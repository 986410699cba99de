package dev.impasto.encoders;

import dev.impasto.io.safetensors.SafetensorsWriter;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/** Random weights that remember every tensor handed out, so a test can write them as a weight file. */
final class RecordingWeights implements EncoderWeights {
    final RandomEncoderWeights random;
    final Map<String, Object[]> tensors = new LinkedHashMap<>();

    RecordingWeights(long seed) {
        random = new RandomEncoderWeights(seed);
    }

    @Override
    public Tensor tensor(Backend be, String key, Kind kind, DType dtype, long... shape) {
        Tensor t = random.tensor(be, key, kind, dtype, shape);
        tensors.put(key, new Object[] {shape.clone(), be.toFloats(t)});
        return t;
    }

    @Override
    public LinearWeight linear(Backend be, String key, long out, long in, DType dtype, BaseFormat format) {
        LinearWeight w = random.linear(be, key, out, in, dtype, format);
        tensors.put(key, new Object[] {new long[] {out, in}, dev.impasto.quant.WeightQuantizer.dequantize(be, w)});
        return w;
    }

    @Override
    public String describe() {
        return "recorded";
    }

    /** Writes the tensors under names produced by {@code rename} (null drops a tensor), as {@code type}. */
    void write(Path file, UnaryOperator<String> rename, DType type) throws IOException {
        List<SafetensorsWriter.Tensor> ts = new ArrayList<>();
        for (var e : tensors.entrySet()) {
            String n = rename.apply(e.getKey());
            if (n != null) ts.add(SafetensorsWriter.Tensor.ofFloats(n, type, (long[]) e.getValue()[0], (float[]) e.getValue()[1]));
        }
        SafetensorsWriter.write(file, Map.of(), ts);
    }
}
