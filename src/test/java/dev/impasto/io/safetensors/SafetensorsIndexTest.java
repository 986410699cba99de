package dev.impasto.io.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class SafetensorsIndexTest {
    @TempDir
    Path dir;

    private List<Path> writeThreeShards() throws IOException {
        List<SafetensorsWriter.Tensor> ts = new ArrayList<>();
        for (int i = 0; i < 6; i++) ts.add(SafetensorsWriter.Tensor.ofFloats("t" + i, DType.F32, new long[]{4}, new float[]{i, i, i, i}));
        return SafetensorsWriter.writeSharded(dir, "model", 32, Map.of("format", "pt"), ts);
    }

    @Test
    void shardedWriteNamesFilesAndIndexAsHuggingFace() throws IOException {
        List<Path> written = writeThreeShards();
        assertEquals(List.of("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
                "model.safetensors.index.json"), written.stream().map(p -> p.getFileName().toString()).toList());
        JsonNode idx = new ObjectMapper().readTree(written.get(3).toFile());
        assertEquals(96, idx.get("metadata").get("total_size").asLong());
        assertEquals("model-00002-of-00003.safetensors", idx.get("weight_map").get("t3").asText());
        assertTrue(Files.readString(written.get(3)).contains("\n  \"metadata\""), "2-space indented like json.dumps(indent=2)");
    }

    @Test
    void shardsOpenLazilyAndTensorsResolveThroughTheIndex() throws IOException {
        List<Path> written = writeThreeShards();
        try (SafetensorsIndex index = SafetensorsIndex.open(written.get(3))) {
            assertEquals(6, index.keys().size());
            assertEquals(96, index.totalSize());
            assertEquals(3, index.shardNames().size());
            assertArrayEquals(new float[]{5, 5, 5, 5}, index.tensor("t5").toFloatArray());
            assertSame(index.shard("model-00003-of-00003.safetensors"), index.shard("model-00003-of-00003.safetensors"));
            assertEquals(3, index.openAll().size());
        }
        // a single shard is written plainly, without an index
        List<Path> one = SafetensorsWriter.writeSharded(dir.resolve("one"), "m", 1 << 20, Map.of(),
                List.of(SafetensorsWriter.Tensor.ofFloats("a", DType.F32, new long[]{1}, new float[]{1})));
        assertEquals(List.of("m.safetensors"), one.stream().map(p -> p.getFileName().toString()).toList());
    }

    @Test
    void missingShardsAndForeignPathsAreReportedAtOpen() throws IOException {
        List<Path> written = writeThreeShards();
        Files.delete(written.get(1));
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> SafetensorsIndex.open(written.get(3)));
        assertTrue(e.getMessage().contains("model-00002-of-00003.safetensors") && e.getMessage().contains("incomplete"), e.getMessage());

        Path evil = dir.resolve("evil.safetensors.index.json");
        Files.writeString(evil, "{\"weight_map\":{\"a\":\"../../etc/passwd\"}}");
        e = assertThrows(SafetensorsFormatException.class, () -> SafetensorsIndex.open(evil));
        assertTrue(e.getMessage().contains("not a file in the index's folder"), e.getMessage());

        Path notJson = dir.resolve("x.safetensors.index.json");
        Files.writeString(notJson, "{\"weight_map\": ");
        e = assertThrows(SafetensorsFormatException.class, () -> SafetensorsIndex.open(notJson));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
    }

    @Test
    void aTensorAbsentFromItsShardIsAnError() throws IOException {
        writeThreeShards();
        Path idx = dir.resolve("wrong.safetensors.index.json");
        SafetensorsIndex.write(idx, Map.of("t0", "model-00002-of-00003.safetensors"), 16);
        try (SafetensorsIndex index = SafetensorsIndex.open(idx)) {
            SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> index.tensor("t0"));
            assertTrue(e.getMessage().contains("does not contain it"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> index.tensor("nope"));
        }
    }
}
