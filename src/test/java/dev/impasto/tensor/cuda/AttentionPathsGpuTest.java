package dev.impasto.tensor.cuda;

import dev.impasto.cuda.Cuda;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.GradCheck;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Every attention implementation (libtorch cuDNN, libtorch flash, impasto's own) forward and backward against the
 * CPU, in bf16, at the model's shapes: contiguous and with the strided output/gradient the single-stream block uses.
 */
@Tag("gpu")
class AttentionPathsGpuTest {
    @Test
    void everyPathAtModelShapes() {
        Assumptions.assumeTrue(Cuda.available(), "no GPU");
        CpuBackend cpu = new CpuBackend();
        List<String> bad = new ArrayList<>();
        int[][] shapes = {{2, 2, 31, 32}, {2, 3, 77, 64}, {1, 4, 300, 128}};
        for (String path : new String[] {"CUDNN", "FLASH", "OWN"}) {
            for (int[] s : shapes) {
                for (boolean strided : new boolean[] {false, true}) {
                    try (CudaBackend be = CudaBackend.open(0)) {
                        be.useAttention(path);
                        int b = s[0], h = s[1], l = s[2], d = s[3], hd = h * d, ld = strided ? hd + 40 : hd;
                        Random r = new Random(l * 31 + d);
                        double[] q = GradCheck.random(r, b * l * hd, 1), k = GradCheck.random(r, b * l * hd, 1), v = GradCheck.random(r, b * l * hd, 1),
                                g = GradCheck.random(r, b * l * hd, 1);
                        Tensor gq = be.fromDoubles(q, DType.BF16, b, l, hd), gk = be.fromDoubles(k, DType.BF16, b, l, hd), gv = be.fromDoubles(v, DType.BF16, b, l, hd);
                        Tensor outBuf = be.empty(DType.BF16, b * l, ld), doutBuf = be.empty(DType.BF16, b * l, ld);
                        Tensor out = outBuf.cols(0, hd), dout = doutBuf.cols(0, hd);
                        try (Tensor dsrc = be.fromDoubles(g, DType.BF16, b * l, hd)) {
                            be.copy(dout, dsrc);
                        }
                        Tensor lse = be.empty(DType.F32, b, h, l);
                        Tensor dq = be.empty(DType.BF16, b, l, hd), dk = be.empty(DType.BF16, b, l, hd), dv = be.empty(DType.BF16, b, l, hd);
                        be.attention(out, lse, gq, gk, gv, h);
                        be.attentionBackward(dq, dk, dv, dout, gq, gk, gv, out, lse, h);
                        Tensor cq = cpu.fromDoubles(q, DType.BF16, b, l, hd), ck = cpu.fromDoubles(k, DType.BF16, b, l, hd), cv = cpu.fromDoubles(v, DType.BF16, b, l, hd);
                        Tensor co = cpu.empty(DType.F64, b, l, hd), cl = cpu.empty(DType.F64, b, h, l);
                        cpu.attention(co, cl, cq, ck, cv, h);
                        Tensor cdq = cpu.empty(DType.F64, b, l, hd), cdk = cpu.empty(DType.F64, b, l, hd), cdv = cpu.empty(DType.F64, b, l, hd);
                        cpu.attentionBackward(cdq, cdk, cdv, cpu.fromDoubles(g, DType.BF16, b, l, hd), cq, ck, cv, co, cl, h);
                        double eo = GradCheck.relL2(be.toDoubles(out), cpu.toDoubles(co)), el = GradCheck.relL2(be.toDoubles(lse), cpu.toDoubles(cl));
                        double eq = GradCheck.relL2(be.toDoubles(dq), cpu.toDoubles(cdq)), ek = GradCheck.relL2(be.toDoubles(dk), cpu.toDoubles(cdk)),
                                ev = GradCheck.relL2(be.toDoubles(dv), cpu.toDoubles(cdv));
                        String line = String.format("%-5s B%d H%d L%d D%d %s: out %.2e lse %.2e dq %.2e dk %.2e dv %.2e", path, b, h, l, d,
                                strided ? "strided" : "contig ", eo, el, eq, ek, ev);
                        System.out.println("[attention] " + line);
                        // bf16 bound of the op-library issue (relative L2 <= 1e-2); measured 1.7-2.6e-3 on the H100 for all three
                        if (!(eo <= 1e-2 && eq <= 1e-2 && ek <= 1e-2 && ev <= 1e-2 && el <= 1e-4)) bad.add(line);
                    } catch (RuntimeException e) {
                        String line = path + " " + java.util.Arrays.toString(s) + (strided ? " strided" : "") + ": " + e.getMessage();
                        System.out.println("[attention] " + line);
                        bad.add(line);
                    }
                }
            }
        }
        org.junit.jupiter.api.Assertions.assertTrue(bad.isEmpty(), String.join("\n", bad));
    }
}
