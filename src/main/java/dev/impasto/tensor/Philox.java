package dev.impasto.tensor;

/**
 * Counter-based random numbers (Philox4x32-10, Salmon et al. 2011), the same on the CPU and in the CUDA kernels, so
 * a seed names the same noise on every backend.
 *
 * <p>Element i of a tensor (row-major) takes lane i % 4 of the block for counter (i / 4 low, i / 4 high, stream, 0)
 * under key (seed low, seed high). Uniforms are the top 24 bits: u = (x >>> 8) * 2^-24 in [0, 1). Normals pair
 * lanes (0, 1) and (2, 3) with Box-Muller: r = sqrt(-2 ln(1 - u_a)), z_a = r cos(2 pi u_b), z_b = r sin(2 pi u_b).
 */
public final class Philox {
    public static final int STREAM_NORMAL = 0;
    public static final int STREAM_UNIFORM = 1;
    private static final int M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    private Philox() {}

    /** The four 32-bit outputs for one counter. */
    public static int[] block(long counter, int stream, long seed) {
        int c0 = (int) counter, c1 = (int) (counter >>> 32), c2 = stream, c3 = 0;
        int k0 = (int) seed, k1 = (int) (seed >>> 32);
        for (int round = 0; round < 10; round++) {
            long p0 = (M0 & 0xffffffffL) * (c0 & 0xffffffffL);
            long p1 = (M1 & 0xffffffffL) * (c2 & 0xffffffffL);
            int hi0 = (int) (p0 >>> 32), lo0 = (int) p0, hi1 = (int) (p1 >>> 32), lo1 = (int) p1;
            int n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
            c0 = n0; c1 = n1; c2 = n2; c3 = n3;
            k0 += W0;
            k1 += W1;
        }
        return new int[] {c0, c1, c2, c3};
    }

    public static double uniform(int bits) {
        return (bits >>> 8) * 0x1p-24;
    }

    /** Fills out with n uniforms in [0, 1). */
    public static void uniforms(double[] out, long seed) {
        for (int i = 0; i < out.length; i += 4) {
            int[] b = block(i >>> 2, STREAM_UNIFORM, seed);
            for (int j = 0; j < 4 && i + j < out.length; j++) out[i + j] = uniform(b[j]);
        }
    }

    /** Fills out with standard normals. */
    public static void normals(double[] out, long seed) {
        for (int i = 0; i < out.length; i += 4) {
            int[] b = block(i >>> 2, STREAM_NORMAL, seed);
            for (int pair = 0; pair < 2; pair++) {
                double ua = uniform(b[2 * pair]), ub = uniform(b[2 * pair + 1]);
                double r = Math.sqrt(-2 * Math.log(1 - ua));
                double th = 2 * Math.PI * ub;
                int ia = i + 2 * pair;
                if (ia < out.length) out[ia] = r * Math.cos(th);
                if (ia + 1 < out.length) out[ia + 1] = r * Math.sin(th);
            }
        }
    }
}
