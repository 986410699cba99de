package dev.impasto.encoders;

import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * transformers' CLIPModel outputs for a tiny random model (src/test/golden/encoders/make_golden.py, the CLIP model part:
 * clip_full.safetensors, clip_io.safetensors), loaded through the same file checks as --clip, run on a backend and
 * compared by relative L2 error; and CLIPImageProcessor's pixel values for one picture (transformers' processor as installed
 * there, torchvision-based in transformers 5, and PIL's resize as transformers 4's processor used it).
 */
final class ClipModelGolden {
    static final Path DIR = EncodersGolden.DIR;
    static final ClipModel.Configs CONFIGS = new ClipModel.Configs(new ClipConfig("golden-clip-text", 258, 16, 2, 32, 2, 77, 1e-5),
            new ClipVisionConfig("golden-clip-vision", 24, 2, 48, 2, 7, 28, 12, 1e-5));

    static boolean present() {
        return Files.isRegularFile(DIR.resolve("clip_io.safetensors")) && Files.isRegularFile(DIR.resolve("clip_full.safetensors"));
    }

    /** name -> relative L2 error against the reference: the vision tower's hidden states, pooled output, image and text embeddings. */
    static Map<String, Double> compare(Backend be, DType dt) throws Exception {
        Map<String, Double> e = new LinkedHashMap<>();
        try (SafetensorsFile io = SafetensorsFile.open(DIR.resolve("clip_io.safetensors"));
             FileEncoderWeights w = ClipModel.openWeights(DIR.resolve("clip_full.safetensors"));
             ClipModel m = ClipModel.load(be, dt, CONFIGS, w, ByteTokenizer.clip(), "golden")) {
            var px = io.tensor("clip.pixel_values");
            try (ClipVisionEncoder.Output o = m.vision().forward(px.toFloatArray(), (int) px.dim(0))) {
                e.put("clip.vision_hidden", EncodersGolden.err(be, o.hidden(), io, "clip.vision_hidden"));
                e.put("clip.vision_pooled", EncodersGolden.err(be, o.pooled(), io, "clip.vision_pooled"));
                e.put("clip.image_embeds", EncodersGolden.err(be, o.embeds(), io, "clip.image_embeds"));
            }
            try (Tensor t = m.textEmbeds(EncodersGolden.ids(io, "clip.ids"))) {
                e.put("clip.text_embeds", EncodersGolden.err(be, t, io, "clip.text_embeds"));
            }
        }
        return e;
    }

    /** The stored RGB picture [h, w, 3] (values 0..255). */
    static BufferedImage picture(SafetensorsFile io) {
        var t = io.tensor("clip.picture");
        int h = (int) t.dim(0), w = (int) t.dim(1);
        float[] v = t.toFloatArray();
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int i = (y * w + x) * 3;
                img.setRGB(x, y, (int) v[i] << 16 | (int) v[i + 1] << 8 | (int) v[i + 2]);
            }
        return img;
    }

    /** Largest and mean absolute difference, in 8-bit levels (normalised differences times 255 * std), per reference key present. */
    static Map<String, double[]> preprocessingErrors() throws Exception {
        Map<String, double[]> out = new LinkedHashMap<>();
        try (SafetensorsFile io = SafetensorsFile.open(DIR.resolve("clip_io.safetensors"))) {
            float[] mine = ClipImages.pixelValues(picture(io), 28);
            for (String key : new String[] {"clip.picture_pixel_values", "clip.picture_pixel_values_pil"}) {
                if (!io.contains(key)) continue;
                float[] ref = io.tensor(key).toFloatArray();
                if (ref.length != mine.length) throw new AssertionError(key + ": " + ref.length + " values, ours " + mine.length);
                double max = 0, sum = 0;
                int plane = mine.length / 3;
                for (int i = 0; i < mine.length; i++) {
                    double levels = Math.abs(mine[i] - ref[i]) * 255 * ClipImages.STD[i / plane];
                    max = Math.max(max, levels);
                    sum += levels;
                }
                out.put(key, new double[] {max, sum / mine.length});
            }
        }
        return out;
    }
}
