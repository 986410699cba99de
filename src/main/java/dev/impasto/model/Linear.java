package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.Tensor;

/**
 * A linear layer of the model: a frozen {@link BaseLinear} plus, when it is a LoRA target, its {@link LoraGroup}.
 *
 * <p>forward: y = x W^T + bias, then h = drop(x) A^T (all pieces in one product) and y[:, piece rows] += s h_i B_i^T
 * accumulated into the base output (beta = 1). backward: dB_i += s dy_i^T h_i, dh_i = s dy_i B_i, dA += dh^T drop(x),
 * dx = dy W + dh A. The only activation LoRA saves beyond the layer input is h [rows, pieces * rank].
 */
public final class Linear {
    public final String key;
    public final BaseLinear base;
    LoraGroup lora;
    /** Mixed into the dropout seed so each layer draws its own mask. */
    private final long keyHash;

    public Linear(String key, BaseLinear base) {
        this.key = key;
        this.base = base;
        this.keyHash = key.hashCode() * 0x9E3779B97F4A7C15L;
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
     * out = x W^T + bias (+ LoRA). Returns h (owned by {@code saved}) when a LoRA is attached and saved is not null;
     * with saved == null (inference) h is a temporary.
     */
    public Tensor forward(Backend be, Tensor out, Tensor x, Scope saved, LoraContext ctx) {
        be.linear(out, x, base.weight(), base.bias(), 0);
        if (lora == null || ctx.loraScale() == 0) return null;
        Scope tmp = new Scope(be);
        try {
            Tensor h = (saved != null ? saved : tmp).empty(x.dtype(), x.rows(), lora.width());
            Tensor xin = x;
            if (lora.dropout > 0 && ctx.training()) {
                xin = tmp.empty(x.dtype(), x.rows(), x.cols());
                be.dropout(xin, x.matrix(), lora.dropout, ctx.dropoutSeed() ^ keyHash);
            }
            be.gemm(h, xin.matrix(), false, lora.computeA, true, 1, 0);
            double s = lora.scale() * ctx.loraScale();
            Tensor out2 = out.matrix();
            for (int i = 0; i < lora.pieces.size(); i++) {
                LoraGroup.Piece p = lora.pieces.get(i);
                be.gemm(out2.cols(p.rowStart(), p.rowEnd()), lora.pieceCols(h, i), false, lora.pieceRows(lora.computeB, i), true, s, 1);
            }
            return saved != null ? h : null;
        } finally {
            tmp.close();
        }
    }

    /**
     * Backward given dy: accumulates the LoRA gradients (if any) and writes dx = dy W (+ LoRA term) + betaDx * dx
     * when dx is not null. x and h are what forward saw and returned.
     */
    public void backward(Backend be, Tensor dx, double betaDx, Tensor dy, Tensor x, Tensor h, LoraContext ctx) {
        Tensor dym = dy.matrix();
        if (lora == null || h == null) {
            if (dx != null) be.linearInputGrad(dx.matrix(), dym, base.weight(), betaDx);
            return;
        }
        try (Scope tmp = new Scope(be)) {
            double s = lora.scale() * ctx.loraScale();
            Tensor dh = tmp.empty(dy.dtype(), dym.rows(), lora.width());
            for (int i = 0; i < lora.pieces.size(); i++) {
                LoraGroup.Piece p = lora.pieces.get(i);
                Tensor dyi = dym.cols(p.rowStart(), p.rowEnd());
                be.gemm(lora.pieceRows(lora.gradB, i), dyi, true, lora.pieceCols(h, i), false, s, 1);
                be.gemm(lora.pieceCols(dh, i), dyi, false, lora.pieceRows(lora.computeB, i), false, s, 0);
            }
            Tensor xin = x.matrix();
            if (lora.dropout > 0 && ctx.training()) {
                xin = tmp.empty(x.dtype(), x.rows(), x.cols());
                be.dropout(xin, x.matrix(), lora.dropout, ctx.dropoutSeed() ^ keyHash);
            }
            be.gemm(lora.gradA, dh, true, xin, false, 1, 1);
            if (dx != null) {
                be.linearInputGrad(dx.matrix(), dym, base.weight(), betaDx);
                // the dropout mask is linear: d(drop(x))/dx applied to dh A is drop(dh A)
                if (lora.dropout > 0 && ctx.training()) {
                    Tensor dxl = tmp.empty(dx.dtype(), dx.rows(), dx.cols());
                    be.gemm(dxl, dh, false, lora.computeA, false, 1, 0);
                    be.dropout(dxl, dxl, lora.dropout, ctx.dropoutSeed() ^ keyHash);
                    be.axpby(dx.matrix(), 1, dxl, 1);
                } else {
                    be.gemm(dx.matrix(), dh, false, lora.computeA, false, 1, 1);
                }
            }
        }
    }
}
