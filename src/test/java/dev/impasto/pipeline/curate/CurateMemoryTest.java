package dev.impasto.pipeline.curate;

import static org.junit.jupiter.api.Assertions.*;

import dev.impasto.pipeline.TestImages;
import dev.impasto.pipeline.cli.CurateCommand;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** 30 shards holding twice the heap in image bytes are curated in a 32 MB heap: memory does not grow with the data. */
class CurateMemoryTest {
    @TempDir Path dir;

    public static void main(String[] args) {
        System.exit(new CommandLine(new CurateCommand()).execute(args));
    }

    @Test
    void thirtyShardsInAThirtyTwoMegabyteHeap() throws Exception {
        Path shards = dir.resolve("shards");
        Files.createDirectories(shards);
        List<byte[]> pool = new ArrayList<>();
        for (int i = 0; i < 48; i++) pool.add(TestImages.jpeg(3000 + i, 136, 140));
        Random r = new Random(1);
        long total = 0;
        int k = 0;
        for (int s = 0; s < 30; s++) {
            List<Shards.Row> rows = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                // real images are ~50x bigger than these: pad each with incompressible bytes after the end marker
                byte[] img = pool.get(k++ % pool.size());
                byte[] padded = java.util.Arrays.copyOf(img, img.length + 300_000);
                long x = r.nextLong() | 1;
                for (int b = img.length; b < padded.length; b++) {
                    x ^= x << 13;
                    x ^= x >>> 7;
                    x ^= x << 17;
                    padded[b] = (byte) x;
                }
                rows.add(new Shards.Row(padded, i % 2 == 0 ? 4 : 6, 12, 0));
            }
            Path f = shards.resolve(String.format("train-%05d-of-00030.parquet", s));
            Shards.write(f, rows, 1 << 20, org.apache.parquet.hadoop.metadata.CompressionCodecName.ZSTD);
            total += Files.size(f);
        }
        assertTrue(total > 2 * (32L << 20), "the shards hold more than twice the heap: " + total);
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path out = dir.resolve("out");
        Process p = new ProcessBuilder(List.of(javaBin, "-Xmx32m", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true", "-cp",
                System.getProperty("java.class.path"), CurateMemoryTest.class.getName(), "--parquet", shards.toString(), "--out", out.toString(),
                "--quota", "landscape=16,portrait=16", "--min-side", "128", "--threads", "2", "--dedupe-distance", "-1"))
                .redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile()).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String log = Files.readString(dir.resolve("child.log"));
        assertEquals(0, p.exitValue(), log);
        assertFalse(log.contains("OutOfMemoryError"), log);
        List<String> meta = Files.readAllLines(out.resolve("train/metadata.jsonl"));
        assertEquals(32, meta.size());
        long shardsUsed = meta.stream().map(l -> l.replaceAll(".*\"source\":\"(train-\\d+).*", "$1")).distinct().count();
        assertTrue(shardsUsed >= 12, "picks spread over the shards: " + shardsUsed);
    }
}
