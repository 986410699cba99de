package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.Tensor;

/**
 * A linear layer of the model: a frozen {@link BaseLinear} plus, when it is a LoRA target, its {@link LoraGroup}.
 *
 * <p>forward: y = x W^T + bias + s h B^T with h = drop(x) A^T (all pieces' A in one product). backward:
 * dB_i += s dy_i^T h_i, dh_i = s dy_i B_i, dA += dh^T drop(x), dx = dy W + dh A. The only activation LoRA saves
 * beyond the layer input is h [rows, pieces * rank].
 *
 * <p>Fused forward: when the caller hands x inside a buffer with {@link #loraWidth()} spare columns (made by
 * {@link #newInput}), h is written into those columns and the up-projection rides along the base product as extra
 * K: y = [x | h] [W | s B]^T + bias, one GEMM whose output is written once. Applying s B h afterwards instead (y +=
 * ..., beta = 1) reads and writes all of y a second time, a third of a 3072-wide layer's time at 4608 tokens.
 * [W | s B] is the dense weight with B's pieces block-diagonal in the extra columns: for a dense base the weight is
 * stored that way once ({@link #padDenseWeight}), a quantized base is dequantized into the left columns of a shared
 * scratch.
 */
public final class Linear {
    public final String key;
    BaseLinear base;
    LoraGroup lora;
    /** Mixed into the dropout seed so each layer draws its own mask. */
    private final long keyHash;
    /** [out, in + loraWidth] owner of a dense base weight stored with room for s B (see padDenseWeight); else null. */
    private Tensor paddedWeight;
    /**
     * What paddedWeight's tail holds: s B of this group at this version and scale (group null: unknown). Sampling runs
     * the same B at the same scale for every step, so the tail is written once, not before every product.
     */
    private LoraGroup tailGroup;
    private long tailVersion;
    private double tailScale;
    /** Shared scratch for the dequantized [W | s B] of quantized bases (null: a temporary per call). */
    WeightScratch scratch;

    /**
     * Whether the blocks hand this layer its input in a {@link #newInput} buffer (qkv, mlp.0, linear1, linear2: their
     * inputs are written by LayerNorm+modulate or into the single block's concatenation), so that a LoRA here takes the
     * fused path; the others (proj, mlp.2, the modulation linears) keep the plain sequence and their weights as loaded.
     */
    final boolean fusedInput;

    public Linear(String key, BaseLinear base) {
        this.key = key;
        this.base = base;
        this.keyHash = key.hashCode() * 0x9E3779B97F4A7C15L;
        this.fusedInput = key.endsWith("_attn.qkv") || key.endsWith("_mlp.0") || key.endsWith(".linear1") || key.endsWith(".linear2");
    }

    public BaseLinear base() {
        return base;
    }

    public LoraGroup lora() {
        return lora;
    }

    public long in() {
        return base.in();
    }

    public long out() {
        return base.out();
    }

    /**
     * Attaches {@code g} (null detaches) and prepares the fused forward: a dense base is re-stored with room for s B
     * ({@link #padDenseWeight}), a quantized one dequantizes into {@code scratch} (null: a temporary per call).
     * Returns the new owner of a re-stored dense weight, which the caller closes, or null.
     */
    public Tensor attachLora(Backend be, LoraGroup g, WeightScratch scratch) {
        if (g != null && g.in() != in()) throw new IllegalArgumentException("LoRA " + g.key + " has input " + g.in() + ", the layer " + in());
        LoraGroup before = lora;
        lora = g;
        this.scratch = scratch;
        try {
            return g == null ? null : padDenseWeight(be);
        } catch (RuntimeException e) { // e.g. out of memory while re-storing the weight: the layer stays as it was
            lora = before;
            throw e;
        }
    }

    /** The [out, in + loraWidth] dense weight with room for s B (null when not re-stored); for benchmarks. */
    public Tensor paddedWeightForBench() {
        return paddedWeight;
    }

    /**
     * Spare input columns the fused forward wants: the attached LoRA's width (pieces x rank) rounded up to 8 so that
     * rows of the wider buffers and weights stay 16-byte aligned for cuBLASLt (an unaligned stride would make it copy
     * the whole weight on every product); the columns past the width are zero in the weight and in the input. 0 without
     * a LoRA or for a layer whose input the blocks do not allocate with {@link #newInput}.
     */
    public long loraWidth() {
        return lora == null || !fusedInput ? 0 : (lora.width() + 7) / 8 * 8;
    }

    /**
     * An input buffer for {@link #forward}: shape with its last dimension widened by {@link #loraWidth()}. Producers
     * write the layer input into {@link #inputOf}(buffer); forward puts h into the rest.
     */
    public Tensor newInput(Scope scope, DType dtype, long... shape) {
        if (shape[shape.length - 1] != in())
            throw new IllegalArgumentException(key + ": an input buffer's last dimension is " + in() + ", got " + java.util.Arrays.toString(shape));
        long[] wide = shape.clone();
        wide[wide.length - 1] += loraWidth();
        return scope.empty(dtype, wide);
    }

