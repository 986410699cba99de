package dev.impasto.pipeline.curate;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.TestImages;
import dev.impasto.pipeline.cli.CurateCommand;
import dev.impasto.pipeline.parquet.ParquetIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import javax.imageio.ImageIO;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.RecordReader;
import org.apache.parquet.schema.MessageType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

public class CurateCommandTest {
    static final int LANDSCAPE = 4, PORTRAIT = 6, CITYSCAPE = 1, STILL_LIFE = 9, RELIGIOUS = 7, IMPRESSIONISM = 12, REALISM = 21;
    @TempDir static Path dir;
    static Path shards;

    @BeforeAll
    static void makeShards() throws IOException {
        shards = dir.resolve("shards");
        Files.createDirectories(shards);
        List<Shards.Row> rows = new ArrayList<>();
        long seed = 100;
        for (int i = 0; i < 20; i++) rows.add(new Shards.Row(TestImages.jpeg(seed++, 260, 300), LANDSCAPE, IMPRESSIONISM, 1));
        for (int i = 0; i < 10; i++) rows.add(new Shards.Row(TestImages.jpeg(seed++, 280, 260), PORTRAIT, IMPRESSIONISM, 2));
        for (int i = 0; i < 6; i++) rows.add(new Shards.Row(TestImages.jpeg(seed++, 300, 260), CITYSCAPE, IMPRESSIONISM, 1));
        for (int i = 0; i < 6; i++) rows.add(new Shards.Row(TestImages.jpeg(seed++, 260, 260), STILL_LIFE, IMPRESSIONISM, 0));
        byte[] good = TestImages.jpeg(seed++, 260, 280);
        rows.add(new Shards.Row(TestImages.jpeg(seed++, 200, 300), STILL_LIFE, IMPRESSIONISM, 0)); // too_small
        rows.add(new Shards.Row(TestImages.jpeg(seed++, 650, 260), STILL_LIFE, IMPRESSIONISM, 0)); // aspect 2.5
        rows.add(new Shards.Row(TestImages.flatJpeg(300, 300), STILL_LIFE, IMPRESSIONISM, 0)); // low_quality
        rows.add(new Shards.Row(Arrays.copyOf(good, good.length * 6 / 10), STILL_LIFE, IMPRESSIONISM, 0)); // truncated
        byte[] garbage = new byte[3000];
        new java.util.Random(5).nextBytes(garbage);
        rows.add(new Shards.Row(garbage, STILL_LIFE, IMPRESSIONISM, 0)); // undecodable
        rows.add(new Shards.Row(TestImages.png16(seed++, 270, 270), STILL_LIFE, IMPRESSIONISM, 0)); // passes, converted
        BufferedImage dup = TestImages.painting(seed++, 280, 280);
        rows.add(new Shards.Row(dev.impasto.pipeline.image.ImageOps.jpeg(dup, 0.95f), STILL_LIFE, IMPRESSIONISM, 0));
        rows.add(new Shards.Row(dev.impasto.pipeline.image.ImageOps.jpeg(dev.impasto.pipeline.image.ImageOps.resize(dup, 265, 265), 0.7f),
                STILL_LIFE, IMPRESSIONISM, 0)); // near_duplicate of the previous one
        for (int i = 0; i < 4; i++) rows.add(new Shards.Row(TestImages.jpeg(seed++, 260, 260), RELIGIOUS, IMPRESSIONISM, 0)); // genre
        for (int i = 0; i < 5; i++) rows.add(new Shards.Row(TestImages.jpeg(seed++, 260, 260), LANDSCAPE, REALISM, 0)); // style
        List<List<Shards.Row>> perShard = new ArrayList<>();
        for (int s = 0; s < 6; s++) perShard.add(new ArrayList<>());
        for (int i = 0; i < rows.size(); i++) perShard.get(i % 6).add(rows.get(i));
        for (int s = 0; s < 6; s++)
            Shards.write(shards.resolve(String.format("train-%05d-of-00006.parquet", s)), perShard.get(s), 256 * 1024);
    }

