package dev.impasto.pipeline.hub;

import static org.junit.jupiter.api.Assertions.*;

import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.LoopbackServer;
import dev.impasto.pipeline.LoopbackServer.Response;
import dev.impasto.pipeline.TestImages;
import dev.impasto.pipeline.cli.CurateCommand;
import dev.impasto.pipeline.curate.Shards;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Shards fetched from a Hub dataset repo: only the selected ones, resumed after a cut, verified by sha256. */
class HubDownloaderTest {
    @TempDir Path dir;

    static String sha256(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    @Test
    void curateFromHubResumesCutDownloadsRejectsCorruptOnesAndUsesTheCache() throws Exception {
        Path src = dir.resolve("src");
        Files.createDirectories(src);
        Map<String, byte[]> shards = new ConcurrentHashMap<>();
        for (int s = 0; s < 3; s++) {
            List<Shards.Row> rows = new ArrayList<>();
            for (int i = 0; i < 4; i++) rows.add(new Shards.Row(TestImages.jpeg(500 + s * 10 + i, 260, 260), i % 2 == 0 ? 4 : 6, 12, 0));
            Path f = src.resolve("train-0000" + s + "-of-00003.parquet");
            Shards.write(f, rows, 1 << 20);
            shards.put("data/" + f.getFileName(), Files.readAllBytes(f));
        }
        Map<String, AtomicInteger> gets = new ConcurrentHashMap<>();
        AtomicInteger ranged = new AtomicInteger();
        String[] hub0 = new String[1];
        try (LoopbackServer hub = new LoopbackServer(req -> {
            String p = req.path();
            if (p.equals("/api/datasets/huggan/wikiart/tree/main/data")) {
                assertTrue(req.query().startsWith("recursive=true"), req.query());
                // two pages, as the real API pages with a Link header
                List<String> names = shards.keySet().stream().sorted().toList();
                boolean second = req.query().contains("cursor=2");
                List<Map<String, Object>> list = new ArrayList<>();
                for (String n : second ? names.subList(2, 3) : names.subList(0, 2))
                    list.add(Map.of("type", "file", "path", n, "size", shards.get(n).length, "oid", "0".repeat(40),
                            "lfs", Map.of("oid", sha256(shards.get(n)), "size", shards.get(n).length, "pointerSize", 134)));
                list.add(Map.of("type", "directory", "path", "data/extra", "oid", "1".repeat(40)));
                Response page = Response.json(200, Json.line(list));
                return second ? page : page.withHeader("Link", "<" + hub0[0] + "/api/datasets/huggan/wikiart/tree/main/data?recursive=true&cursor=2>; rel=\"next\"");
            }
            if (p.startsWith("/datasets/huggan/wikiart/resolve/main/")) {
                String name = p.substring("/datasets/huggan/wikiart/resolve/main/".length());
                byte[] all = shards.get(name);
                int n = gets.computeIfAbsent(name, k -> new AtomicInteger()).incrementAndGet();
                String range = req.header("Range");
                if (range != null) {
                    ranged.incrementAndGet();
                    int from = Integer.parseInt(range.replaceAll("bytes=(\\d+)-", "$1"));
                    byte[] rest = java.util.Arrays.copyOfRange(all, from, all.length);
                    return new Response(206, Map.of("Content-Range", "bytes " + from + "-" + (all.length - 1) + "/" + all.length), rest, 0, false, 0);
                }
                if (name.endsWith("00000-of-00003.parquet") && n == 1) return new Response(200, Map.of(), all, 0, false, 0).cutAfter(all.length / 3);
                if (name.endsWith("00001-of-00003.parquet") && n == 1) {
                    byte[] bad = all.clone();
                    bad[bad.length / 2] ^= 1;
                    return new Response(200, Map.of(), bad, 0, false, 0);
                }
                return new Response(200, Map.of(), all, 0, false, 0);
            }
            return Response.json(404, "{}");
        })) {
            hub0[0] = hub.url();
            Path cache = dir.resolve("cache");
            String[] args = {"--hub", "huggan/wikiart", "--hub-url", hub.url(), "--hub-shards", "0-1", "--cache", cache.toString(),
                    "--out", dir.resolve("out").toString(), "--quota", "landscape=2,portrait=2", "--min-side", "256", "--threads", "1", "--retry-base-ms", "20"};
            StringWriter err = new StringWriter();
            CommandLine cl = new CommandLine(new CurateCommand());
            cl.setErr(new PrintWriter(err));
            assertEquals(0, cl.execute(args), err.toString());
            assertEquals(1, ranged.get(), "the cut download resumed with a Range request");
            assertEquals(2, hub.requests.stream().filter(r -> r.path().contains("/tree/")).count(), "both listing pages were read");
            assertTrue(err.toString().isEmpty() || !err.toString().contains("shard index"), err.toString());
            assertEquals(2, gets.get("data/train-00001-of-00003.parquet").get(), "a checksum mismatch downloads again");
            assertNull(gets.get("data/train-00002-of-00003.parquet"), "unselected shards are not fetched");
            for (int s = 0; s < 2; s++) {
                Path f = cache.resolve("data/train-0000" + s + "-of-00003.parquet");
                assertArrayEquals(shards.get("data/" + f.getFileName()), Files.readAllBytes(f));
                assertFalse(Files.exists(cache.resolve("data/train-0000" + s + "-of-00003.parquet.part")));
            }
            assertEquals(4, Files.readAllLines(dir.resolve("out/train/metadata.jsonl")).size());

            // second run: everything comes from the verified cache
            int before = gets.values().stream().mapToInt(AtomicInteger::get).sum();
            args[args.length - 9] = dir.resolve("out2").toString();
            assertEquals(0, new CommandLine(new CurateCommand()).execute(args));
            assertEquals(before, gets.values().stream().mapToInt(AtomicInteger::get).sum());
        }
    }
}