    /** The layer input inside a buffer from {@link #newInput} (the buffer itself when it has no spare columns). */
    public Tensor inputOf(Tensor buffer) {
        return buffer.cols() == in() ? buffer : buffer.cols(0, in());
    }

    /**
     * Stores a dense base weight as the left part of an [out, in + loraWidth] tensor so that the fused forward finds
     * [W | s B] in place. Returns the new owner (the caller owns it and the old storage is closed) or null when
     * nothing changed (no LoRA, a quantized base, or already padded for this width).
     */
    public Tensor padDenseWeight(Backend be) {
        long w = loraWidth();
        if (w == 0 || !(base.weight() instanceof LinearWeight.Dense d) || d.w().rank() != 2) return null;
        if (paddedWeight != null && paddedWeight.cols() == in() + w) return null;
        Tensor p = be.empty(d.w().dtype(), out(), in() + w);
        be.copy(p.cols(0, in()), d.w());
        be.fill(p.cols(in(), in() + w), 0);
        d.w().close();
        if (paddedWeight != null) paddedWeight.close();
        // the old block is a little smaller than any padded one: left cached, the next layers' requests would take
        // larger cached blocks (up to a quarter more) and hold the difference; measured +2.4 GiB on FLUX.1-dev in bf16
        be.releaseCachedMemory();
        paddedWeight = p;
        tailGroup = null;
        base = new BaseLinear(new LinearWeight.Dense(p.cols(0, in())), base.bias());
        return p;
    }

    /**
     * out = x W^T + bias (+ LoRA). x is the input [rows, in] or a {@link #newInput} buffer [rows, in + loraWidth]
     * (then the fused path runs and h lives in the buffer's spare columns: the buffer must outlive h). Returns h
     * when a LoRA is attached and saved is not null (allocated in {@code saved} unless it lives in x's buffer);
     * with saved == null (inference) h is a temporary.
     */
    public Tensor forward(Backend be, Tensor out, Tensor x, Scope saved, LoraContext ctx) {
        long k = in();
        boolean wide = x.cols() != k;
        if (wide && x.cols() != k + loraWidth())
            throw new IllegalArgumentException(key + ": input " + x + " must have " + k + " columns, or " + (k + loraWidth())
                    + " (a newInput buffer for the attached LoRA)");
        Tensor xv = wide ? x.cols(0, k) : x;
        if (lora == null || ctx.loraScale() == 0) {
            be.linear(out, xv, base.weight(), base.bias(), 0);
            return null;
        }
        Scope tmp = new Scope(be);
        try {
            Tensor h = wide ? x.cols(k, k + lora.width()) : (saved != null ? saved : tmp).empty(x.dtype(), x.rows(), lora.width());
            if (wide && loraWidth() > lora.width()) be.fill(x.cols(k + lora.width(), k + loraWidth()), 0); // the alignment columns
            Tensor xin = xv;
            if (lora.dropout > 0 && ctx.training()) {
                xin = tmp.empty(x.dtype(), x.rows(), k);
                be.dropout(xin, xv.matrix(), lora.dropout, ctx.dropoutSeed() ^ keyHash);
            }
            be.gemm(h.matrix(), xin.matrix(), false, lora.computeA, true, 1, 0);
            double s = lora.scale() * ctx.loraScale();
            Tensor wcat = wide ? weightWithLora(be, tmp, x.dtype()) : null;
            if (wcat != null) {
                fillLoraColumns(be, wcat, s);
                be.linear(out, x.matrix(), new LinearWeight.Dense(wcat), base.bias(), 0);
            } else {
                be.linear(out, xv, base.weight(), base.bias(), 0);
                Tensor out2 = out.matrix(), hm = h.matrix();
                for (int i = 0; i < lora.pieces.size(); i++) {
                    LoraGroup.Piece p = lora.pieces.get(i);
                    be.gemm(out2.cols(p.rowStart(), p.rowEnd()), lora.pieceCols(hm, i), false, lora.pieceRows(lora.computeB, i), true, s, 1);
                }
            }
            return saved != null ? h : null;
        } finally {
            tmp.close();
        }
    }

    /**
     * The extra columns of [W | s B]: piece i's s B_i in its output rows and its rank columns, zero elsewhere. Skipped
     * when wcat is the re-stored dense weight and its tail already holds this B (unchanged compute copy) at this scale.
     */
    private void fillLoraColumns(Backend be, Tensor wcat, double s) {
        boolean persistent = wcat == paddedWeight;
        if (persistent && tailGroup == lora && lora.hasComputeCopies() && tailVersion == lora.version() && tailScale == s) return;
        tailGroup = null;
        Tensor tail = wcat.cols(in(), in() + loraWidth());
        be.fill(tail, 0);
        for (int i = 0; i < lora.pieces.size(); i++) {
            LoraGroup.Piece p = lora.pieces.get(i);
            be.axpby(lora.pieceCols(tail.rows(p.rowStart(), p.rowEnd()), i), s, lora.pieceRows(lora.computeB, i), 0);
        }
        if (persistent) {
            tailGroup = lora;
            tailVersion = lora.version();
            tailScale = s;
        }
    }