    static int run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = new CommandLine(new CurateCommand());
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int rc = cl.execute(args);
        lastOut = out + "\n" + err;
        return rc;
    }

    static String lastOut;

    /** -Dimpasto.keepTestOutputs=DIR copies what a test made there, to look at the pictures. */
    public static void keep(Path from, String name) throws IOException {
        String to = System.getProperty("impasto.keepTestOutputs");
        if (to == null) return;
        Path target = Path.of(to, name);
        try (var s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path t = target.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(t);
                else Files.copy(p, t, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }

    static List<JsonNode> jsonl(Path p) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String l : Files.readAllLines(p)) if (!l.isBlank()) out.add(Json.parse(l));
        return out;
    }

    static String[] args(Path out, long seed) {
        return new String[] {"--parquet", shards.toString(), "--out", out.toString(), "--quota",
                "landscape=8,portrait=4,cityscape=3,still_life=10", "--rename", "cityscape=urban", "--seed", Long.toString(seed), "--threads", "2", "--min-side", "256"};
    }

    @Test
    void picksQuotasRejectsWithReasonsAndKeepsClassLabelNames() throws Exception {
        Path out = dir.resolve("out1");
        assertEquals(0, run(args(out, 7)), lastOut);
        JsonNode report = Json.read(out.resolve("report/report.json"));
        assertEquals(8, report.path("genres").path("landscape").path("picked").asInt());
        assertEquals(4, report.path("genres").path("portrait").path("picked").asInt());
        assertEquals(3, report.path("genres").path("urban").path("picked").asInt());
        assertEquals(8, report.path("genres").path("still_life").path("picked").asInt(), "6 good + 16-bit PNG + one of the duplicate pair");
        JsonNode rej = report.path("rejections");
        Map<String, Integer> expected = Map.of("style", 5, "genre", 4, "too_small", 1, "aspect", 1, "low_quality", 1,
                "truncated", 1, "undecodable", 1, "near_duplicate", 1);
        Map<String, Integer> got = new TreeMap<>();
        rej.properties().forEach(e -> got.put(e.getKey(), e.getValue().asInt()));
        assertEquals(new TreeMap<>(expected), got);
        List<JsonNode> rejections = jsonl(out.resolve("report/rejections.jsonl"));
        assertEquals(15, rejections.size());
        for (JsonNode r : rejections) assertFalse(r.path("detail").asText().isBlank(), r.toString());

        List<JsonNode> meta = jsonl(out.resolve("train/metadata.jsonl"));
        assertEquals(23, meta.size());
        Map<String, Integer> perGenre = new HashMap<>();
        Set<String> landscapeShards = new HashSet<>();
        boolean converted = false;
        for (JsonNode m : meta) {
            perGenre.merge(m.path("genre").asText(), 1, Integer::sum);
            Path f = out.resolve("train").resolve(m.path("file_name").asText());
            assertTrue(Files.isRegularFile(f), f.toString());
            BufferedImage img = ImageIO.read(f.toFile());
            assertEquals(m.path("width").asInt(), img.getWidth());
            assertEquals("Impressionism", m.path("style").asText());
            if (m.path("genre").asText().equals("landscape")) landscapeShards.add(m.path("source").asText().split("#")[0]);
            converted |= m.path("converted").asText().contains("16-bit");
        }
        assertEquals(Map.of("landscape", 8, "portrait", 4, "urban", 3, "still_life", 8), perGenre);
        assertTrue(landscapeShards.size() >= 3, "landscape picks come from several shards: " + landscapeShards);
        assertTrue(converted, "the 16-bit PNG was brought to 8-bit and kept");

        // parquet keeps the ClassLabel names and the renamed label
        Path pq = out.resolve("data/train-00000-of-00001.parquet");
        try (ParquetFileReader r = ParquetIO.open(pq)) {
            assertEquals(23, r.getRecordCount());
            String hf = r.getFileMetaData().getKeyValueMetaData().get("huggingface");
            ClassLabels labels = ClassLabels.fromHuggingface(hf, new ClassLabels(List.of(), List.of(), List.of()));
            assertEquals("urban", labels.genres().get(CITYSCAPE));
            assertEquals("landscape", labels.genres().get(LANDSCAPE));
            assertEquals("Impressionism", labels.styles().get(IMPRESSIONISM));
            assertEquals(List.of("Unknown Artist", "claude-monet", "camille-pissarro"), labels.artists());
            MessageType schema = r.getFileMetaData().getSchema();
            var rg = r.readNextRowGroup();
            RecordReader<Group> rr = new ColumnIOFactory().getColumnIO(schema).getRecordReader(rg, new GroupRecordConverter(schema));
            Group first = rr.read();
            assertEquals(meta.getFirst().path("genre_id").asLong(), first.getLong("genre", 0));
            byte[] bytes = first.getGroup("image", 0).getBinary("bytes", 0).getBytes();
            assertArrayEquals(Files.readAllBytes(out.resolve("train").resolve(meta.getFirst().path("file_name").asText())), bytes);
        }
        for (String png : List.of("hist_min_side.png", "hist_aspect.png", "hist_colourfulness.png", "genres.png",
                "contact_sheet_landscape.png", "contact_sheet_urban.png")) {
            BufferedImage img = ImageIO.read(out.resolve("report").resolve(png).toFile());
            assertNotNull(img, png);
            assertTrue(img.getWidth() > 100, png);
        }
        assertTrue(Files.readString(out.resolve("report/report.md")).contains("| urban | cityscape | 3 | 3 |"));
        assertEquals(2, report.path("genres").path("still_life").path("shortfall").asInt());
        assertFalse(Files.exists(out.resolve(".staging")));
        keep(out, "curate");
    }

    @Test
    void sameSeedSamePicksOtherSeedOtherPicks() throws Exception {
        Path a = dir.resolve("seedA"), b = dir.resolve("seedB");
        String[] extra = {"--format", "imagefolder", "--quota", "landscape=8"};
        assertEquals(0, run(concat(args(a, 11), extra)), lastOut);
        assertEquals(0, run(concat(args(b, 11), extra)), lastOut);
        assertEquals(sources(a), sources(b));
        assertFalse(Files.exists(a.resolve("data")), "imagefolder only");
        // another seed draws another sample of the 20 landscapes
        Path c = dir.resolve("seedC");
        assertEquals(0, run(concat(args(c, 12), extra)), lastOut);
        assertNotEquals(sources(a), sources(c));
    }

    private static List<String> sources(Path out) throws IOException {
        return jsonl(out.resolve("train/metadata.jsonl")).stream().filter(m -> m.path("genre").asText().equals("landscape"))
                .map(m -> m.path("source").asText()).sorted().toList();
    }

    private static String[] concat(String[] a, String[] b) {
        String[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    @Test
    void badConfigNamesTheField() throws Exception {
        Path cfg = dir.resolve("bad.json");
        Files.writeString(cfg, "{\"min-side\": 0, \"quotas\": {\"landscape\": 3}}");
        assertEquals(2, run("--parquet", shards.toString(), "--out", dir.resolve("bad").toString(), "--config", cfg.toString()));
        assertTrue(lastOut.contains("field 'min-side'"), lastOut);
        Files.writeString(cfg, "{\"min-sides\": 512}");
        assertEquals(2, run("--parquet", shards.toString(), "--out", dir.resolve("bad").toString(), "--config", cfg.toString()));
        assertTrue(lastOut.contains("unknown field 'min-sides'"), lastOut);
        assertEquals(2, run("--parquet", shards.toString(), "--out", dir.resolve("bad").toString(), "--quota", "landscap=3"));
        assertTrue(lastOut.contains("unknown genre 'landscap'"), lastOut);
    }

    @Test
    void configFileSettingsApplyAndOptionsOverrideThem() throws Exception {
        Path cfg = dir.resolve("good.json");
        Files.writeString(cfg, "{\"quotas\": {\"portrait\": 2, \"landscape\": 2}, \"seed\": 3, \"format\": \"imagefolder\"}");
        Path out = dir.resolve("cfg");
        assertEquals(0, run("--parquet", shards.toString(), "--out", out.toString(), "--config", cfg.toString(), "--quota", "portrait=5", "--min-side", "256"));
        Map<String, Integer> perGenre = new HashMap<>();
        for (JsonNode m : jsonl(out.resolve("train/metadata.jsonl"))) perGenre.merge(m.path("genre").asText(), 1, Integer::sum);
        assertEquals(Map.of("portrait", 5), perGenre);
    }

    @Test
    void imageFolderWithCsvMetadata() throws Exception {
        Path folder = dir.resolve("folder");
        Files.createDirectories(folder);
        StringBuilder csv = new StringBuilder("file_name,genre,style\n");
        for (int i = 0; i < 6; i++) {
            Files.write(folder.resolve("p" + i + ".jpg"), TestImages.jpeg(900 + i, 260, 260));
            csv.append("p").append(i).append(".jpg,").append(i % 2 == 0 ? "landscape" : "\"portrait\"").append(",Impressionism\n");
        }
        csv.append("missing.jpg,landscape,Impressionism\n");
        Files.writeString(folder.resolve("metadata.csv"), csv);
        Path out = dir.resolve("folderOut");
        assertEquals(0, run("--image-folder", folder.toString(), "--out", out.toString(), "--quota", "landscape=4,portrait=2", "--threads", "1", "--min-side", "256"), lastOut);
        List<JsonNode> meta = jsonl(out.resolve("train/metadata.jsonl"));
        assertEquals(5, meta.size());
        List<JsonNode> rej = jsonl(out.resolve("report/rejections.jsonl"));
        assertEquals(1, rej.size());
        assertEquals("undecodable", rej.getFirst().path("reason").asText());
        assertTrue(rej.getFirst().path("detail").asText().contains("missing.jpg"));
    }
}
