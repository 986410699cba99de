package dev.impasto.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.cuda.Cuda;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.LinearWeight;
import dev.impasto.tensor.cpu.CpuBackend;
import dev.impasto.tensor.cuda.CudaBackend;
import java.nio.file.Files;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The checkpoint loader's NF4 on the GPU (file bytes up, codes made by the device) gives the same codes and absmax as
 * the host quantizer the CPU backend uses, for the BFL-layout golden file's block linears, plain and double-quantized.
 */
@Tag("gpu")
class Nf4LoadGpuTest {
    @Test
    void deviceQuantizeOnLoadEqualsTheHostQuantizer() throws Exception {
        Assumptions.assumeTrue(Cuda.available() && Files.isRegularFile(GoldenFixture.DIR.resolve("weights.safetensors")), "needs a GPU and the golden file");
        FluxConfig c = GoldenFixture.CONFIG;
        String[][] layers = {{"double_blocks.0.img_mlp.0", "" + c.mlpHidden(), "" + c.hidden()}, {"double_blocks.1.txt_attn.qkv", "" + 3 * c.hidden(), "" + c.hidden()},
            {"single_blocks.1.linear2", "" + c.hidden(), "" + (c.hidden() + c.mlpHidden())}};
        CpuBackend cpu = new CpuBackend();
        try (CudaBackend gpu = CudaBackend.open(0); FluxCheckpoint ck = FluxCheckpoint.open(GoldenFixture.DIR.resolve("weights.safetensors"))) {
            for (BaseFormat f : new BaseFormat[] {BaseFormat.NF4, BaseFormat.NF4_DQ}) {
                CheckpointWeights onGpu = new CheckpointWeights(ck, gpu, DType.BF16, f, false, null), onCpu = new CheckpointWeights(ck, cpu, DType.F32, f, false, null);
                for (String[] l : layers) {
                    long out = Long.parseLong(l[1]), in = Long.parseLong(l[2]);
                    LinearWeight.Nf4 g = (LinearWeight.Nf4) onGpu.linear(l[0], out, in, true).weight();
                    LinearWeight.Nf4 h = (LinearWeight.Nf4) onCpu.linear(l[0], out, in, true).weight();
                    String what = l[0] + " " + f;
                    assertArrayEquals(cpu.toDoubles(h.packed()), gpu.toDoubles(g.packed()), what + ": codes");
                    if (f == BaseFormat.NF4) assertArrayEquals(cpu.toDoubles(h.absmax()), gpu.toDoubles(g.absmax()), what + ": absmax");
                    else {
                        assertArrayEquals(cpu.toDoubles(h.absmax()), gpu.toDoubles(g.absmax()), what + ": absmax codes");
                        assertArrayEquals(cpu.toDoubles(h.nestedAbsmax()), gpu.toDoubles(g.nestedAbsmax()), what + ": nested absmax");
                    }
                    assertTrue(g.doubleQuantized() == (f == BaseFormat.NF4_DQ), what);
                    g.close();
                    h.close();
                }
            }
        }
    }
}
