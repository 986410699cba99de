package dev.impasto.encoders;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.cuda.Cuda;
import dev.impasto.cuda.DeviceAllocator;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cuda.CudaBackend;
import java.util.Locale;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * FLUX.1's encoders at full size with random bf16 weights on the GPU: T5-XXL on a 512-token prompt, CLIP-L on 77
 * tokens, the autoencoder encoding a 1024x1024 picture and decoding its 128x128 latent (whole and in tiles). Prints
 * time (after one warm-up) and memory: impasto's allocator peak, plus the device's used memory, which also counts
 * libtorch's cuDNN convolution buffers. Asserts shapes and finite outputs.
 */
@Tag("gpu")
class FullSizeEncodersGpuTest {
    static void report(String what, CudaBackend be, long nanos, long usedBefore) {
        long[] mem = DeviceAllocator.memInfo();
        System.out.printf(Locale.ROOT, "%-34s %8.1f ms   impasto peak %6.2f GiB   device used %6.2f GiB (%+.2f)%n", what, nanos / 1e6,
                be.peakBytes() / 1073741824.0, (mem[1] - mem[0]) / 1073741824.0, (mem[1] - mem[0] - usedBefore) / 1073741824.0);
    }

    static long used() {
        long[] m = DeviceAllocator.memInfo();
        return m[1] - m[0];
    }

    static boolean finite(float[] v) {
        for (float f : v) if (!Float.isFinite(f)) return false;
        return true;
    }

    @Test
    void t5xxlAndClipLargeOnA512TokenPrompt() {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        try (CudaBackend be = CudaBackend.open(0)) {
            long t0 = System.nanoTime();
            RandomEncoderWeights w = new RandomEncoderWeights(1);
            try (T5Encoder t5 = T5Encoder.load(T5Config.xxl(512), be, DType.BF16, w, BaseFormat.BF16);
                 ClipTextEncoder clip = ClipTextEncoder.load(ClipConfig.large(), be, DType.BF16, w, BaseFormat.BF16)) {
                be.synchronize();
                System.out.printf(Locale.ROOT, "random T5-XXL + CLIP-L weights: %.2f GiB in %.1f s%n", (t5.weightBytes() + clip.weightBytes()) / 1073741824.0,
                        (System.nanoTime() - t0) / 1e9);
                int[] ids = new int[512];
                for (int i = 0; i < 40; i++) ids[i] = 100 + 37 * i;
                ids[40] = 1;
                for (int rep = 0; rep < 2; rep++) {
                    be.resetPeak();
                    long before = used(), s = System.nanoTime();
                    try (Tensor out = t5.forward(new int[][] {ids})) {
                        be.synchronize();
                        if (rep == 1) report("T5-XXL forward (1 x 512 tokens)", be, System.nanoTime() - s, before);
                        assertArrayEquals(new long[] {1, 512, 4096}, out.shape());
                        assertTrue(finite(be.toFloats(out)));
                    }
                }
                int[] cids = ByteTokenizer.clip().encode("a painting", 77).ids();
                for (int i = 0; i < cids.length; i++) if (cids[i] == ByteTokenizer.CLIP_EOS) cids[i] = 49407;
                for (int rep = 0; rep < 2; rep++) {
                    be.resetPeak();
                    long before = used(), s = System.nanoTime();
                    try (ClipTextEncoder.Output o = clip.forward(new int[][] {cids}, new int[] {dev.impasto.encoders.tokenizer.ClipTokenizer.pooledIndex(cids)})) {
                        be.synchronize();
                        if (rep == 1) report("CLIP-L forward (1 x 77 tokens)", be, System.nanoTime() - s, before);
                        assertArrayEquals(new long[] {1, 768}, o.pooled().shape());
                        assertTrue(finite(be.toFloats(o.pooled())));
                    }
                }
            }
        }
    }

    @Test
    void clipVitLargeVisionTowerOnABatchOf16() {
        // what impasto eval --clip runs per batch of pictures (openai/clip-vit-large-patch14: 24 layers, 257 tokens)
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        ClipVisionConfig c = ClipVisionConfig.large();
        try (CudaBackend be = CudaBackend.open(0);
             ClipVisionEncoder v = ClipVisionEncoder.load(c, be, DType.BF16, new RandomEncoderWeights(5), BaseFormat.BF16)) {
            System.out.printf(Locale.ROOT, "random CLIP ViT-L/14 vision weights: %.2f GiB%n", v.weightBytes() / 1073741824.0);
            int batch = 16, s = c.imageSize();
            float[] pixels = new float[batch * 3 * s * s];
            java.util.Random r = new java.util.Random(6);
            for (int i = 0; i < pixels.length; i++) pixels[i] = (float) r.nextGaussian();
            for (int rep = 0; rep < 2; rep++) {
                be.resetPeak();
                long before = used(), t = System.nanoTime();
                try (ClipVisionEncoder.Output o = v.forward(pixels, batch)) {
                    be.synchronize();
                    if (rep == 1) report("CLIP ViT-L/14 vision (16 x 224x224)", be, System.nanoTime() - t, before);
                    assertArrayEquals(new long[] {batch, c.projection()}, o.embeds().shape());
                    assertTrue(finite(be.toFloats(o.embeds())));
                }
            }
        }
    }

    @Test
    void autoencoderAt1024() {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        try (CudaBackend be = CudaBackend.open(0);
             AutoEncoder ae = AutoEncoder.load(AutoEncoderConfig.flux(), be, DType.BF16, new RandomEncoderWeights(2))) {
            try (Tensor image = be.empty(DType.BF16, 1, 3, 1024, 1024)) {
                be.rand(image, 3);
                for (int rep = 0; rep < 2; rep++) {
                    be.resetPeak();
                    long before = used(), s = System.nanoTime();
                    try (Tensor z = ae.encode(image)) {
                        be.synchronize();
                        if (rep == 1) report("VAE encode 1024x1024 (conv " + dev.impasto.tensor.cuda.CudaEncoderOps.convImplementation() + ")", be, System.nanoTime() - s, before);
                        assertArrayEquals(new long[] {1, 16, 128, 128}, z.shape());
                        assertTrue(finite(be.toFloats(z)));
                    }
                }
            }
            try (Tensor z = be.empty(DType.BF16, 1, 16, 128, 128)) {
                be.randn(z, 4);
                for (int rep = 0; rep < 2; rep++) {
                    be.resetPeak();
                    long before = used(), s = System.nanoTime();
                    try (Tensor img = ae.decode(z)) {
                        be.synchronize();
                        if (rep == 1) report("VAE decode 128x128 -> 1024x1024", be, System.nanoTime() - s, before);
                        assertArrayEquals(new long[] {1, 3, 1024, 1024}, img.shape());
                    }
                }
                be.resetPeak();
                long before = used(), s = System.nanoTime();
                float[] tiled = ae.decodeTiled(z, 64, 16);
                report("VAE tiled decode (64 + 16 overlap)", be, System.nanoTime() - s, before);
                assertTrue(tiled.length == 3 * 1024 * 1024 && finite(tiled));
            }
        }
    }
}
