package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.util.Closeables;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The FLUX transformer (black-forest-labs/flux model.py Flux), forward and backward written out layer by layer.
 *
 * <p>Training keeps the base frozen and trains LoRA adapters: backward accumulates their gradients and, only when
 * asked, the gradients of the inputs. With gradient checkpointing on, a forward pass keeps only each block's input
 * and backward recomputes the block before differentiating it.
 */
public final class FluxModel implements AutoCloseable {
    public final FluxConfig config;
    public final Backend backend;
    public final DType dtype;
    final Linear imgIn, txtIn, timeIn1, timeIn2, guidanceIn1, guidanceIn2, vectorIn1, vectorIn2, finalMod, finalLinear;
    final List<DoubleStreamBlock> doubles = new ArrayList<>();
    final List<SingleStreamBlock> singles = new ArrayList<>();
    private final List<LoraGroup> loras = new ArrayList<>();
    private final List<AutoCloseable> owned = new ArrayList<>();
    /** The dequantized [W | s B] of the fused LoRA forward, shared by all layers (see Linear). */
    private final WeightScratch loraWeightScratch = new WeightScratch();
    /** Every base weight by canonical BFL key ("...weight", "...bias", "...scale"), in the reference's order. */
    private final java.util.LinkedHashMap<String, Object> named = new java.util.LinkedHashMap<>();
    private boolean checkpointing;

    /** Inputs of one forward pass (BFL naming). timesteps/guidance are F32 [B]; pe from {@link Rope}. */
    public record Inputs(Tensor img, Tensor txt, Tensor y, Tensor timesteps, Tensor guidance, Tensor pe) {}

    private FluxModel(FluxConfig cfg, Backend be, DType dt, WeightProvider w) {
        this.config = cfg;
        this.backend = be;
        this.dtype = dt;
        long h = cfg.hidden(), m = cfg.mlpHidden();
        imgIn = linear(w, "img_in", h, cfg.inChannels(), true);
        txtIn = linear(w, "txt_in", h, cfg.contextDim(), true);
        timeIn1 = linear(w, "time_in.in_layer", h, 256, true);
        timeIn2 = linear(w, "time_in.out_layer", h, h, true);
        guidanceIn1 = cfg.guidanceEmbed() ? linear(w, "guidance_in.in_layer", h, 256, true) : null;
        guidanceIn2 = cfg.guidanceEmbed() ? linear(w, "guidance_in.out_layer", h, h, true) : null;
        vectorIn1 = linear(w, "vector_in.in_layer", h, cfg.vecDim(), true);
        vectorIn2 = linear(w, "vector_in.out_layer", h, h, true);
        int dh = cfg.headDim();
        for (int i = 0; i < cfg.depth(); i++) {
            String p = "double_blocks." + i + ".";
            DoubleStreamBlock.Stream[] s = new DoubleStreamBlock.Stream[2];
            for (int j = 0; j < 2; j++) {
                String q = p + (j == 0 ? "img" : "txt");
                s[j] = new DoubleStreamBlock.Stream(
                        linear(w, q + "_mod.lin", 6 * h, h, true),
                        linear(w, q + "_attn.qkv", 3 * h, h, cfg.qkvBias()),
                        vector(w, q + "_attn.norm.query_norm.scale", dh),
                        vector(w, q + "_attn.norm.key_norm.scale", dh),
                        linear(w, q + "_attn.proj", h, h, true),
                        linear(w, q + "_mlp.0", m, h, true),
                        linear(w, q + "_mlp.2", h, m, true));
            }
            doubles.add(new DoubleStreamBlock(i, s[0], s[1], cfg.heads()));
        }
        for (int i = 0; i < cfg.depthSingle(); i++) {
            String p = "single_blocks." + i + ".";
            singles.add(new SingleStreamBlock(i,
                    linear(w, p + "modulation.lin", 3 * h, h, true),
                    linear(w, p + "linear1", 3 * h + m, h, true),
                    vector(w, p + "norm.query_norm.scale", dh),
                    vector(w, p + "norm.key_norm.scale", dh),
                    linear(w, p + "linear2", h, h + m, true),
                    cfg.heads()));
        }
        finalMod = linear(w, "final_layer.adaLN_modulation.1", 2 * h, h, true);
        finalLinear = linear(w, "final_layer.linear", cfg.inChannels(), h, true);
    }

