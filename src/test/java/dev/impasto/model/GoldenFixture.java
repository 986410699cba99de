package dev.impasto.model;

import dev.impasto.io.TensorEntry;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.io.safetensors.SafetensorsFile;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The reference implementation's golden outputs (src/test/golden/flux/make_golden.py, run with black-forest-labs/flux):
 * a tiny FLUX with the reference's LinearLora on every block linear, its forward output and gradients. Loads the
 * weights through the checkpoint loader (BFL layout), the LoRA as fused groups, runs forward and backward on a
 * backend and reports the relative L2 error of each compared quantity.
 */
final class GoldenFixture {
    static final Path DIR = Path.of("src/test/resources/dev/impasto/model/golden");
    static final FluxConfig CONFIG = new FluxConfig("golden", 16, 32, 16, 64, 2, 2, 2, 4.0, new int[] {4, 14, 14}, 10_000, true, true);
    static final int RANK = 4, TXT = 7, GH = 4, GW = 6;
    static final double ALPHA = 6.0;

    static boolean present() {
        return Files.isRegularFile(DIR.resolve("io.safetensors"));
    }

    /** name -> rel L2 error vs the reference (the fp32 one, or with prefix "bf16." the reference's own bf16 GPU run). */
    static Map<String, Double> compare(Backend be, DType dt) throws Exception {
        return compare(be, dt, "");
    }

    static boolean hasBf16Reference() throws Exception {
        try (SafetensorsFile io = SafetensorsFile.open(DIR.resolve("io.safetensors"))) {
            return io.contains("bf16.out");
        }
    }

    static Map<String, Double> compare(Backend be, DType dt, String ref) throws Exception {
        Map<String, Double> err = new LinkedHashMap<>();
        try (FluxCheckpoint ck = FluxCheckpoint.open(DIR.resolve("weights.safetensors"));
             SafetensorsFile lora = SafetensorsFile.open(DIR.resolve("lora.safetensors"));
             SafetensorsFile io = SafetensorsFile.open(DIR.resolve("io.safetensors"));
             FluxModel model = FluxModel.build(CONFIG, be, dt, new CheckpointWeights(ck, be, dt, BaseFormat.parse(dt == DType.BF16 ? "bf16" : "f32"), false, null))) {
            List<LoraGroup> groups = new ArrayList<>();
            for (Linear l : model.blockLinears()) {
                TensorEntry a = lora.tensor(l.key + ".lora_A"), b = lora.tensor(l.key + ".lora_B");
                LoraGroup g = new LoraGroup(be, l.key, List.of(new LoraGroup.Piece("", 0, l.out())), l.in(), RANK, ALPHA, 0, dt);
                try (Tensor ta = be.fromFloats(a.toFloatArray(), g.a.dtype(), g.a.shape()); Tensor tb = be.fromFloats(b.toFloatArray(), g.b.dtype(), g.b.shape())) {
                    be.copy(g.a, ta);
                    be.copy(g.b, tb);
                }
                g.syncCompute(be);
                groups.add(g);
            }
            model.attachLoraGroups(groups);
            int batch = 2;
            try (Tensor img = load(be, io, "img", dt); Tensor txt = load(be, io, "txt", dt); Tensor y = load(be, io, "y", dt);
                 // the reference's bf16 run embeds bf16 timesteps (its sampling code makes them in the image dtype)
                 Tensor t = loadRounded(be, io, "timesteps", ref.isEmpty() ? DType.F32 : DType.BF16); Tensor g = load(be, io, "guidance", DType.F32);
                 Tensor pe = Rope.tensor(be, CONFIG, TXT, GH, GW); Tensor w = load(be, io, "W", dt)) {
                FluxModel.Inputs in = new FluxModel.Inputs(img, txt, y, t, g, pe);
                try (FluxModel.Pass p = model.forwardTrain(in, LoraContext.INFERENCE)) {
                    err.put("out", GradCheck.relL2(be.toDoubles(p.output()), doubles(io, ref + "out")));
                    try (FluxModel.InputGrads ig = model.backward(p, w, true)) {
                        err.put("d_img", GradCheck.relL2(be.toDoubles(ig.img()), doubles(io, ref + "d_img")));
                        err.put("d_txt", GradCheck.relL2(be.toDoubles(ig.txt()), doubles(io, ref + "d_txt")));
                        err.put("d_y", GradCheck.relL2(be.toDoubles(ig.y()), doubles(io, ref + "d_y")));
                    }
                }
                List<Double> da = new ArrayList<>(), dar = new ArrayList<>(), db = new ArrayList<>(), dbr = new ArrayList<>();
                for (LoraGroup gr : model.loras()) {
                    for (double v : be.toDoubles(gr.gradA)) da.add(v);
                    for (double v : doubles(io, ref + gr.key + ".lora_A.grad")) dar.add(v);
                    for (double v : be.toDoubles(gr.gradB)) db.add(v);
                    for (double v : doubles(io, ref + gr.key + ".lora_B.grad")) dbr.add(v);
                }
                err.put("lora_A.grad", GradCheck.relL2(unbox(da), unbox(dar)));
                err.put("lora_B.grad", GradCheck.relL2(unbox(db), unbox(dbr)));
                if (batch != (int) y.rows()) throw new IllegalStateException("fixture batch");
            }
        }
        return err;
    }

    private static Tensor load(Backend be, SafetensorsFile f, String name, DType dt) throws Exception {
        TensorEntry e = f.tensor(name);
        return be.fromFloats(e.toFloatArray(), dt, e.shape());
    }

    private static Tensor loadRounded(Backend be, SafetensorsFile f, String name, DType rounding) throws Exception {
        double[] v = doubles(f, name);
        for (int i = 0; i < v.length; i++) v[i] = rounding.round(v[i]);
        return be.fromDoubles(v, DType.F32, f.tensor(name).shape());
    }

    private static double[] doubles(SafetensorsFile f, String name) throws Exception {
        float[] v = f.tensor(name).toFloatArray();
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }

    private static double[] unbox(List<Double> l) {
        return l.stream().mapToDouble(Double::doubleValue).toArray();
    }
}
