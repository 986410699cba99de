package dev.impasto.tensor;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The one seam between model code and hardware. Model, trainer and sampler are written once against this interface;
 * {@code CpuBackend} (plain Java, double arithmetic rounded to each tensor's dtype on store: the oracle) and
 * {@code CudaBackend} (kernels, cuBLASLt, libtorch attention: the fast path) implement it.
 *
 * <p>Conventions, shared by every op:
 * <ul>
 *   <li>Outputs are passed in, never returned, so callers control memory (llm.c style). An output is written
 *       completely; {@code beta} parameters say whether it is also read (out = result + beta * out).</li>
 *   <li>Activations are [B, L, D] tensors, or any tensor seen as a [rows, cols] matrix with a row stride
 *       ({@link Tensor#cols(long, long)} views are accepted wherever a "matrix" is taken).</li>
 *   <li>Per-sample vectors (modulation shift/scale/gate, timesteps) have one row per batch element; the rows of an
 *       activation are split evenly among them: with x of R rows and shift of B rows, rows [b R/B, (b+1) R/B) use row b.</li>
 *   <li>Arithmetic is at least fp32 (CPU: fp64); inputs and outputs may be BF16, F16 or F32 unless an op says otherwise.</li>
 *   <li>Multi-head tensors use the layout [B, L, H * Dh] ("BLHD"), for q, k, v and the attention output alike.</li>
 * </ul>
 */
public interface Backend extends AutoCloseable {

    /** "cpu" or "cuda:0". */
    String name();

    boolean isGpu();

    // ---------------------------------------------------------------- memory

    /** Uninitialised contiguous tensor. */
    Tensor empty(DType dtype, long... shape);

    default Tensor zeros(DType dtype, long... shape) {
        Tensor t = empty(dtype, shape);
        fill(t, 0);
        return t;
    }

    /** Tensor holding {@code values} (row-major) rounded to {@code dtype}. */
    Tensor fromDoubles(double[] values, DType dtype, long... shape);

    default Tensor fromFloats(float[] values, DType dtype, long... shape) {
        double[] d = new double[values.length];
        for (int i = 0; i < d.length; i++) d[i] = values[i];
        return fromDoubles(d, dtype, shape);
    }

    /**
     * Tensor holding raw little-endian elements of type {@code srcType} (as stored in a safetensors file), converted
     * to {@code dtype}. Bytes are copied; the source may be an mmap'd file region.
     */
    Tensor fromBytes(MemorySegment src, DType srcType, DType dtype, long... shape);

    /** All elements, row-major (strided views are gathered). Synchronises with the device. */
    double[] toDoubles(Tensor t);

    default float[] toFloats(Tensor t) {
        double[] d = toDoubles(t);
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    /** Raw bytes of a contiguous tensor in its own dtype, little-endian. */
    byte[] toBytes(Tensor t);

    /** dst = src elementwise (same rows x cols), converting dtype; both may be strided. */
    void copy(Tensor dst, Tensor src);

    void fill(Tensor t, double value);

    /** Standard normal samples from counter-based Philox4x32-10 keyed by seed: the same on every backend. */
    void randn(Tensor out, long seed);

    /** Uniform [0, 1) samples from the same Philox stream as {@link #randn} (a different counter range). */
    void rand(Tensor out, long seed);

    /**
     * Inverted dropout: out = x * keep / (1 - p), keep = (u >= p) for the uniforms u of {@link #rand} under seed.
     * Linear in x with a mask fixed by the seed, so the same call on dy is its backward.
     */
    void dropout(Tensor out, Tensor x, double p, long seed);

    /** Waits for all queued work. */
    void synchronize();

    /** Bytes currently held by live tensors (device memory for the GPU). */
    long bytesInUse();

    /** Highest {@link #bytesInUse()} since the last {@link #resetPeak()}. */
    long peakBytes();

    void resetPeak();

    /**
     * Returns memory that freed tensors left cached to the device, after the queued work. Call after freeing blocks that
     * later, differently sized requests could only reuse with waste (re-storing weights one layer at a time).
     */
    default void releaseCachedMemory() {}

    // ---------------------------------------------------------------- matrix products

    /**
     * out[M, N] = alpha * op(a) op(b) + beta * out, op(x) = x^T when its flag is set. a is [M, K] (or [K, M] when
     * transA), b is [K, N] (or [N, K] when transB). fp32 accumulation.
     */
    void gemm(Tensor out, Tensor a, boolean transA, Tensor b, boolean transB, double alpha, double beta);

    /** out[M, N] = x[M, K] W[N, K]^T + bias[N] (bias may be null) + beta * out. */
    void linear(Tensor out, Tensor x, LinearWeight w, Tensor bias, double beta);

    /** dx[M, K] = dy[M, N] W[N, K] + beta * dx. */
    void linearInputGrad(Tensor dx, Tensor dy, LinearWeight w, double beta);

    /** The weight as a dense [out, in] tensor of {@code out}'s dtype (dequantisation). */
    void dequantize(Tensor out, LinearWeight w);

    /**
     * NF4 (blocks of 64; the absmax double-quantized when asked) of a dense [out, in] weight on this backend,
     * bit-identical to {@link dev.impasto.quant.Nf4#quantize}: the quantize-on-load of the checkpoint loader. A non-finite
     * weight is an IllegalArgumentException naming its element. The reference quantizes on the host.
     */
    default LinearWeight quantizeNf4(Tensor w, boolean doubleQuant) {
        return dev.impasto.quant.WeightQuantizer.quantize(this, toFloats(w), w.rows(), w.cols(),
                doubleQuant ? dev.impasto.quant.BaseFormat.NF4_DQ : dev.impasto.quant.BaseFormat.NF4);
    }

    // ---------------------------------------------------------------- elementwise

    /** out = a + b. */
    void add(Tensor out, Tensor a, Tensor b);

    /** y = alpha * x + beta * y. */
    void axpby(Tensor y, double alpha, Tensor x, double beta);

    /** out = x * y elementwise. */
    void mul(Tensor out, Tensor x, Tensor y);

    /** GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
    void gelu(Tensor out, Tensor x);

    /** dx = dy * gelu'(x) + beta * dx. */
    void geluBackward(Tensor dx, Tensor dy, Tensor x, double beta);

    /** SiLU: x * sigmoid(x). */
    void silu(Tensor out, Tensor x);

    /** dx = dy * silu'(x) + beta * dx. */
    void siluBackward(Tensor dx, Tensor dy, Tensor x, double beta);

    // ---------------------------------------------------------------- normalisation and modulation

    /**
     * out = (1 + scale) * LN(x) + shift, LN without affine over the last dimension (eps 1e-6, biased variance).
     * shift and scale are [B, D] (null: plain LN). mean and rstd (F32, one per row of x) are saved for backward.
     */
    void layerNormModulate(Tensor out, Tensor mean, Tensor rstd, Tensor x, Tensor shift, Tensor scale);

    /**
     * Backward of {@link #layerNormModulate}: dx = dLN/dx (dy) + beta * dx; dshift[b] = sum over b's rows of dy;
     * dscale[b] = sum of dy * LN(x). dshift/dscale may be null (not needed), otherwise they are overwritten.
     */
    void layerNormModulateBackward(Tensor dx, Tensor dshift, Tensor dscale, Tensor dy, Tensor x, Tensor mean,
                                   Tensor rstd, Tensor scale, double beta);

    /** x += gate * y, gate [B, D] broadcast over each batch element's rows (the gated residual). */
    void gatedResidual(Tensor x, Tensor gate, Tensor y);

    /**
     * Backward of {@link #gatedResidual} given the residual gradient dx: dy = gate * dx (+ betaDy * dy);
     * dgate[b] = sum over b's rows of dx * y (overwritten; may be null).
     */
    void gatedResidualBackward(Tensor dy, Tensor dgate, Tensor dx, Tensor gate, Tensor y, double betaDy);

    /**
     * From a fused projection qkv [B, L, 3 H Dh] (q | k | v, each H heads of Dh) to q, k, v [B, Ltot, H Dh] at
     * sequence rows [seqOffset, seqOffset + L) of each batch element: q and k get RMSNorm over Dh (fp32, eps 1e-6),
     * times their learned scale [Dh], then RoPE: pairs (2j, 2j+1) of head dim rotated by the angle whose cos and sin
     * are pe[seqOffset + l, j, 0..1] (pe: F32 [Ltot, Dh/2, 2]); v is copied. qRstd/kRstd (F32 [B, H, L]) may be null.
     */
    void qkNormRope(Tensor q, Tensor k, Tensor v, Tensor qRstd, Tensor kRstd, Tensor qkv, Tensor qScale, Tensor kScale,
                    Tensor pe, int heads, long seqOffset);

    /** Backward of {@link #qkNormRope}: dqkv [B, L, 3 H Dh] (overwritten) from dq, dk, dv at the same rows. */
    void qkNormRopeBackward(Tensor dqkv, Tensor dq, Tensor dk, Tensor dv, Tensor qkv, Tensor qScale, Tensor kScale,
                            Tensor pe, int heads, long seqOffset);

    // ---------------------------------------------------------------- attention

    /**
     * out = softmax(q k^T / sqrt(Dh)) v per batch element and head, no mask; q, k, v, out [B, L, H Dh]; lse (F32
     * [B, H, L], natural-log sum of exp of the scaled scores) is saved for backward.
     */
    void attention(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, int heads);

    /** Backward of {@link #attention}: dq, dk, dv (overwritten) from dout. */
    void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                           Tensor lse, int heads);

    // ---------------------------------------------------------------- embeddings and sequence

    /**
     * FLUX's sinusoidal embedding: t' = timeFactor * t[b]; freqs_i = exp(-ln(maxPeriod) i / half), i < half = dim/2;
     * out[b] = [cos(t' freqs), sin(t' freqs)] (cos first; a zero column when dim is odd). t is F32 [B].
     */
    void timestepEmbedding(Tensor out, Tensor t, double timeFactor, double maxPeriod);

    /** out[B, La + Lb, D] = cat(a[B, La, D], b[B, Lb, D]) along the sequence. */
    void concatSeq(Tensor out, Tensor a, Tensor b, int batch);

    /** Inverse of {@link #concatSeq}: a and b receive the two parts of in. */
    void splitSeq(Tensor a, Tensor b, Tensor in, int batch);

    // ---------------------------------------------------------------- training

    /**
     * Flow matching mix: xt = (1 - t[b]) x0 + t[b] noise and target = noise - x0, for the rows of batch element b
     * (t F32 [B]).
     */
    void flowMatchMix(Tensor xt, Tensor target, Tensor x0, Tensor noise, Tensor t);

    /**
     * Mean squared error over all elements: writes loss (F32 [1]) = mean((pred - target)^2) and, if grad is not
     * null, grad = gradScale * 2 (pred - target) / N.
     */
    void mseLoss(Tensor loss, Tensor grad, Tensor pred, Tensor target, double gradScale);

    /** out (F32 [1]) = sum over all tensors of the sum of squared elements (for the global gradient norm). */
    void sumOfSquares(Tensor out, List<Tensor> tensors);

    /**
     * AdamW on every (param, grad, m, v) quadruple: params and moments F32. The gradient is first multiplied by
     * min(1, maxGradNorm / sqrt(gradNormSq[0])) when gradNormSq is given and maxGradNorm > 0, and by gradScale.
     * Bias correction uses {@code step} (1-based). Decoupled weight decay: p -= lr * weightDecay * p.
     * Runs on the device with no host synchronisation.
     */
    void adamw(List<Tensor> params, List<Tensor> grads, List<Tensor> m, List<Tensor> v, AdamWConfig config,
               long step, double lr, Tensor gradNormSq, double gradScale);

    /** True if any element of any tensor is NaN or infinite (synchronises). */
    boolean hasNonFinite(List<Tensor> tensors);

    // ---------------------------------------------------------------- text encoders and autoencoder (inference only)
    // Image tensors are NCHW ([B, C, H, W], contiguous). These ops have no backward: the encoders are frozen and run
    // without gradients. Backends that lack one throw UnsupportedOperationException naming the op.

    private UnsupportedOperationException missing(String op) {
        return new UnsupportedOperationException(op + " is not implemented on " + name());
    }

    /** out[i, :] = table[ids[i], :]: ids I32 (any shape, N elements), table [V, D], out [N, D]. Ids outside [0, V) are an error. */
    default void embedding(Tensor out, Tensor ids, Tensor table) {
        throw missing("embedding");
    }

    /** T5's RMSNorm: out = weight * x / sqrt(mean(x^2) + eps) over the last dimension, statistics in fp32 or wider. */
    default void rmsNorm(Tensor out, Tensor x, Tensor weight, double eps) {
        throw missing("rmsNorm");
    }

    /** LayerNorm with affine parameters over the last dimension (biased variance): weight [D], bias [D] or null. */
    default void layerNorm(Tensor out, Tensor x, Tensor weight, Tensor bias, double eps) {
        throw missing("layerNorm");
    }

    /** CLIP's quick GELU: x * sigmoid(1.702 x). */
    default void quickGelu(Tensor out, Tensor x) {
        throw missing("quickGelu");
    }

    /**
     * Inference attention per batch element and head: out = softmax(scale * q k^T + bias[h] (+ causal mask)) v.
     * q, out [batch * Lq, H * Dh], k, v [batch * Lk, H * Dh] (BLHD, row strides allowed); bias F32 [H, Lq, Lk] shared by
     * the batch, or null; causal masks key j > query i. Softmax in fp32; no log-sum-exp is kept.
     */
    default void attentionInference(Tensor out, Tensor q, Tensor k, Tensor v, int batch, int heads, double scale, Tensor bias,
                                    boolean causal) {
        throw missing("attentionInference");
    }

    /**
     * 2-D convolution, NCHW: x [B, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout] or null, out [B, Cout, Ho, Wo] with
     * Ho = (H + 2 padding - kh) / stride + 1 (Wo likewise). Zero padding on all four sides.
     */
    default void conv2d(Tensor out, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        throw missing("conv2d");
    }

    /**
     * GroupNorm over x [B, C, ...] (C split into {@code groups} groups of consecutive channels, statistics over each group's
     * channels and positions, biased variance), then out = norm * weight[c] + bias[c], then SiLU when {@code silu}.
     */
    default void groupNorm(Tensor out, Tensor x, int groups, Tensor weight, Tensor bias, double eps, boolean silu) {
        throw missing("groupNorm");
    }

    /** Nearest-neighbour 2x upsampling: x [B, C, H, W] -> out [B, C, 2H, 2W]. */
    default void upsampleNearest2x(Tensor out, Tensor x) {
        throw missing("upsampleNearest2x");
    }

    /** Zero padding: x [B, C, H, W] -> out [B, C, top + H + bottom, left + W + right]. */
    default void pad2d(Tensor out, Tensor x, int top, int bottom, int left, int right) {
        throw missing("pad2d");
    }

    /** Batched transpose of contiguous tensors: x [B, M, N] -> out [B, N, M] (rank 2: one matrix). */
    default void transpose(Tensor out, Tensor x) {
        throw missing("transpose");
    }

    @Override
    void close();
}