    /** Builds the model, taking each weight from {@code weights} (which may quantize it on the way). */
    public static FluxModel build(FluxConfig cfg, Backend be, DType computeType, WeightProvider weights) {
        return new FluxModel(cfg, be, computeType, weights);
    }

    private Linear linear(WeightProvider w, String key, long out, long in, boolean bias) {
        BaseLinear b = w.linear(key, out, in, bias);
        if (b.out() != out || b.in() != in)
            throw new IllegalArgumentException("weight " + key + " is [" + b.out() + ", " + b.in() + "], the config needs [" + out + ", " + in + "]");
        owned.add(b);
        named.put(key + ".weight", b.weight());
        if (b.bias() != null) named.put(key + ".bias", b.bias());
        return new Linear(key, b);
    }

    private Tensor vector(WeightProvider w, String key, long n) {
        Tensor t = w.vector(key, n);
        if (t.numel() != n) throw new IllegalArgumentException("weight " + key + " has " + t.numel() + " elements, expected " + n);
        owned.add(t);
        named.put(key, t);
        return t;
    }

    /**
     * The base weights as float arrays by canonical key (quantized weights dequantized), for saving a checkpoint in
     * BFL layout: key -> {shape, values}.
     */
    public java.util.Map<String, Object[]> baseWeights() {
        java.util.LinkedHashMap<String, Object[]> out = new java.util.LinkedHashMap<>();
        for (var e : named.entrySet()) {
            if (e.getValue() instanceof dev.impasto.tensor.LinearWeight w)
                out.put(e.getKey(), new Object[] {new long[] {w.outFeatures(), w.inFeatures()}, dev.impasto.quant.WeightQuantizer.dequantize(backend, w)});
            else if (e.getValue() instanceof Tensor t) out.put(e.getKey(), new Object[] {t.shape(), backend.toFloats(t)});
        }
        return out;
    }

    /** Total bytes of the base weights on the backend. */
    public long baseBytes() {
        long b = 0;
        for (Object o : named.values()) {
            if (o instanceof dev.impasto.tensor.LinearWeight w) b += w.bytes();
            else if (o instanceof Tensor t) b += t.numel() * t.dtype().byteSize();
        }
        return b;
    }

    /**
     * Folds the attached LoRA into the base: W += scale * B_i A_i over each piece's rows. Needs dense base weights
     * (the LoRA stays attached; detach and close it afterwards).
     */
    public void mergeLora() {
        for (Linear l : blockLinears()) {
            LoraGroup g = l.lora;
            if (g == null) continue;
            if (!(l.base.weight() instanceof dev.impasto.tensor.LinearWeight.Dense d))
                throw new IllegalStateException("cannot merge a LoRA into the " + l.base.weight().format() + " weight of " + l.key + ": merging needs dense weights");
            for (int i = 0; i < g.pieces.size(); i++) {
                LoraGroup.Piece p = g.pieces.get(i);
                backend.gemm(d.w().rows(p.rowStart(), p.rowEnd()), g.pieceRows(g.b, i), false, g.pieceA(i), false, g.scale(), 1);
            }
        }
    }

    public void setCheckpointing(boolean on) {
        checkpointing = on;
    }

    public boolean checkpointing() {
        return checkpointing;
    }

    // ------------------------------------------------------------------------------------------------ LoRA

    /** Every linear inside the blocks, in a fixed order (double blocks img then txt, then single blocks). */
    public List<Linear> blockLinears() {
        List<Linear> l = new ArrayList<>();
        for (DoubleStreamBlock b : doubles)
            for (DoubleStreamBlock.Stream s : List.of(b.img, b.txt)) l.addAll(List.of(s.mod(), s.qkv(), s.proj(), s.mlp0(), s.mlp2()));
        for (SingleStreamBlock b : singles) l.addAll(List.of(b.mod, b.linear1, b.linear2));
        return l;
    }

