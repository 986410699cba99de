package dev.impasto.pipeline.publish;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.TestImages;
import dev.impasto.pipeline.cli.CaptionCommand;
import dev.impasto.pipeline.cli.CurateCommand;
import dev.impasto.pipeline.cli.PublishCommand;
import dev.impasto.pipeline.curate.Shards;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.io.ColumnIOFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** curate -> caption -> publish, as a user runs them: the uploaded parquet has images, captions and label names. */
class EndToEndTest {
    @TempDir Path dir;

    @Test
    void curateCaptionPublish() throws Exception {
        Path shards = dir.resolve("shards");
        Files.createDirectories(shards);
        for (int s = 0; s < 2; s++) {
            List<Shards.Row> rows = new ArrayList<>();
            for (int i = 0; i < 6; i++) rows.add(new Shards.Row(TestImages.jpeg(800 + s * 10 + i, 200, 180), new int[] {4, 6, 1}[i % 3], 12, 1));
            Shards.write(shards.resolve("train-0000" + s + "-of-00002.parquet"), rows, 1 << 20);
        }
        Path curated = dir.resolve("curated");
        assertEquals(0, new CommandLine(new CurateCommand()).execute("--parquet", shards.toString(), "--out", curated.toString(),
                "--quota", "landscape=2,portrait=2,cityscape=2", "--rename", "cityscape=urban", "--min-side", "128", "--threads", "1"));
        assertEquals(0, new CommandLine(new CaptionCommand()).execute("--dataset", curated.toString(), "--trigger", "mnt_impr"));
        try (FakeHub hub = new FakeHub("tok")) {
            PublishCommand publish = new PublishCommand();
            var env = PublishCommand.class.getDeclaredField("env");
            env.setAccessible(true);
            env.set(publish, Map.of("HF_TOKEN", "tok"));
            assertEquals(0, new CommandLine(publish).execute("--dataset", curated.toString(), "--repo", "me/impressionism-6",
                    "--format", "parquet", "--hub-url", hub.hub.url()));
            hub.assertClean();
            JsonNode pq = hub.commits.getFirst().stream().filter(l -> l.path("value").path("path").asText().endsWith(".parquet")).findFirst().orElseThrow();
            Path local = dir.resolve("uploaded.parquet");
            Files.write(local, hub.objects.get(pq.path("value").path("oid").asText()));
            try (var r = dev.impasto.pipeline.parquet.ParquetIO.open(local)) {
                assertEquals(6, r.getRecordCount());
                JsonNode features = Json.parse(r.getFileMetaData().getKeyValueMetaData().get("huggingface")).path("info").path("features");
                assertEquals("urban", features.path("genre").path("names").path(1).asText());
                assertEquals("camille-pissarro", features.path("artist").path("names").path(2).asText(), "artist names from the source footer");
                var schema = r.getFileMetaData().getSchema();
                var rr = new ColumnIOFactory().getColumnIO(schema).getRecordReader(r.readNextRowGroup(), new GroupRecordConverter(schema));
                for (int i = 0; i < 6; i++) {
                    Group g = rr.read();
                    assertTrue(g.getString("text", 0).startsWith("mnt_impr, a "), g.getString("text", 0));
                    assertTrue(g.getGroup("image", 0).getBinary("bytes", 0).length() > 1000);
                    assertEquals(1, g.getLong("artist", 0));
                }
            }
        }
    }
}
