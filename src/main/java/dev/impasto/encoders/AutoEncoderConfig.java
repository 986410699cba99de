package dev.impasto.encoders;

import java.util.Arrays;

/**
 * Architecture of FLUX's autoencoder (black-forest-labs/flux AutoEncoderParams): a KL-VAE of ResNet blocks with one
 * mid attention block, downsampling 2^(levels - 1), latents scaled as 0.3611 * (z - 0.1159).
 */
public record AutoEncoderConfig(String name, int inChannels, int ch, int outCh, int[] chMult, int numResBlocks, int zChannels,
                                double scaleFactor, double shiftFactor) {
    public AutoEncoderConfig {
        if (chMult == null || chMult.length == 0) throw new IllegalArgumentException("invalid autoencoder config " + name + ": empty chMult");
        for (int m : chMult)
            if (m <= 0 || (ch * m) % 32 != 0)
                throw new IllegalArgumentException("invalid autoencoder config " + name + ": every level's width ch * mult must be a positive multiple of 32 (GroupNorm groups)");
        if (inChannels <= 0 || outCh <= 0 || numResBlocks <= 0 || zChannels <= 0 || scaleFactor == 0)
            throw new IllegalArgumentException("invalid autoencoder config " + name);
        chMult = chMult.clone();
    }

    @Override
    public int[] chMult() {
        return chMult.clone();
    }

    /** FLUX.1's ae.safetensors (84 M parameters, 16 latent channels, 8x downsampling). */
    public static AutoEncoderConfig flux() {
        return new AutoEncoderConfig("flux-ae", 3, 128, 3, new int[] {1, 2, 4, 4}, 2, 16, 0.3611, 0.1159);
    }

    /** Two levels of 32/64 channels (2x downsampling), FLUX's 16 latent channels: tests and the CPU demo. */
    public static AutoEncoderConfig tiny() {
        return new AutoEncoderConfig("ae-tiny", 3, 32, 3, new int[] {1, 2}, 1, 16, 0.3611, 0.1159);
    }

    /** Image pixels per latent pixel along each side. */
    public int downsampling() {
        return 1 << (chMult.length - 1);
    }

    public int levels() {
        return chMult.length;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof AutoEncoderConfig c && c.toString().equals(toString());
    }

    @Override
    public int hashCode() {
        return toString().hashCode();
    }

    @Override
    public String toString() {
        return name + "(in " + inChannels + ", ch " + ch + " x " + Arrays.toString(chMult) + ", " + numResBlocks + " res blocks, z " + zChannels
                + ", scale " + scaleFactor + ", shift " + shiftFactor + ")";
    }
}