    /** The pieces a fused projection splits into (diffusers/peft naming), in output row order. */
    List<LoraGroup.Piece> piecesOf(Linear lin, boolean fused) {
        long h = config.hidden();
        String k = lin.key;
        boolean img = k.contains(".img_");
        if (!fused && k.endsWith("_attn.qkv"))
            return List.of(new LoraGroup.Piece(img ? "q" : "add_q", 0, h), new LoraGroup.Piece(img ? "k" : "add_k", h, 2 * h),
                    new LoraGroup.Piece(img ? "v" : "add_v", 2 * h, 3 * h));
        if (!fused && k.endsWith(".linear1"))
            return List.of(new LoraGroup.Piece("q", 0, h), new LoraGroup.Piece("k", h, 2 * h), new LoraGroup.Piece("v", 2 * h, 3 * h),
                    new LoraGroup.Piece("mlp", 3 * h, lin.out()));
        return List.of(new LoraGroup.Piece("", 0, lin.out()));
    }

    /**
     * Attaches LoRA adapters as {@code cfg} selects; A is Kaiming-uniform (bound 1/sqrt(in), as peft initialises it),
     * B is zero, so the adapted model starts equal to the base. Returns the new groups.
     */
    public List<LoraGroup> attachLora(LoraConfig cfg, long seed) {
        if (!loras.isEmpty()) throw new IllegalStateException("this model already carries a LoRA; detach it first");
        for (Linear lin : blockLinears()) {
            List<LoraGroup.Piece> pieces = new ArrayList<>();
            for (LoraGroup.Piece p : piecesOf(lin, cfg.fused())) {
                String pieceId = switch (p.name()) {
                    case "q", "add_q" -> "q";
                    case "k", "add_k" -> "k";
                    case "v", "add_v" -> "v";
                    default -> p.name();
                };
                if (cfg.targets(lin.key, pieceId)) pieces.add(p);
            }
            if (pieces.isEmpty()) continue;
            int rank = cfg.rankFor(lin.key);
            LoraGroup g = new LoraGroup(backend, lin.key, pieces, lin.in(), rank, cfg.alphaFor(lin.key), cfg.dropout(), dtype);
            double bound = 1 / Math.sqrt(lin.in());
            backend.rand(g.a, seed ^ (lin.key.hashCode() * 0x9E3779B97F4A7C15L));
            backend.axpby(g.a, 2 * bound, g.a, 0);
            try (Tensor one = backend.empty(g.a.dtype(), g.a.shape())) {
                backend.fill(one, bound);
                backend.axpby(g.a, -1, one, 1);
            }
            g.syncCompute(backend);
            loras.add(g); // owned by the model from here on, also when re-storing its layer's weight fails
            prepareFusedLora(lin, g);
        }
        if (loras.isEmpty()) throw new IllegalArgumentException("the LoRA config selects no layer: " + cfg.describe());
        return List.copyOf(loras);
    }

    /** Attaches a LoRA whose groups were built elsewhere (a LoRA file); keys must name block linears. */
    public void attachLoraGroups(List<LoraGroup> groups) {
        if (!loras.isEmpty()) throw new IllegalStateException("this model already carries a LoRA; detach it first");
        java.util.Map<String, Linear> byKey = new java.util.HashMap<>();
        for (Linear l : blockLinears()) byKey.put(l.key, l);
        for (LoraGroup g : groups) {
            Linear l = byKey.get(g.key);
            if (l == null) throw new IllegalArgumentException("LoRA targets unknown module " + g.key);
            if (g.in() != l.in()) throw new IllegalArgumentException("LoRA " + g.key + " has input " + g.in() + ", the layer " + l.in());
            loras.add(g);
            prepareFusedLora(l, g);
        }
    }

    /** Gives a LoRA target what its fused forward needs: room for s B next to a dense weight, the shared scratch. */
    private void prepareFusedLora(Linear l, LoraGroup g) {
        Tensor padded = l.attachLora(backend, g, loraWeightScratch);
        if (padded != null) {
            owned.add(padded);
            named.put(l.key + ".weight", l.base.weight());
        }
    }

    /** Removes and returns the attached LoRA groups (the caller closes them). */
    public List<LoraGroup> detachLora() {
        for (Linear l : blockLinears()) l.lora = null;
        List<LoraGroup> out = new ArrayList<>(loras);
        loras.clear();
        return out;
    }

