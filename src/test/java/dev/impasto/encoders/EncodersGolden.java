package dev.impasto.encoders;

import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The reference implementations' outputs (src/test/golden/encoders/make_golden.py: transformers T5EncoderModel and
 * CLIPTextModel, BFL's AutoEncoder) for tiny random models, loaded through the same file loaders real weights use,
 * run on a backend, compared by relative L2 error.
 */
final class EncodersGolden {
    static final Path DIR = Path.of("src/test/resources/dev/impasto/encoders/golden");
    static final T5Config T5 = new T5Config("golden-t5", 259, 32, 8, 4, 64, 2, 32, 128, 1e-6, 160);
    static final ClipConfig CLIP = new ClipConfig("golden-clip", 258, 16, 2, 32, 2, 77, 1e-5);
    static final AutoEncoderConfig AE = new AutoEncoderConfig("golden-ae", 3, 32, 3, new int[] {1, 2}, 1, 4, 0.3611, 0.1159);

    static boolean present() {
        return Files.isRegularFile(DIR.resolve("io.safetensors"));
    }

    static int[][] ids(SafetensorsFile io, String key) {
        var t = io.tensor(key);
        float[] v = t.toFloatArray();
        int rows = (int) t.dim(0), cols = (int) t.dim(1);
        int[][] out = new int[rows][cols];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) out[r][c] = (int) v[r * cols + c];
        return out;
    }

    static double err(Backend be, Tensor t, SafetensorsFile io, String key) {
        double[] ref = new double[(int) io.tensor(key).numel()];
        float[] f = io.tensor(key).toFloatArray();
        for (int i = 0; i < f.length; i++) ref[i] = f[i];
        return GradCheck.relL2(be.toDoubles(t), ref);
    }

    /** name -> relative L2 error against the reference. */
    static Map<String, Double> compare(Backend be, DType dt) throws Exception {
        Map<String, Double> e = new LinkedHashMap<>();
        BaseFormat dense = dt == DType.F32 ? BaseFormat.F32 : BaseFormat.BF16;
        try (SafetensorsFile io = SafetensorsFile.open(DIR.resolve("io.safetensors"))) {
            try (FileEncoderWeights w = FileEncoderWeights.open(DIR.resolve("t5.safetensors"), "T5 encoder", EncoderKeys.T5_ANCHOR, EncoderKeys.t5(), "transformers");
                 T5Encoder t5 = T5Encoder.load(T5, be, dt, w, dense); Tensor out = t5.forward(ids(io, "t5.ids"))) {
                e.put("t5", err(be, out, io, "t5.out"));
            }
            try (FileEncoderWeights w = FileEncoderWeights.open(DIR.resolve("clip.safetensors"), "CLIP text encoder", EncoderKeys.CLIP_ANCHOR, EncoderKeys.clip(), "transformers");
                 ClipTextEncoder clip = ClipTextEncoder.load(CLIP, be, dt, w, dense)) {
                int[][] ids = ids(io, "clip.ids");
                int[] pooled = new int[ids.length];
                for (int b = 0; b < ids.length; b++) pooled[b] = dev.impasto.encoders.tokenizer.ClipTokenizer.pooledIndex(ids[b]);
                try (ClipTextEncoder.Output o = clip.forward(ids, pooled)) {
                    e.put("clip.hidden", err(be, o.hidden(), io, "clip.hidden"));
                    e.put("clip.pooled", err(be, o.pooled(), io, "clip.pooled"));
                }
            }
            try (FileEncoderWeights w = FileEncoderWeights.open(DIR.resolve("ae.safetensors"), "autoencoder", EncoderKeys.VAE_ANCHOR, EncoderKeys.vae(2), "BFL");
                 AutoEncoder ae = AutoEncoder.load(AE, be, dt, w);
                 Tensor image = be.fromFloats(io.tensor("ae.image").toFloatArray(), dt, 1, 3, 24, 32);
                 Tensor latent = ae.encode(image);
                 Tensor refLatent = be.fromFloats(io.tensor("ae.latent").toFloatArray(), dt, 1, 4, 12, 16);
                 Tensor decoded = ae.decode(refLatent);
                 Tensor z = be.fromFloats(io.tensor("ae.z").toFloatArray(), dt, 1, 4, 6, 8);
                 Tensor decodedZ = ae.decode(z)) {
                e.put("ae.latent", err(be, latent, io, "ae.latent"));
                e.put("ae.decoded", err(be, decoded, io, "ae.decoded"));
                e.put("ae.decoded_z", err(be, decodedZ, io, "ae.decoded_z"));
            }
        }
        return e;
    }

    /** Relative positions -511..511 whose bucket differs from transformers' (empty when all agree). */
    static Map<Integer, int[]> bucketMismatches() throws Exception {
        Map<Integer, int[]> bad = new LinkedHashMap<>();
        try (SafetensorsFile io = SafetensorsFile.open(DIR.resolve("io.safetensors"))) {
            float[] ref = io.tensor("t5.buckets").toFloatArray();
            for (int i = 0; i < ref.length; i++) {
                int rel = i - 511, mine = T5Encoder.bucket(rel, 32, 128);
                if (mine != (int) ref[i]) bad.put(rel, new int[] {mine, (int) ref[i]});
            }
        }
        return bad;
    }
}
