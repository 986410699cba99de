package dev.impasto.io.flux;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The numbers that define a FLUX.1-style transformer, as detected from a checkpoint's tensor shapes.
 * A field that could not be detected (its tensor is missing) is -1.
 *
 * @param inChannels    img_in input width (64 = 16 latent channels 2x2-packed; 384 Fill, 128 Canny/Depth)
 * @param outChannels   final_layer.linear output width
 * @param hiddenSize    model width
 * @param numHeads      attention heads (hiddenSize / headDim)
 * @param headDim       from the QK-norm scale length
 * @param mlpHiddenDim  MLP width (mlp ratio x hidden)
 * @param depthDouble   double-stream blocks
 * @param depthSingle   single-stream blocks
 * @param contextDim    txt_in input width (T5 width)
 * @param vecInDim      vector_in input width (CLIP pooled width)
 * @param timeEmbedDim  time_in input width (256 sinusoidal features)
 * @param guidanceEmbed guidance_in present (dev-style guidance distillation)
 * @param qkvBias       qkv Linear layers of the double blocks have a bias
 */
public record FluxArchitecture(int inChannels, int outChannels, int hiddenSize, int numHeads, int headDim, int mlpHiddenDim,
                               int depthDouble, int depthSingle, int contextDim, int vecInDim, int timeEmbedDim,
                               boolean guidanceEmbed, boolean qkvBias) {

    public static final FluxArchitecture DEV = new FluxArchitecture(64, 64, 3072, 24, 128, 12288, 19, 38, 4096, 768, 256, true, true);
    public static final FluxArchitecture SCHNELL = new FluxArchitecture(64, 64, 3072, 24, 128, 12288, 19, 38, 4096, 768, 256, false, true);

    public double mlpRatio() {
        return hiddenSize > 0 && mlpHiddenDim > 0 ? (double) mlpHiddenDim / hiddenSize : -1;
    }

    /** All fields known (no -1). */
    public boolean isComplete() {
        return inChannels > 0 && outChannels > 0 && hiddenSize > 0 && numHeads > 0 && headDim > 0 && mlpHiddenDim > 0
                && depthDouble >= 0 && depthSingle >= 0 && contextDim > 0 && vecInDim > 0 && timeEmbedDim > 0;
    }

    /**
     * "FLUX.1-dev", "FLUX.1-schnell", "FLUX.1-Fill-dev", "FLUX.1-Canny/Depth-dev", or "custom" for anything else
     * (other depths or widths: distilled or pruned models).
     */
    public String variant() {
        if (equals(DEV)) return "FLUX.1-dev";
        if (equals(SCHNELL)) return "FLUX.1-schnell";
        FluxArchitecture asDevIn = new FluxArchitecture(64, outChannels, hiddenSize, numHeads, headDim, mlpHiddenDim, depthDouble,
                depthSingle, contextDim, vecInDim, timeEmbedDim, guidanceEmbed, qkvBias);
        if (asDevIn.equals(DEV) && inChannels == 384) return "FLUX.1-Fill-dev";
        if (asDevIn.equals(DEV) && inChannels == 128) return "FLUX.1-Canny/Depth-dev";
        return "custom";
    }

    /** One line with every number. */
    public String describe() {
        return String.format(Locale.ROOT, "in %s, out %s, hidden %s (%s heads x %s), mlp %s, %s double + %s single blocks, "
                        + "context %s, vec %s, time %s, guidance %s, qkv bias %s",
                n(inChannels), n(outChannels), n(hiddenSize), n(numHeads), n(headDim), n(mlpHiddenDim), n(depthDouble), n(depthSingle),
                n(contextDim), n(vecInDim), n(timeEmbedDim), guidanceEmbed ? "yes" : "no", qkvBias ? "yes" : "no");
    }

    private static String n(int v) {
        return v < 0 ? "?" : Integer.toString(v);
    }

    /**
     * Every key of this architecture in BFL naming with its shape (dims that depend on an undetected field are -1),
     * in the reference model's state-dict order.
     */
    public Map<String, long[]> expectedShapes() {
        Map<String, long[]> m = new LinkedHashMap<>();
        long h = hiddenSize, mlp = mlpHiddenDim, hd = headDim;
        linear(m, "img_in", h, inChannels);
        linear(m, "time_in.in_layer", h, timeEmbedDim);
        linear(m, "time_in.out_layer", h, h);
        linear(m, "vector_in.in_layer", h, vecInDim);
        linear(m, "vector_in.out_layer", h, h);
        if (guidanceEmbed) {
            linear(m, "guidance_in.in_layer", h, timeEmbedDim);
            linear(m, "guidance_in.out_layer", h, h);
        }
        linear(m, "txt_in", h, contextDim);
        for (int i = 0; i < depthDouble; i++) {
            for (String s : new String[]{"img", "txt"}) {
                String p = "double_blocks." + i + "." + s;
                linear(m, p + "_mod.lin", mul(6, h), h);
                m.put(p + "_attn.qkv.weight", dims(mul(3, h), h));
                if (qkvBias) m.put(p + "_attn.qkv.bias", dims(mul(3, h)));
                m.put(p + "_attn.norm.query_norm.scale", dims(hd));
                m.put(p + "_attn.norm.key_norm.scale", dims(hd));
                linear(m, p + "_attn.proj", h, h);
                linear(m, p + "_mlp.0", mlp, h);
                linear(m, p + "_mlp.2", h, mlp);
            }
        }
        for (int i = 0; i < depthSingle; i++) {
            String p = "single_blocks." + i + ".";
            long l1 = h < 0 || mlp < 0 ? -1 : 3 * h + mlp;
            long l2in = h < 0 || mlp < 0 ? -1 : h + mlp;
            linear(m, p + "linear1", l1, h);
            linear(m, p + "linear2", h, l2in);
            m.put(p + "norm.query_norm.scale", dims(hd));
            m.put(p + "norm.key_norm.scale", dims(hd));
            linear(m, p + "modulation.lin", mul(3, h), h);
        }
        linear(m, "final_layer.linear", outChannels, h);
        linear(m, "final_layer.adaLN_modulation.1", mul(2, h), h);
        return m;
    }

    /** Parameter count of the full model (weights and biases), or -1 when a field is unknown. */
    public long parameterCount() {
        if (!isComplete()) return -1;
        long n = 0;
        for (long[] s : expectedShapes().values()) {
            long p = 1;
            for (long d : s) p *= d;
            n += p;
        }
        return n;
    }

    private static void linear(Map<String, long[]> m, String module, long out, long in) {
        m.put(module + ".weight", dims(out, in));
        m.put(module + ".bias", dims(out));
    }

    private static long mul(long k, long v) {
        return v < 0 ? -1 : k * v;
    }

    private static long[] dims(long... d) {
        return d;
    }
}
