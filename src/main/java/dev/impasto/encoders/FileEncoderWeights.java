package dev.impasto.encoders;

import dev.impasto.io.StoredTensor;
import dev.impasto.io.TensorEntry;
import dev.impasto.io.WeightFileSet;
import dev.impasto.quant.BaseFormat;
import dev.impasto.quant.WeightQuantizer;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * Encoder weights from the files people have (a safetensors file, a sharded diffusers folder with its index), mapped
 * to canonical keys when opened: a leading prefix (such as {@code text_encoders.t5xxl.transformer.} or
 * {@code first_stage_model.}) is found from an anchor key and removed, then a layout map renames what is left
 * (diffusers' AutoencoderKL names to BFL's). Every tensor is checked against the shape the model needs; a missing
 * or misshapen tensor is an error naming the file, the key and what was expected. FP8 (E4M3FN, E5M2) tensors are
 * decoded on load.
 */
public final class FileEncoderWeights implements EncoderWeights {
    private final WeightFileSet files;
    private final String component;
    private final Map<String, TensorEntry> byKey;
    private final String layout;

    private FileEncoderWeights(WeightFileSet files, String component, Map<String, TensorEntry> byKey, String layout) {
        this.files = files;
        this.component = component;
        this.byKey = byKey;
        this.layout = layout;
    }

    /**
     * Opens {@code path} as the weights of {@code component} ("T5 encoder", ...). {@code anchor} is a canonical key
     * every such file holds under some prefix; {@code layoutMap} renames a prefix-free key to its canonical name
     * (identity for files already in the canonical layout).
     */
    public static FileEncoderWeights open(Path path, String component, String anchor, UnaryOperator<String> layoutMap, String layoutName)
            throws IOException {
        WeightFileSet set = WeightFileSet.open(path);
        try {
            String prefix = null;
            for (StoredTensor t : set.tensors()) {
                String n = layoutMap.apply(t.name());
                if (n != null && n.endsWith(anchor) && (n.length() == anchor.length() || n.charAt(n.length() - anchor.length() - 1) == '.')
                        && (prefix == null || n.length() - anchor.length() < prefix.length()))
                    prefix = n.substring(0, n.length() - anchor.length());
            }
            if (prefix == null)
                throw new IOException(path + " is not a " + component + " checkpoint: it has no tensor named like \"" + anchor + "\" ("
                        + set.tensors().size() + " tensors, e.g. " + sample(set) + ")");
            Map<String, TensorEntry> byKey = new LinkedHashMap<>();
            for (StoredTensor t : set.tensors()) {
                String n = layoutMap.apply(t.name());
                if (n == null || !n.startsWith(prefix)) continue;
                if (!(t instanceof TensorEntry e))
                    throw new IOException(path + ": " + component + " weights in GGUF files are not supported; use a safetensors file");
                byKey.putIfAbsent(n.substring(prefix.length()), e);
            }
            return new FileEncoderWeights(set, component, byKey, layoutName);
        } catch (IOException | RuntimeException e) {
            set.close();
            throw e;
        }
    }

    private static String sample(WeightFileSet set) {
        return set.tensors().stream().limit(3).map(StoredTensor::name).toList().toString();
    }

    /** The weight file actually read (a folder's weight file, or the index of shards), for error messages. */
    public Path path() {
        return files.resolved();
    }

    /** Canonical keys present. */
    public java.util.Set<String> keys() {
        return byKey.keySet();
    }

    public boolean has(String key) {
        return byKey.containsKey(key);
    }

    private TensorEntry entry(String key, long... shape) {
        TensorEntry e = byKey.get(key);
        if (e == null)
            throw new IllegalArgumentException(files.path() + ": the " + component + " weight \"" + key + "\" is missing (" + layout
                    + " layout): the file is incomplete or is not a " + component + " checkpoint");
        if (!Arrays.equals(e.shape(), shape) && !sameUpToTrailingOnes(e.shape(), shape))
            throw new IllegalArgumentException(files.path() + ": " + component + " weight \"" + e.name() + "\" has shape " + Arrays.toString(e.shape())
                    + ", the model needs " + Arrays.toString(shape) + ": the file's architecture differs from the configured one");
        if (!e.isSupported() && !Float8.supports(e.typeName()))
            throw new IllegalArgumentException(files.path() + ": " + component + " weight \"" + e.name() + "\" is stored as " + e.typeName()
                    + ", which impasto does not read (it reads F32, BF16, F16, F8_E4M3, F8_E5M2)");
        return e;
    }

    /** [C, C, 1, 1] convolution weights where [C, C] is wanted and the other way round (attention projections). */
    private static boolean sameUpToTrailingOnes(long[] a, long[] b) {
        return Arrays.equals(trim(a), trim(b)) && Arrays.stream(a).reduce(1, Math::multiplyExact) == Arrays.stream(b).reduce(1, Math::multiplyExact);
    }

    private static long[] trim(long[] s) {
        int n = s.length;
        while (n > 1 && s[n - 1] == 1) n--;
        return Arrays.copyOf(s, n);
    }

    private static float[] floats(TensorEntry e) {
        return Float8.supports(e.typeName()) ? Float8.decode(e.data(), e.typeName(), e.numel()) : e.toFloatArray();
    }

    @Override
    public Tensor tensor(Backend be, String key, Kind kind, DType dtype, long... shape) {
        TensorEntry e = entry(key, shape);
        if (e.isSupported() && e.dtype().isFloatingPoint()) return be.fromBytes(e.data(), e.dtype(), dtype, shape);
        return be.fromFloats(floats(e), dtype, shape);
    }

    @Override
    public LinearWeight linear(Backend be, String key, long out, long in, DType dtype, BaseFormat format) {
        TensorEntry e = byKey.get(key);
        long[] shape = e != null && e.rank() == 4 ? new long[] {out, in, 1, 1} : new long[] {out, in};
        e = entry(key, shape);
        if (!format.quantized()) {
            Tensor w = e.isSupported() && e.dtype().isFloatingPoint() ? be.fromBytes(e.data(), e.dtype(), dtype, out, in)
                    : be.fromFloats(floats(e), dtype, out, in);
            return new LinearWeight.Dense(w);
        }
        return WeightQuantizer.quantize(be, floats(e), out, in, format);
    }

    @Override
    public String describe() {
        return files.path().getFileName() + " (" + layout + ")";
    }

    @Override
    public void close() {
        files.close();
    }
}
