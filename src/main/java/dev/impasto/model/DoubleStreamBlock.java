package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;

/**
 * FLUX's double-stream block: image and text tokens keep separate weights (img_*, txt_*) but attend jointly.
 *
 * <pre>
 * per stream:  mod = lin(silu(vec)) -> (shift1, scale1, gate1, shift2, scale2, gate2)
 *              qkv = Linear((1 + scale1) LN(x) + shift1); q, k = RoPE(RMSNorm(q), RMSNorm(k))
 * joint:       attn = softmax(q k^T / sqrt(d)) v over [txt ; img]
 * per stream:  x += gate1 * proj(attn);  x += gate2 * mlp((1 + scale2) LN(x) + shift2)
 * </pre>
 */
public final class DoubleStreamBlock {
    /** The layers of one stream. Norm scales are frozen base weights [head dim]. */
    public record Stream(Linear mod, Linear qkv, Tensor qScale, Tensor kScale, Linear proj, Linear mlp0, Linear mlp2) {}

    public final int index;
    public final Stream img, txt;
    private final int heads;

    public DoubleStreamBlock(int index, Stream img, Stream txt, int heads) {
        this.index = index;
        this.img = img;
        this.txt = txt;
        this.heads = heads;
    }

    /** Activations one stream saves for backward. */
    static final class StreamSaved {
        Tensor x, mod, hMod, mean1, rstd1, xmod1, qkv, hQkv, attn, y1, hProj, xMid, mean2, rstd2, xmod2, hPre, hMlp0, y2, hMlp2;
    }

    /** Everything backward needs, owned by {@link #scope}. */
    public static final class Saved implements AutoCloseable {
        final Scope scope;
        final StreamSaved img = new StreamSaved(), txt = new StreamSaved();
        Tensor q, k, v, attn, lse;
        long txtLen, imgLen;

        Saved(Backend be) {
            scope = new Scope(be);
        }

        @Override
        public void close() {
            scope.close();
        }
    }

