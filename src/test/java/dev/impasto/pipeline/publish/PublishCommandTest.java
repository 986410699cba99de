package dev.impasto.pipeline.publish;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.cli.PublishCommand;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class PublishCommandTest {
    static final String TOKEN = "hf_testtoken_0123456789";
    @TempDir Path dir;
    String out;

    int run(Map<String, String> env, String... args) throws Exception {
        PublishCommand cmd = new PublishCommand();
        var f = PublishCommand.class.getDeclaredField("env");
        f.setAccessible(true);
        f.set(cmd, env);
        StringWriter o = new StringWriter(), e = new StringWriter();
        CommandLine cl = new CommandLine(cmd);
        cl.setOut(new PrintWriter(o));
        cl.setErr(new PrintWriter(e));
        int rc = cl.execute(args);
        out = o + "\n" + e;
        return rc;
    }

    static Map<String, JsonNode> byPath(List<JsonNode> commit) {
        Map<String, JsonNode> m = new HashMap<>();
        for (JsonNode l : commit) if (l.path("value").has("path")) m.put(l.path("value").path("path").asText(), l);
        return m;
    }

    @Test
    void modelRepoUploadsWithMultipartBasicExpiredUrlAndFailingPart() throws Exception {
        Path runDir = RunFixtures.run(dir.resolve("run"), true, true);
        try (FakeHub hub = new FakeHub(TOKEN)) {
            hub.expireBasicPuts.set(1);
            hub.failParts.set(1);
            String[] args = {"--run", runDir.toString(), "--repo", "me/flux-impressionism", "--hub-url", hub.hub.url(), "--retry-base-ms", "10",
                    "--dataset-repo", "me/wikiart-impressionism"};
            assertEquals(0, run(Map.of("HF_TOKEN", TOKEN), args), out);
            hub.assertClean();
            assertFalse(out.contains(TOKEN), "token never printed");
            assertEquals(1, hub.commits.size());
            Map<String, JsonNode> files = byPath(hub.commits.getFirst());
            assertEquals(java.util.Set.of("pytorch_lora_weights.safetensors", "lora_kohya.safetensors", "training_config.json",
                    "samples/sample_0.png", "samples/sample_1.png", "samples/sample_2.png", "samples_grid.png", "loss.png", "README.md"), files.keySet());
            // the diffusers LoRA went multipart (450 KB > 200 KB, 5 parts), the kohya one basic after an expired URL
            JsonNode d = files.get("pytorch_lora_weights.safetensors");
            assertEquals("lfsFile", d.path("key").asText());
            assertArrayEquals(Files.readAllBytes(runDir.resolve("lora.safetensors")), hub.objects.get(d.path("value").path("oid").asText()));
            assertEquals(5, hub.parts.get(d.path("value").path("oid").asText()).size());
            JsonNode k = files.get("lora_kohya.safetensors");
            assertArrayEquals(Files.readAllBytes(runDir.resolve("lora_kohya.safetensors")), hub.objects.get(k.path("value").path("oid").asText()));
            assertTrue(hub.batchCalls.get() >= 2, "the expired URL was replaced through a second batch call");
            assertEquals(-1, hub.expireBasicPuts.get() < 0 ? -1 : hub.expireBasicPuts.get());

            String readme = new String(Base64.getDecoder().decode(files.get("README.md").path("value").path("content").asText()));
            String front = readme.substring(0, readme.indexOf("\n---\n", 4) + 5);
            for (String line : List.of("---\n", "base_model: black-forest-labs/FLUX.1-dev\n", "instance_prompt: \"mnt_impr\"\n", "license: other\n",
                    "license_name: flux-1-dev-non-commercial-license\n",
                    "license_link: https://huggingface.co/black-forest-labs/FLUX.1-dev/blob/main/LICENSE.md\n",
                    "tags:\n- text-to-image\n- flux\n- lora\n- diffusers\n",
                    "widget:\n- text: \"mnt_impr, a harbour at dawn\"\n  output:\n    url: samples/sample_0.png\n",
                    "- text: \"mnt_impr, a woman with a parasol: windy day\"\n  output:\n    url: samples/sample_1.png\n",
                    "- text: \"mnt_impr, still life with \\\"pears\\\"\"\n  output:\n    url: samples/sample_2.png\n",
                    "library_name: diffusers\n"))
                assertTrue(front.contains(line), "front matter has " + line + "\n" + front);
            assertTrue(readme.contains("pipe.load_lora_weights(\"me/flux-impressionism\", weight_name=\"pytorch_lora_weights.safetensors\")"), readme);
            assertTrue(readme.contains("FluxPipeline"));
            assertTrue(readme.contains("| rank | 16 |"), readme);
            assertTrue(readme.contains("| learning_rate | 0.0001 |"), readme);
            assertTrue(readme.contains("datasets/me/wikiart-impressionism"));
            String cfg = new String(Base64.getDecoder().decode(files.get("training_config.json").path("value").path("content").asText()));
            assertEquals(2000, Json.parse(cfg).path("steps").asInt());
            var grid = javax.imageio.ImageIO.read(runDir.resolve("hub_repo/samples_grid.png").toFile());
            assertTrue(grid.getWidth() >= 3 * 128 && grid.getWidth() < 4 * 140, "3 samples of 128 px side by side: " + grid.getWidth());

            dev.impasto.pipeline.curate.CurateCommandTest.keep(runDir.resolve("hub_repo"), "model_repo");
            // rerun: the repo exists (409) and the objects are stored: nothing is uploaded again
            int stored = hub.objects.size();
            assertEquals(0, run(Map.of("HF_TOKEN", TOKEN), args), out);
            assertTrue(out.contains("0 LFS uploaded"), out);
            assertEquals(stored, hub.objects.size());
            assertEquals(2, hub.commits.size());
            hub.assertClean();
        }
    }

    @Test
    void storageThatKeepsFailingLeavesNoCommit() throws Exception {
        Path runDir = RunFixtures.run(dir.resolve("run2"), true, false);
        try (FakeHub hub = new FakeHub(TOKEN)) {
            hub.failParts.set(1_000);
            assertEquals(2, run(Map.of("HF_TOKEN", TOKEN), "--run", runDir.toString(), "--repo", "me/r", "--hub-url", hub.hub.url(),
                    "--retry-base-ms", "1", "--retries", "3"));
            assertTrue(out.contains("failed after 3 attempts") && out.contains("nothing was committed"), out);
            assertTrue(hub.commits.isEmpty(), "no half-made commit");
            hub.assertClean();
        }
        try (FakeHub hub = new FakeHub(TOKEN)) {
            hub.expireBasicPuts.set(1_000);
            hub.multipartOver = Long.MAX_VALUE;
            assertEquals(2, run(Map.of("HF_TOKEN", TOKEN), "--run", runDir.toString(), "--repo", "me/r", "--hub-url", hub.hub.url(), "--retry-base-ms", "1"));
            assertTrue(out.contains("expiring"), out);
            assertTrue(hub.commits.isEmpty());
        }
    }

    @Test
    void badTokenIsAClearErrorWithoutTheToken() throws Exception {
        Path runDir = RunFixtures.run(dir.resolve("run3"), false, true);
        try (FakeHub hub = new FakeHub("the-right-token")) {
            hub.enforceToken = true; // the Hub answers 401 to a wrong token
            assertEquals(2, run(Map.of("HUGGING_FACE_HUB_TOKEN", "wrong-token"), "--run", runDir.toString(), "--repo", "me/r", "--hub-url", hub.hub.url()));
            assertTrue(out.contains("HTTP 401") && out.contains("token missing or invalid: set HF_TOKEN or pass --token-file"), out);
            assertFalse(out.contains("wrong-token"), "the token never appears in the output: " + out);
            assertTrue(hub.storageRequests() == 0, "nothing was uploaded");
        }
        assertEquals(2, run(Map.of(), "--run", runDir.toString(), "--repo", "me/r", "--hub-url", "http://127.0.0.1:9"));
        assertTrue(out.contains("no Hub token: set HF_TOKEN or HUGGING_FACE_HUB_TOKEN"), out);
    }

    @Test
    void dryRunWritesTheFolderAndPrintsThePlanWithoutNetwork() throws Exception {
        Path runDir = RunFixtures.run(dir.resolve("run4"), false, true);
        Path folder = dir.resolve("repo");
        assertEquals(0, run(Map.of(), "--run", runDir.toString(), "--repo", "me/only-kohya", "--out", folder.toString(), "--dry-run",
                "--hub-url", "http://127.0.0.1:9"), out);
        assertTrue(out.contains("dry run: nothing uploaded"), out);
        assertTrue(out.contains("lora_kohya.safetensors") && !out.contains("pytorch_lora_weights"), out);
        String readme = Files.readString(folder.resolve("README.md"));
        assertTrue(readme.contains("weight_name=\"lora_kohya.safetensors\""), "only the kohya file: the snippet loads it");
        assertTrue(Files.isRegularFile(folder.resolve("samples_grid.png")));
        assertEquals(Files.size(runDir.resolve("lora_kohya.safetensors")), Files.size(folder.resolve("lora_kohya.safetensors")));
    }

    @Test
    void wrongNamingAndCorruptSafetensorsAreRefused() throws Exception {
        Path runDir = dir.resolve("bad");
        Files.createDirectories(runDir);
        RunFixtures.lora(runDir.resolve("lora.safetensors"), true, 1000, false);
        assertEquals(2, run(Map.of(), "--run", runDir.toString(), "--repo", "me/r", "--trigger", "t", "--dry-run"));
        assertTrue(out.contains("kohya key names"), out);
        Files.write(runDir.resolve("lora.safetensors"), new byte[] {(byte) 0xff, 0x7f, 0, 0, 0, 0, 0, 0, '{'});
        assertEquals(2, run(Map.of(), "--run", runDir.toString(), "--repo", "me/r", "--trigger", "t", "--dry-run"));
        assertTrue(out.contains("header length"), out);
    }

    @Test
    void datasetRepoAsParquetKeepsClassLabelNames() throws Exception {
        Path curated = dir.resolve("curated");
        Files.createDirectories(curated.resolve("train"));
        StringBuilder meta = new StringBuilder();
        for (int i = 0; i < 3; i++) {
            String name = "landscape_0000" + i + ".jpg";
            Files.write(curated.resolve("train").resolve(name), dev.impasto.pipeline.TestImages.jpeg(70 + i, 64, 48));
            meta.append("{\"file_name\":\"").append(name).append("\",\"genre\":\"landscape\",\"genre_id\":4,\"style\":\"Impressionism\",\"style_id\":12,\"text\":\"tok, a field ")
                    .append(i).append("\"}\n");
        }
        Files.writeString(curated.resolve("train/metadata.jsonl"), meta);
        try (FakeHub hub = new FakeHub(TOKEN)) {
            assertEquals(0, run(Map.of("HF_TOKEN", TOKEN), "--dataset", curated.toString(), "--repo", "me/wikiart-small", "--format", "parquet",
                    "--hub-url", hub.hub.url()), out);
            hub.assertClean();
            assertTrue(hub.repos.contains("me/wikiart-small:dataset"));
            Map<String, JsonNode> files = byPath(hub.commits.getFirst());
            assertEquals(java.util.Set.of("data/train-00000-of-00001.parquet", "README.md"), files.keySet());
            String readme = new String(Base64.getDecoder().decode(files.get("README.md").path("value").path("content").asText()));
            assertTrue(readme.contains("configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/*.parquet\n"), readme);
            assertTrue(readme.contains("task_categories:\n- text-to-image\n"), readme);
            byte[] parquet = hub.objects.get(files.get("data/train-00000-of-00001.parquet").path("value").path("oid").asText());
            Path local = dir.resolve("got.parquet");
            Files.write(local, parquet);
            try (var r = dev.impasto.pipeline.parquet.ParquetIO.open(local)) {
                assertEquals(3, r.getRecordCount());
                String hf = r.getFileMetaData().getKeyValueMetaData().get("huggingface");
                JsonNode features = Json.parse(hf).path("info").path("features");
                assertEquals("landscape", features.path("genre").path("names").path(4).asText());
                assertEquals("ClassLabel", features.path("genre").path("_type").asText());
                assertEquals("Value", features.path("text").path("_type").asText());
            }
            // the same folder as an imagefolder: three JPEGs go to LFS in parallel, metadata.jsonl as a regular file
            assertEquals(0, run(Map.of("HF_TOKEN", TOKEN), "--dataset", curated.toString(), "--repo", "me/wikiart-folder",
                    "--hub-url", hub.hub.url(), "--parallel", "3"), out);
            hub.assertClean();
            Map<String, JsonNode> folder = byPath(hub.commits.get(1));
            assertEquals(5, folder.size());
            assertEquals("file", folder.get("train/metadata.jsonl").path("key").asText());
            for (int i = 0; i < 3; i++) {
                JsonNode l = folder.get("train/landscape_0000" + i + ".jpg");
                assertEquals("lfsFile", l.path("key").asText());
                assertArrayEquals(Files.readAllBytes(curated.resolve("train/landscape_0000" + i + ".jpg")), hub.objects.get(l.path("value").path("oid").asText()));
            }
            String card = new String(Base64.getDecoder().decode(folder.get("README.md").path("value").path("content").asText()));
            assertTrue(card.contains("    path: train/*\n"), card);
        }
    }
}