    /** The attached groups (a snapshot). */
    public List<LoraGroup> loras() {
        return List.copyOf(loras);
    }

    /** Creates a LoRA group for module key (used by LoRA file readers). */
    public LoraGroup newLoraGroup(String key, List<LoraGroup.Piece> pieces, int rank, double alpha) {
        for (Linear l : blockLinears())
            if (l.key.equals(key)) return new LoraGroup(backend, key, pieces, l.in(), rank, alpha, 0, dtype);
        throw new IllegalArgumentException("no block linear named " + key);
    }

    public Linear blockLinear(String key) {
        for (Linear l : blockLinears()) if (l.key.equals(key)) return l;
        throw new IllegalArgumentException("no block linear named " + key);
    }

    // ------------------------------------------------------------------------------------------------ forward

    /** State of a training forward pass, consumed by {@link #backward}. */
    public final class Pass implements AutoCloseable {
        final Scope scope = new Scope(backend);
        final Inputs in;
        final LoraContext ctx;
        Tensor output, vec, vecAct, vecPre, imgOut, finalModOut, finalXn, finalMean, finalRstd;
        final List<Tensor[]> doubleInputs = new ArrayList<>();          // {img, txt} entering double block i
        final List<DoubleStreamBlock.Saved> doubleSaved = new ArrayList<>();
        final List<Tensor> singleInputs = new ArrayList<>();             // x entering single block i
        final List<SingleStreamBlock.Saved> singleSaved = new ArrayList<>();
        Tensor singleOut;
        int batch;
        long txtLen, imgLen;

        Pass(Inputs in, LoraContext ctx) {
            this.in = in;
            this.ctx = ctx;
        }

        /** The prediction [B, L_img, in channels] (owned by the pass). */
        public Tensor output() {
            return output;
        }

        @Override
        public void close() {
            doubleSaved.forEach(s -> { if (s != null) s.close(); });
            singleSaved.forEach(s -> { if (s != null) s.close(); });
            scope.close();
        }
    }

    /** Inference forward: returns the velocity prediction [B, L_img, in channels] (caller closes it). */
    public Tensor forward(Inputs in, LoraContext ctx) {
        try (Pass p = run(in, ctx, false)) {
            Tensor out = backend.empty(p.output.dtype(), p.output.shape());
            backend.copy(out, p.output);
            return out;
        }
    }

    /** Training forward: keeps what {@link #backward} needs. */
    public Pass forwardTrain(Inputs in, LoraContext ctx) {
        return run(in, ctx, true);
    }