    /**
     * Runs the block. New img/txt outputs are allocated in {@code out}; activations go to the returned Saved when
     * {@code save} is set (training), otherwise they are freed before returning (and null is returned).
     */
    public Saved forward(Backend be, Tensor imgIn, Tensor txtIn, Tensor vecAct, Tensor pe, LoraContext ctx,
                         Scope out, boolean save, Tensor[] results) {
        DType dt = imgIn.dtype();
        int batch = (int) vecAct.rows();
        long d = imgIn.cols();
        long lt = txtIn.rows() / batch, li = imgIn.rows() / batch, ltot = lt + li;
        Saved s = new Saved(be);
        s.txtLen = lt;
        s.imgLen = li;
        try {
            Scope sc = s.scope;
            Scope saveScope = save ? sc : null;
            s.q = sc.empty(dt, batch, ltot, d);
            s.k = sc.empty(dt, batch, ltot, d);
            s.v = sc.empty(dt, batch, ltot, d);
            StreamSaved[] ss = {s.txt, s.img};
            Stream[] layers = {txt, img};
            Tensor[] ins = {txtIn, imgIn};
            for (int i = 0; i < 2; i++) {
                StreamSaved st = ss[i];
                Stream ly = layers[i];
                st.x = ins[i];
                st.mod = sc.empty(dt, batch, 6 * d);
                st.hMod = ly.mod.forward(be, st.mod, vecAct, saveScope, ctx);
                st.mean1 = sc.empty(Activations.statType(dt), ins[i].rows());
                st.rstd1 = sc.empty(Activations.statType(dt), ins[i].rows());
                // the linears' inputs get room for the LoRA down-projection (fused forward, see Linear)
                Tensor xmod1Buf = ly.qkv.newInput(sc, dt, ins[i].shape());
                st.xmod1 = ly.qkv.inputOf(xmod1Buf);
                be.layerNormModulate(st.xmod1, st.mean1, st.rstd1, ins[i], st.mod.chunk(0, 6), st.mod.chunk(1, 6));
                st.qkv = sc.empty(dt, batch, ins[i].rows() / batch, 3 * d);
                st.hQkv = ly.qkv.forward(be, st.qkv, xmod1Buf, saveScope, ctx);
                be.qkNormRope(s.q, s.k, s.v, null, null, st.qkv, ly.qScale, ly.kScale, pe, heads, i == 0 ? 0 : lt);
            }
            s.attn = sc.empty(dt, batch, ltot, d);
            s.lse = sc.empty(Activations.statType(dt), batch, heads, ltot);
            be.attention(s.attn, s.lse, s.q, s.k, s.v, heads);
            if (batch == 1) {
                s.txt.attn = s.attn.rows(0, lt);
                s.img.attn = s.attn.rows(lt, ltot);
            } else {
                s.txt.attn = sc.empty(dt, batch, lt, d);
                s.img.attn = sc.empty(dt, batch, li, d);
                be.splitSeq(s.txt.attn, s.img.attn, s.attn, batch);
            }
            for (int i = 0; i < 2; i++) {
                StreamSaved st = ss[i];
                Stream ly = layers[i];
                st.y1 = sc.empty(dt, st.x.shape());
                st.hProj = ly.proj.forward(be, st.y1, st.attn, saveScope, ctx);
                st.xMid = sc.copyOf(st.x);
                be.gatedResidual(st.xMid, st.mod.chunk(2, 6), st.y1);
                st.mean2 = sc.empty(Activations.statType(dt), st.x.rows());
                st.rstd2 = sc.empty(Activations.statType(dt), st.x.rows());
                Tensor xmod2Buf = ly.mlp0.newInput(sc, dt, st.x.shape());
                st.xmod2 = ly.mlp0.inputOf(xmod2Buf);
                be.layerNormModulate(st.xmod2, st.mean2, st.rstd2, st.xMid, st.mod.chunk(3, 6), st.mod.chunk(4, 6));
                st.hPre = sc.empty(dt, st.x.rows(), ly.mlp0.out());
                st.hMlp0 = ly.mlp0.forward(be, st.hPre, xmod2Buf, saveScope, ctx);
                // gelu(hPre) is recomputed in backward instead of saved: one elementwise pass for 4 x hidden per token
                st.y2 = sc.empty(dt, st.x.shape());
                try (Scope tmp = new Scope(be)) {
                    Tensor act = tmp.empty(dt, st.x.rows(), ly.mlp0.out());
                    be.gelu(act, st.hPre);
                    st.hMlp2 = ly.mlp2.forward(be, st.y2, act, saveScope, ctx);
                }
                Tensor result = out.copyOf(st.xMid);
                be.gatedResidual(result, st.mod.chunk(5, 6), st.y2);
                results[i == 0 ? 1 : 0] = result;  // results = {img, txt}
            }
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

    /**
     * Backward. dImg/dTxt are the gradients of the block outputs (consumed: they may be overwritten); returns the
     * gradients of the block inputs, allocated in {@code out}, as {img, txt}. LoRA gradients accumulate; when dVecAct is
     * not null the gradient w.r.t. silu(vec) is accumulated into it.
     */
    public Tensor[] backward(Backend be, Saved s, Tensor dImg, Tensor dTxt, Tensor vecAct, Tensor dVecAct, Tensor pe,
                             LoraContext ctx, Scope out) {
        DType dt = dImg.dtype();
        int batch = (int) vecAct.rows();
        long d = dImg.cols();
        long lt = s.txtLen, li = s.imgLen, ltot = lt + li;
        StreamSaved[] ss = {s.txt, s.img};
        Stream[] layers = {txt, img};
        Tensor[] douts = {dTxt, dImg};
        Tensor[] dmods = new Tensor[2];
        Tensor[] dxs = new Tensor[2];
        try (Scope tmp = new Scope(be)) {
            Tensor dAttn = tmp.empty(dt, batch, ltot, d);
            Tensor[] dAttnParts = new Tensor[2];
            if (batch == 1) {
                dAttnParts[0] = dAttn.rows(0, lt);
                dAttnParts[1] = dAttn.rows(lt, ltot);
            } else {
                dAttnParts[0] = tmp.empty(dt, batch, lt, d);
                dAttnParts[1] = tmp.empty(dt, batch, li, d);
            }
            for (int i = 0; i < 2; i++) {
                StreamSaved st = ss[i];
                Stream ly = layers[i];
                Tensor dout = douts[i];
                Tensor dmod = dmods[i] = tmp.empty(dt, batch, 6 * d);
                // MLP branch: x_out = x_mid + gate2 * mlp(...)
                Tensor dy2 = tmp.empty(dt, dout.shape());
                be.gatedResidualBackward(dy2, dmod.chunk(5, 6), dout, st.mod.chunk(5, 6), st.y2, 0);
                Tensor act = tmp.empty(dt, st.hPre.shape());
                be.gelu(act, st.hPre);
                Tensor dAct = tmp.empty(dt, st.hPre.shape());
                ly.mlp2.backward(be, dAct, 0, dy2, act, st.hMlp2, ctx);
                act.close();
                be.geluBackward(dAct, dAct, st.hPre, 0);
                // input-gradient buffers with room for dh: [dx | dh] in one product (see Linear.backward)
                Tensor dXmod2Buf = ly.mlp0.newInput(tmp, dt, dout.shape());
                Tensor dXmod2 = ly.mlp0.inputOf(dXmod2Buf);
                ly.mlp0.backward(be, dXmod2Buf, 0, dAct, st.xmod2, st.hMlp0, ctx);
                dAct.close();
                // dx_mid = dout + LN2 backward
                Tensor dxMid = dxs[i] = out.copyOf(dout);
                be.layerNormModulateBackward(dxMid, dmod.chunk(3, 6), dmod.chunk(4, 6), dXmod2, st.xMid, st.mean2, st.rstd2,
                        st.mod.chunk(4, 6), 1);
                // attention branch: x_mid = x + gate1 * proj(attn)
                Tensor dy1 = dy2; // reuse: same shape, dy2 is consumed
                be.gatedResidualBackward(dy1, dmod.chunk(2, 6), dxMid, st.mod.chunk(2, 6), st.y1, 0);
                ly.proj.backward(be, dAttnParts[i], 0, dy1, st.attn, st.hProj, ctx);
            }
            if (batch != 1) be.concatSeq(dAttn, dAttnParts[0], dAttnParts[1], batch);
            Tensor dq = tmp.empty(dt, batch, ltot, d), dk = tmp.empty(dt, batch, ltot, d), dv = tmp.empty(dt, batch, ltot, d);
            be.attentionBackward(dq, dk, dv, dAttn, s.q, s.k, s.v, s.attn, s.lse, heads);
            for (int i = 0; i < 2; i++) {
                StreamSaved st = ss[i];
                Stream ly = layers[i];
                Tensor dqkv = tmp.empty(dt, st.qkv.shape());
                be.qkNormRopeBackward(dqkv, dq, dk, dv, st.qkv, ly.qScale, ly.kScale, pe, heads, i == 0 ? 0 : lt);
                Tensor dXmod1Buf = ly.qkv.newInput(tmp, dt, st.x.shape());
                Tensor dXmod1 = ly.qkv.inputOf(dXmod1Buf);
                ly.qkv.backward(be, dXmod1Buf, 0, dqkv, st.xmod1, st.hQkv, ctx);
                be.layerNormModulateBackward(dxs[i], dmods[i].chunk(0, 6), dmods[i].chunk(1, 6), dXmod1, st.x, st.mean1, st.rstd1,
                        st.mod.chunk(1, 6), 1);
                ly.mod.backward(be, dVecAct, 1, dmods[i], vecAct, st.hMod, ctx);
            }
        }
        return new Tensor[] {dxs[1], dxs[0]};
    }
}
