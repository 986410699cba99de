package dev.impasto.model;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.io.flux.FluxCheckpoint;
import dev.impasto.quant.BaseFormat;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A NaN inside a checkpoint stops a quantizing load with an error that names the tensor and the element. */
class CorruptWeightTest {
    @Test
    void aNanWeightIsNamedByItsTensor(@TempDir Path dir) throws Exception {
        Path src = GoldenFixture.DIR.resolve("weights.safetensors");
        Assumptions.assumeTrue(Files.isRegularFile(src), "golden file");
        byte[] b = Files.readAllBytes(src);
        long headerLen = ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode h = new ObjectMapper().readTree(new String(b, 8, (int) headerLen, StandardCharsets.UTF_8));
        JsonNode t = h.get("double_blocks.0.img_mlp.0.weight");
        assertTrue(t.get("dtype").asText().equals("F32"));
        int at = (int) (8 + headerLen + t.get("data_offsets").get(0).asLong() + 4 * 5);
        ByteBuffer.wrap(b, at, 4).order(ByteOrder.LITTLE_ENDIAN).putFloat(Float.NaN);
        Path bad = Files.write(dir.resolve("weights.safetensors"), b);
        CpuBackend cpu = new CpuBackend();
        FluxConfig c = GoldenFixture.CONFIG;
        try (FluxCheckpoint ck = FluxCheckpoint.open(bad)) {
            CheckpointWeights w = new CheckpointWeights(ck, cpu, DType.F32, BaseFormat.NF4, false, null);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.linear("double_blocks.0.img_mlp.0", c.mlpHidden(), c.hidden(), true));
            assertTrue(e.getMessage().startsWith("double_blocks.0.img_mlp.0.weight: weight element 5 is NaN"), e.getMessage());
        }
    }
}
