package dev.impasto.train;

import java.util.SplittableRandom;

/**
 * Random latents and prompt embeddings of FLUX's shapes, made on the fly: for timing and memory runs at full size
 * without a dataset ({@code --data.cache synthetic:1024x1024:64} = 64 items of 1024x1024 pictures, i.e. 128x128
 * 16-channel latents with 512 T5 tokens).
 */
public final class SyntheticSet implements TrainingSet {
    private final int items, latentH, latentW, textLen, textDim, pooledDim;

    public SyntheticSet(int items, int imageH, int imageW, int textLen, int textDim, int pooledDim) {
        this.items = items;
        this.latentH = imageH / 8;
        this.latentW = imageW / 8;
        this.textLen = textLen;
        this.textDim = textDim;
        this.pooledDim = pooledDim;
    }

    /** "synthetic:HxW[:N]". */
    public static SyntheticSet parse(String spec, int textDim, int pooledDim) {
        String[] p = spec.split(":");
        String[] hw = p.length > 1 ? p[1].split("x") : new String[] {"512", "512"};
        int n = p.length > 2 ? Integer.parseInt(p[2]) : 64;
        int h = Integer.parseInt(hw[0]), w = Integer.parseInt(hw.length > 1 ? hw[1] : hw[0]);
        if (h % 16 != 0 || w % 16 != 0) throw new IllegalArgumentException("synthetic data size " + h + "x" + w + " must be multiples of 16");
        return new SyntheticSet(n, h, w, 512, textDim, pooledDim);
    }

    private static float[] gaussian(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i += 2) {
            double u1 = 1 - r.nextDouble(), u2 = r.nextDouble(), rad = Math.sqrt(-2 * Math.log(u1));
            v[i] = (float) (rad * Math.cos(2 * Math.PI * u2));
            if (i + 1 < n) v[i + 1] = (float) (rad * Math.sin(2 * Math.PI * u2));
        }
        return v;
    }

    @Override
    public int size() {
        return items;
    }

    @Override
    public Item item(int index) {
        return new Item(gaussian(index * 3L, 16 * latentH * latentW), 16, latentH, latentW, gaussian(index * 3L + 1, textLen * textDim), textLen,
                gaussian(index * 3L + 2, pooledDim), "synthetic " + index);
    }

    @Override
    public String bucket(int index) {
        return latentH + "x" + latentW;
    }

    @Override
    public Item emptyPrompt() {
        return new Item(null, 16, latentH, latentW, new float[textLen * textDim], textLen, new float[pooledDim], "");
    }

    @Override
    public int latentChannels() {
        return 16;
    }

    @Override
    public int textDim() {
        return textDim;
    }

    @Override
    public int pooledDim() {
        return pooledDim;
    }
}