    private Pass run(Inputs in, LoraContext ctx, boolean train) {
        Backend be = backend;
        Pass p = new Pass(in, ctx);
        try {
            Scope sc = p.scope;
            long h = config.hidden();
            int batch = p.batch = (int) in.y().rows();
            p.txtLen = in.txt().rows() / batch;
            p.imgLen = in.img().rows() / batch;
            long ltot = p.txtLen + p.imgLen;
            if (in.pe().dim(0) != ltot)
                throw new IllegalArgumentException("pe covers " + in.pe().dim(0) + " positions, the sequence has " + ltot);
            Tensor img = sc.empty(dtype, batch, p.imgLen, h);
            imgIn.forward(be, img, in.img(), null, ctx);
            Tensor txt = sc.empty(dtype, batch, p.txtLen, h);
            txtIn.forward(be, txt, in.txt(), null, ctx);
            // vec = time_in(temb(t)) + guidance_in(temb(g)) + vector_in(y)
            p.vec = sc.empty(dtype, batch, h);
            try (Scope tmp = new Scope(be)) {
                embedTime(tmp, in.timesteps(), timeIn1, timeIn2, p.vec, 0);
                if (config.guidanceEmbed()) {
                    if (in.guidance() == null) throw new IllegalArgumentException(config.name() + " needs a guidance value");
                    embedTime(tmp, in.guidance(), guidanceIn1, guidanceIn2, p.vec, 1);
                }
            }
            p.vecPre = sc.empty(dtype, batch, h);
            vectorIn1.forward(be, p.vecPre, in.y(), null, ctx);
            try (Scope tmp = new Scope(be)) {
                Tensor a = tmp.empty(dtype, batch, h);
                be.silu(a, p.vecPre);
                be.linear(p.vec, a, vectorIn2.base.weight(), vectorIn2.base.bias(), 1);
            }
            p.vecAct = sc.empty(dtype, batch, h);
            be.silu(p.vecAct, p.vec);

            boolean save = train && !checkpointing;
            for (DoubleStreamBlock b : doubles) {
                p.doubleInputs.add(new Tensor[] {img, txt});
                Tensor[] res = new Tensor[2];
                p.doubleSaved.add(b.forward(be, img, txt, p.vecAct, in.pe(), ctx, sc, save, res));
                if (!train) {
                    img.close();
                    txt.close();
                }
                img = res[0];
                txt = res[1];
            }
            Tensor x = sc.empty(dtype, batch, ltot, h);
            be.concatSeq(x, txt, img, batch);
            if (!train) {
                img.close();
                txt.close();
            }
            for (SingleStreamBlock b : singles) {
                p.singleInputs.add(x);
                Tensor[] res = new Tensor[1];
                p.singleSaved.add(b.forward(be, x, p.vecAct, in.pe(), ctx, sc, save, res));
                if (!train) x.close();
                x = res[0];
            }
            p.singleOut = x;
            if (batch == 1) p.imgOut = x.rows(p.txtLen, ltot);
            else {
                Tensor dropTxt = sc.empty(dtype, batch, p.txtLen, h);
                p.imgOut = sc.empty(dtype, batch, p.imgLen, h);
                be.splitSeq(dropTxt, p.imgOut, x, batch);
            }
            // final layer: (shift, scale) = adaLN(vec); out = linear((1 + scale) LN(x) + shift)
            p.finalModOut = sc.empty(dtype, batch, 2 * h);
            finalMod.forward(be, p.finalModOut, p.vecAct, null, ctx);
            p.finalXn = sc.empty(dtype, batch, p.imgLen, h);
            p.finalMean = sc.empty(Activations.statType(dtype), batch * p.imgLen);
            p.finalRstd = sc.empty(Activations.statType(dtype), batch * p.imgLen);
            be.layerNormModulate(p.finalXn, p.finalMean, p.finalRstd, p.imgOut, p.finalModOut.chunk(0, 2), p.finalModOut.chunk(1, 2));
            p.output = sc.empty(dtype, batch, p.imgLen, config.inChannels());
            finalLinear.forward(be, p.output, p.finalXn, null, ctx);
            return p;
        } catch (RuntimeException e) {
            p.close();
            throw e;
        }
    }

    /** vec (+)= out_layer(silu(in_layer(temb(t)))), beta 0 for the first term and 1 after. */
    private void embedTime(Scope tmp, Tensor t, Linear l1, Linear l2, Tensor vec, double beta) {
        Backend be = backend;
        int batch = (int) vec.rows();
        Tensor emb = tmp.empty(dtype, batch, 256);
        be.timestepEmbedding(emb, t, 1000, 10_000);
        Tensor hid = tmp.empty(dtype, batch, config.hidden());
        be.linear(hid, emb, l1.base.weight(), l1.base.bias(), 0);
        be.silu(hid, hid);
        be.linear(vec, hid, l2.base.weight(), l2.base.bias(), beta);
    }

    // ------------------------------------------------------------------------------------------------ backward

    /** Gradients w.r.t. the model inputs (only when asked for). */
    public record InputGrads(Tensor img, Tensor txt, Tensor y) implements AutoCloseable {
        @Override
        public void close() {
            img.close();
            txt.close();
            y.close();
        }
    }

