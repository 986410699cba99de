package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;

/**
 * FLUX's single-stream block over x = [txt ; img]:
 * <pre>
 * (shift, scale, gate) = lin(silu(vec))
 * [qkv | mlp] = linear1((1 + scale) LN(x) + shift);  q, k = RoPE(RMSNorm(q), RMSNorm(k))
 * x += gate * linear2([attn(q, k, v) | gelu(mlp)])
 * </pre>
 * The attention output and gelu(mlp) are written straight into the two column ranges of linear2's input, so the
 * concatenation costs no copy.
 */
public final class SingleStreamBlock {
    public final int index;
    public final Linear mod, linear1, linear2;
    public final Tensor qScale, kScale;
    private final int heads;

    public SingleStreamBlock(int index, Linear mod, Linear linear1, Tensor qScale, Tensor kScale, Linear linear2, int heads) {
        this.index = index;
        this.mod = mod;
        this.linear1 = linear1;
        this.qScale = qScale;
        this.kScale = kScale;
        this.linear2 = linear2;
        this.heads = heads;
    }

    public static final class Saved implements AutoCloseable {
        final Scope scope;
        Tensor x, mod, hMod, mean, rstd, xmod, l1, hL1, q, k, v, cat, lse, y, hL2;

        Saved(Backend be) {
            scope = new Scope(be);
        }

        @Override
        public void close() {
            scope.close();
        }
    }

    public Saved forward(Backend be, Tensor x, Tensor vecAct, Tensor pe, LoraContext ctx, Scope out, boolean save, Tensor[] result) {
        DType dt = x.dtype();
        int batch = (int) vecAct.rows();
        long d = x.cols(), len = x.rows() / batch;
        long mlp = linear1.out() - 3 * d;
        Saved s = new Saved(be);
        try {
            Scope sc = s.scope, saveScope = save ? sc : null;
            s.x = x;
            s.mod = sc.empty(dt, batch, 3 * d);
            s.hMod = mod.forward(be, s.mod, vecAct, saveScope, ctx);
            s.mean = sc.empty(Activations.statType(dt), x.rows());
            s.rstd = sc.empty(Activations.statType(dt), x.rows());
            // the linears' inputs get room for the LoRA down-projection (fused forward, see Linear)
            Tensor xmodBuf = linear1.newInput(sc, dt, x.shape());
            s.xmod = linear1.inputOf(xmodBuf);
            be.layerNormModulate(s.xmod, s.mean, s.rstd, x, s.mod.chunk(0, 3), s.mod.chunk(1, 3));
            s.l1 = sc.empty(dt, batch, len, 3 * d + mlp);
            s.hL1 = linear1.forward(be, s.l1, xmodBuf, saveScope, ctx);
            s.q = sc.empty(dt, batch, len, d);
            s.k = sc.empty(dt, batch, len, d);
            s.v = sc.empty(dt, batch, len, d);
            be.qkNormRope(s.q, s.k, s.v, null, null, s.l1.cols(0, 3 * d), qScale, kScale, pe, heads, 0);
            Tensor catBuf = linear2.newInput(sc, dt, batch, len, d + mlp);
            s.cat = linear2.inputOf(catBuf);
            s.lse = sc.empty(Activations.statType(dt), batch, heads, len);
            be.attention(s.cat.cols(0, d), s.lse, s.q, s.k, s.v, heads);
            be.gelu(s.cat.cols(d, d + mlp), s.l1.cols(3 * d, 3 * d + mlp));
            s.y = sc.empty(dt, x.shape());
            s.hL2 = linear2.forward(be, s.y, catBuf, saveScope, ctx);
            Tensor r = out.copyOf(x);
            be.gatedResidual(r, s.mod.chunk(2, 3), s.y);
            result[0] = r;
        } catch (RuntimeException e) {
            s.close();
            throw e;
        }
        if (!save) {
            s.close();
            return null;
        }
        return s;
    }

    /** Backward: returns dx (allocated in out); dOut may be overwritten. */
    public Tensor backward(Backend be, Saved s, Tensor dOut, Tensor vecAct, Tensor dVecAct, Tensor pe, LoraContext ctx, Scope out) {
        DType dt = dOut.dtype();
        int batch = (int) vecAct.rows();
        long d = dOut.cols(), len = dOut.rows() / batch;
        long mlp = linear1.out() - 3 * d;
        try (Scope tmp = new Scope(be)) {
            Tensor dmod = tmp.empty(dt, batch, 3 * d);
            Tensor dy = tmp.empty(dt, dOut.shape());
            be.gatedResidualBackward(dy, dmod.chunk(2, 3), dOut, s.mod.chunk(2, 3), s.y, 0);
            // input-gradient buffers with room for dh: [dx | dh] in one product (see Linear.backward)
            Tensor dcatBuf = linear2.newInput(tmp, dt, batch, len, d + mlp);
            Tensor dcat = linear2.inputOf(dcatBuf);
            linear2.backward(be, dcatBuf, 0, dy, s.cat, s.hL2, ctx);
            Tensor dl1 = tmp.empty(dt, batch, len, 3 * d + mlp);
            be.geluBackward(dl1.cols(3 * d, 3 * d + mlp), dcat.cols(d, d + mlp), s.l1.cols(3 * d, 3 * d + mlp), 0);
            Tensor dq = tmp.empty(dt, batch, len, d), dk = tmp.empty(dt, batch, len, d), dv = tmp.empty(dt, batch, len, d);
            be.attentionBackward(dq, dk, dv, dcat.cols(0, d), s.q, s.k, s.v, s.cat.cols(0, d), s.lse, heads);
            be.qkNormRopeBackward(dl1.cols(0, 3 * d), dq, dk, dv, s.l1.cols(0, 3 * d), qScale, kScale, pe, heads, 0);
            Tensor dxmodBuf = linear1.newInput(tmp, dt, dOut.shape());
            Tensor dxmod = linear1.inputOf(dxmodBuf);
            linear1.backward(be, dxmodBuf, 0, dl1, s.xmod, s.hL1, ctx);
            Tensor dx = out.copyOf(dOut);
            be.layerNormModulateBackward(dx, dmod.chunk(0, 3), dmod.chunk(1, 3), dxmod, s.x, s.mean, s.rstd, s.mod.chunk(1, 3), 1);
            mod.backward(be, dVecAct, 1, dmod, vecAct, s.hMod, ctx);
            return dx;
        }
    }
}