    /**
     * [W | tail] [out, in + loraWidth] in dtype with the tail to be filled by the caller, or null when this base cannot
     * take the fused path (a dense weight not padded by padDenseWeight, or of another dtype than the activations).
     */
    private Tensor weightWithLora(Backend be, Scope tmp, DType dtype) {
        long k = in(), w = loraWidth();
        if (base.weight() instanceof LinearWeight.Dense) {
            if (paddedWeight == null || paddedWeight.cols() != k + w || paddedWeight.dtype() != dtype) return null;
            return paddedWeight;
        }
        Tensor cat = scratch != null ? scratch.get(be, dtype, out(), k + w) : tmp.empty(dtype, out(), k + w);
        be.dequantize(cat.cols(0, k), base.weight());
        return cat;
    }

    /**
     * Backward given dy: accumulates the LoRA gradients (if any) and writes dx = dy W (+ LoRA term) + betaDx * dx
     * when dx is not null. x and h are what forward saw and returned (x may be the forward's input buffer).
     *
     * <p>dx may be a {@link #newInput} buffer [rows, in + loraWidth]: then, with betaDx = 0, dx and dh come out of one
     * product, [dx | dh] = dy [W | s B] (dh_i = s dy_i B_i lands in the spare columns), instead of reading dy again per
     * piece; the real dx is {@link #inputOf}(buffer).
     */
    public void backward(Backend be, Tensor dx, double betaDx, Tensor dy, Tensor x, Tensor h, LoraContext ctx) {
        x = inputOf(x);
        long k = in();
        boolean wideDx = dx != null && dx.cols() != k;
        if (wideDx && dx.cols() != k + loraWidth())
            throw new IllegalArgumentException(key + ": input gradient " + dx + " must have " + k + " columns, or " + (k + loraWidth())
                    + " (a newInput buffer for the attached LoRA)");
        Tensor dxv = wideDx ? dx.cols(0, k) : dx;
        Tensor dym = dy.matrix();
        if (lora == null || h == null) {
            if (dxv != null) be.linearInputGrad(dxv.matrix(), dym, base.weight(), betaDx);
            return;
        }
        try (Scope tmp = new Scope(be)) {
            double s = lora.scale() * ctx.loraScale();
            Tensor wcat = wideDx && betaDx == 0 ? weightWithLora(be, tmp, dy.dtype()) : null;
            Tensor dh;
            if (wcat != null) {
                fillLoraColumns(be, wcat, s);
                be.gemm(dx.matrix(), dym, false, wcat, false, 1, 0);
                dh = dx.matrix().cols(k, k + lora.width());
            } else {
                dh = tmp.empty(dy.dtype(), dym.rows(), lora.width());
            }
            for (int i = 0; i < lora.pieces.size(); i++) {
                LoraGroup.Piece p = lora.pieces.get(i);
                Tensor dyi = dym.cols(p.rowStart(), p.rowEnd());
                be.gemm(lora.pieceRows(lora.gradB, i), dyi, true, lora.pieceCols(h.matrix(), i), false, s, 1);
                if (wcat == null) be.gemm(lora.pieceCols(dh, i), dyi, false, lora.pieceRows(lora.computeB, i), false, s, 0);
            }
            Tensor xin = x.matrix();
            if (lora.dropout > 0 && ctx.training()) {
                xin = tmp.empty(x.dtype(), x.rows(), x.cols());
                be.dropout(xin, x.matrix(), lora.dropout, ctx.dropoutSeed() ^ keyHash);
            }
            be.gemm(lora.gradA, dh, true, xin, false, 1, 1);
            if (dxv != null) {
                if (wcat == null) be.linearInputGrad(dxv.matrix(), dym, base.weight(), betaDx);
                // the dropout mask is linear: d(drop(x))/dx applied to dh A is drop(dh A)
                if (lora.dropout > 0 && ctx.training()) {
                    Tensor dxl = tmp.empty(dxv.dtype(), dxv.rows(), k);
                    be.gemm(dxl, dh, false, lora.computeA, false, 1, 0);
                    be.dropout(dxl, dxl, lora.dropout, ctx.dropoutSeed() ^ keyHash);
                    be.axpby(dxv.matrix(), 1, dxl, 1);
                } else {
                    be.gemm(dxv.matrix(), dh, false, lora.computeA, false, 1, 1);
                }
            }
        }
    }
}