    /**
     * Backward from dOut (gradient of the loss w.r.t. the prediction). LoRA gradients accumulate into each group's
     * gradA/gradB. Frees the pass's saved activations as it goes. Returns input gradients if requested, else null.
     */
    public InputGrads backward(Pass p, Tensor dOut, boolean inputGrads) {
        Backend be = backend;
        LoraContext ctx = p.ctx;
        long h = config.hidden();
        int batch = p.batch;
        long lt = p.txtLen, li = p.imgLen, ltot = lt + li;
        Scope grads = new Scope(be);
        try {
            Tensor dVecAct = inputGrads ? grads.zeros(dtype, batch, h) : null;
            Tensor dX = grads.zeros(dtype, batch, ltot, h);
            try (Scope tmp = new Scope(be)) {
                Tensor dXn = tmp.empty(dtype, batch, li, h);
                finalLinear.backward(be, dXn, 0, dOut, p.finalXn, null, ctx);
                Tensor dImgOut;
                if (batch == 1) dImgOut = dX.rows(lt, ltot);
                else dImgOut = tmp.zeros(dtype, batch, li, h);
                Tensor dFinalMod = inputGrads ? tmp.empty(dtype, batch, 2 * h) : null;
                be.layerNormModulateBackward(dImgOut, inputGrads ? dFinalMod.chunk(0, 2) : null, inputGrads ? dFinalMod.chunk(1, 2) : null,
                        dXn, p.imgOut, p.finalMean, p.finalRstd, p.finalModOut.chunk(1, 2), 0);
                if (inputGrads) finalMod.backward(be, dVecAct, 1, dFinalMod, p.vecAct, null, ctx);
                if (batch != 1) {
                    Tensor zeroTxt = tmp.zeros(dtype, batch, lt, h);
                    be.concatSeq(dX, zeroTxt, dImgOut, batch);
                }
            }
            for (int i = singles.size() - 1; i >= 0; i--) {
                SingleStreamBlock b = singles.get(i);
                SingleStreamBlock.Saved s = p.singleSaved.get(i);
                Tensor in = p.singleInputs.get(i);
                try (Scope tmp = new Scope(be)) {
                    if (s == null) s = b.forward(be, in, p.vecAct, p.in.pe(), ctx, tmp, true, new Tensor[1]);
                    Tensor dIn = b.backward(be, s, dX, p.vecAct, dVecAct, p.in.pe(), ctx, grads);
                    s.close();
                    p.singleSaved.set(i, null);
                    dX.close();
                    dX = dIn;
                }
            }
            Tensor dTxt = grads.empty(dtype, batch, lt, h), dImg = grads.empty(dtype, batch, li, h);
            be.splitSeq(dTxt, dImg, dX, batch);
            dX.close();
            for (int i = doubles.size() - 1; i >= 0; i--) {
                DoubleStreamBlock b = doubles.get(i);
                DoubleStreamBlock.Saved s = p.doubleSaved.get(i);
                Tensor[] in = p.doubleInputs.get(i);
                try (Scope tmp = new Scope(be)) {
                    if (s == null) s = b.forward(be, in[0], in[1], p.vecAct, p.in.pe(), ctx, tmp, true, new Tensor[2]);
                    Tensor[] dIn = b.backward(be, s, dImg, dTxt, p.vecAct, dVecAct, p.in.pe(), ctx, grads);
                    s.close();
                    p.doubleSaved.set(i, null);
                    dImg.close();
                    dTxt.close();
                    dImg = dIn[0];
                    dTxt = dIn[1];
                }
            }
            if (!inputGrads) {
                grads.close();
                return null;
            }
            Tensor gImg = be.empty(dtype, p.in.img().shape());
            imgIn.backward(be, gImg, 0, dImg, p.in.img(), null, ctx);
            Tensor gTxt = be.empty(dtype, p.in.txt().shape());
            txtIn.backward(be, gTxt, 0, dTxt, p.in.txt(), null, ctx);
            Tensor gY = be.empty(dtype, p.in.y().shape());
            try (Scope tmp = new Scope(be)) {
                Tensor dVec = tmp.empty(dtype, batch, h);
                be.siluBackward(dVec, dVecAct, p.vec, 0);
                Tensor dHid = tmp.empty(dtype, batch, h);
                be.linearInputGrad(dHid, dVec, vectorIn2.base.weight(), 0);
                be.siluBackward(dHid, dHid, p.vecPre, 0);
                be.linearInputGrad(gY, dHid, vectorIn1.base.weight(), 0);
            }
            grads.close();
            return new InputGrads(gImg, gTxt, gY);
        } catch (RuntimeException e) {
            grads.close();
            throw e;
        }
    }

    @Override
    public void close() {
        for (LoraGroup g : loras) g.close();
        loras.clear();
        loraWeightScratch.close();
        Closeables.closeReversed(owned);
    }
}
