package dev.impasto.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.impasto.pipeline.curate.CurateSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JsonTest {
    @TempDir
    Path dir;

    @Test
    void jsonlLinesNameTheFileAndLine() {
        Path f = dir.resolve("metadata.jsonl");
        assertEquals("a.jpg", Json.parseLine(f, 1, "{\"file_name\": \"a.jpg\"}").path("file_name").asText());
        PipelineException e = assertThrows(PipelineException.class, () -> Json.parseLine(f, 7, "{\"file_name\": "));
        assertTrue(e.getMessage().startsWith(f + " line 7: not valid JSON ("), e.getMessage());
    }

    @Test
    void settingsFilesAreStrict() throws IOException {
        Path ok = Files.writeString(dir.resolve("ok.json"), "{\"min-side\": 768, \"quotas\": {\"landscape\": 5}}");
        CurateSettings s = Json.readSettings(ok, CurateSettings.class, "curate config");
        assertEquals(768, s.minSide);
        assertEquals(5, s.quotas.get("landscape"));

        Path unknown = Files.writeString(dir.resolve("unknown.json"), "{\"min-sides\": 768}");
        PipelineException e = assertThrows(PipelineException.class, () -> Json.readSettings(unknown, CurateSettings.class, "curate config"));
        assertTrue(e.getMessage().startsWith(unknown + ": unknown field 'min-sides'; known fields: ") && e.getMessage().contains("min-side,"), e.getMessage());

        Path typed = Files.writeString(dir.resolve("typed.json"), "{\"min-side\": \"big\"}");
        e = assertThrows(PipelineException.class, () -> Json.readSettings(typed, CurateSettings.class, "curate config"));
        assertTrue(e.getMessage().startsWith(typed + ": field 'min-side' has the wrong type"), e.getMessage());

        Path missing = dir.resolve("missing.json");
        e = assertThrows(PipelineException.class, () -> Json.readSettings(missing, CurateSettings.class, "curate config"));
        assertTrue(e.getMessage().startsWith(missing + ": cannot read the curate config: "), e.getMessage());
    }
}
