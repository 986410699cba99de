package dev.impasto.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.cuda.CudaEvent;
import dev.impasto.model.FluxConfig;
import dev.impasto.model.FluxModel;
import dev.impasto.model.LoraConfig;
import dev.impasto.model.LoraContext;
import dev.impasto.model.LoraGroup;
import dev.impasto.model.RandomQuantizedWeights;
import dev.impasto.model.Rope;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.AdamWConfig;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cuda.CudaBackend;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The side-by-side benchmark's engine half: FLUX.1-dev shapes with random weights, batch 1, 512 text tokens, LoRA rank
 * 16 on every linear inside the blocks; forward (sampling step), and training step (forward + backward + AdamW),
 * timed with CUDA events after warm-up, median of N; peak device memory per case.
 */
public final class FluxBench {
    public record Case(String what, BaseFormat format, int imageTokens, boolean checkpointing) {}

    public static ObjectNode run(CudaBackend be, FluxConfig cfg, List<BaseFormat> formats, int[] imageTokens, boolean[] checkpointing,
                                 int warmup, int iters, PrintStream log) {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("device", be.context().info.name());
        root.put("config", cfg.name());
        ArrayNode rows = root.putArray("results");
        for (BaseFormat f : formats) {
            long t0 = System.nanoTime();
            be.synchronize();
            be.resetPeak();
            try (FluxModel model = FluxModel.build(cfg, be, DType.BF16, new RandomQuantizedWeights(be, DType.BF16, f, 1))) {
                log.printf(Locale.ROOT, "[bench] %s base %s built in %.1f s (%.2f GiB)%n", cfg.name(), f.id(), (System.nanoTime() - t0) / 1e9,
                        model.baseBytes() / (double) (1L << 30));
                List<LoraGroup> groups = model.attachLora(new LoraConfig(16, 16, "all", null, null, java.util.Map.of(), 0, true), 3);
                for (LoraGroup g : groups) { // non-zero B: the LoRA path computes real numbers
                    be.randn(g.b, g.key.hashCode());
                    be.axpby(g.b, 1e-3, g.b, 0);
                    g.syncCompute(be);
                }
                for (int len : imageTokens) {
                    for (boolean ck : checkpointing) {
                        model.setCheckpointing(ck);
                        List<ObjectNode> timed = new ArrayList<>();
                        if (!ck) { // inference figures do not depend on checkpointing
                            timed.add(time(be, model, groups, len, "forward", warmup, iters, log, f));
                            timed.add(time(be, model, groups, len, "sample_step", warmup, iters, log, f));
                        }
                        timed.add(time(be, model, groups, len, "train_step", warmup, iters, log, f));
                        for (ObjectNode r : timed) {
                            r.put("checkpointing", ck);
                            rows.add(r);
                        }
                    }
                }
                for (LoraGroup g : model.detachLora()) g.close();
            } catch (RuntimeException e) {
                log.println("[bench] " + f.id() + " failed: " + e);
                ObjectNode r = rows.addObject();
                r.put("format", f.id());
                r.put("error", e.toString());
            }
            be.releaseCachedMemory();
        }
        return root;
    }

    /**
     * Median time of one {@code what}: "forward" (inference, LoRA applied), "sample_step" (forward + the Euler update of
     * the latents, one step of the sampler) or "train_step" (forward, MSE loss, backward, gradient norm, AdamW).
     */
    private static ObjectNode time(CudaBackend be, FluxModel model, List<LoraGroup> groups, int imgLen, String what, int warmup, int iters,
                                   PrintStream log, BaseFormat f) {
        boolean train = what.equals("train_step");
        FluxConfig c = model.config;
        int txtLen = 512, grid = (int) Math.round(Math.sqrt(imgLen));
        List<Tensor> params = new ArrayList<>(), grads = new ArrayList<>(), m = new ArrayList<>(), v = new ArrayList<>();
        try (Tensor img = be.empty(DType.BF16, 1, imgLen, c.inChannels()); Tensor txt = be.empty(DType.BF16, 1, txtLen, c.contextDim());
             Tensor y = be.empty(DType.BF16, 1, c.vecDim()); Tensor t = be.fromDoubles(new double[] {0.7}, DType.F32, 1);
             Tensor g = be.fromDoubles(new double[] {1.0}, DType.F32, 1); Tensor pe = Rope.tensor(be, c, txtLen, grid, imgLen / grid);
             Tensor target = be.empty(DType.BF16, 1, imgLen, c.inChannels()); Tensor grad = be.empty(DType.BF16, 1, imgLen, c.inChannels());
             Tensor loss = be.empty(DType.F32, 1); Tensor norm = be.empty(DType.F32, 1)) {
            be.randn(img, 1);
            be.randn(txt, 2);
            be.randn(y, 3);
            be.randn(target, 4);
            if (train)
                for (LoraGroup lg : groups)
                    for (Tensor[] pg : new Tensor[][] {{lg.a, lg.gradA}, {lg.b, lg.gradB}}) {
                        params.add(pg[0]);
                        grads.add(pg[1]);
                        m.add(be.zeros(DType.F32, pg[0].shape()));
                        v.add(be.zeros(DType.F32, pg[0].shape()));
                    }
            FluxModel.Inputs in = new FluxModel.Inputs(img, txt, y, t, c.guidanceEmbed() ? g : null, pe);
            AdamWConfig adam = AdamWConfig.defaults();
            float[] ms = new float[iters];
            be.synchronize();
            be.resetPeak();
            try (CudaEvent e0 = CudaEvent.create(); CudaEvent e1 = CudaEvent.create()) {
                for (int i = -warmup; i < iters; i++) {
                    e0.record(be.context().stream());
                    if (train) {
                        try (FluxModel.Pass p = model.forwardTrain(in, LoraContext.training(i))) {
                            be.mseLoss(loss, grad, p.output(), target, 1);
                            model.backward(p, grad, false);
                        }
                        be.sumOfSquares(norm, grads);
                        be.adamw(params, grads, m, v, adam, i + warmup + 1, 1e-6, norm, 1);
                        for (LoraGroup lg : groups) lg.syncCompute(be);
                    } else {
                        try (Tensor out = model.forward(in, LoraContext.INFERENCE)) {
                            // the output stays on the device; a sampler step moves the latents along it (t 0.7 -> 0.68)
                            if (what.equals("sample_step")) be.axpby(img, -0.02, out, 1);
                        }
                    }
                    e1.record(be.context().stream());
                    float dt = e1.elapsedSince(e0);
                    if (i >= 0) ms[i] = dt;
                }
            }
            float[] sorted = ms.clone();
            Arrays.sort(sorted);
            ObjectNode r = new ObjectMapper().createObjectNode();
            r.put("what", what);
            r.put("format", f.id());
            r.put("image_tokens", imgLen);
            r.put("text_tokens", txtLen);
            r.put("median_ms", sorted[iters / 2]);
            r.put("min_ms", sorted[0]);
            r.put("max_ms", sorted[iters - 1]);
            r.put("iters", iters);
            r.put("peak_gib", be.peakBytes() / (double) (1L << 30));
            r.put("attention", be.attentionImplementation());
            log.printf(Locale.ROOT, "[bench] %-10s %-5s %5d img tokens ck=%-5s median %8.2f ms (min %.2f, max %.2f) peak %.2f GiB%n",
                    r.get("what").asText(), f.id(), imgLen, model.checkpointing(), sorted[iters / 2], sorted[0], sorted[iters - 1], r.get("peak_gib").asDouble());
            return r;
        } finally {
            m.forEach(Tensor::close);
            v.forEach(Tensor::close);
        }
    }
}
