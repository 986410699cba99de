package dev.impasto.pipeline.caption;

import static org.junit.jupiter.api.Assertions.*;

import dev.impasto.pipeline.Secret;
import dev.impasto.pipeline.hub.Backoff;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CaptionUnitsTest {
    @TempDir Path dir;

    @Test
    void triggerWords() {
        assertEquals("tok, A boat.", TriggerWords.apply("A boat.", "tok", TriggerWords.Mode.AUTO, ", "));
        assertEquals("a tok view of a boat", TriggerWords.apply("a [trigger] view of a boat", "tok", TriggerWords.Mode.AUTO, ", "));
        assertEquals("tok A boat.", TriggerWords.apply("[trigger], a boat.", "tok", TriggerWords.Mode.PREPEND, " "));
        assertEquals("A boat.", TriggerWords.apply("A boat.", "tok", TriggerWords.Mode.REPLACE, ", "));
        assertEquals("A boat.", TriggerWords.apply("[trigger], a boat.", null, TriggerWords.Mode.AUTO, ", "));
        assertEquals("A boat under a sky.", TriggerWords.strip("A boat [trigger] under a sky."));
    }

    @Test
    void parserAcceptsFencedJsonAndRejectsTheRest() {
        assertEquals(new Reply.Caption("A red boat on a calm lake."), CaptionParser.parse("```json\n{\"caption\": \"A red  boat on a calm lake.\"}\n```"));
        assertInstanceOf(Reply.Malformed.class, CaptionParser.parse("A red boat"));
        assertInstanceOf(Reply.Malformed.class, CaptionParser.parse("{\"text\": \"A red boat\"}"));
        assertInstanceOf(Reply.Malformed.class, CaptionParser.parse("{\"caption\": \"Boat.\"}"));
        assertInstanceOf(Reply.Malformed.class, CaptionParser.parse("[\"caption\"]"));
    }

    @Test
    void statistics() {
        CaptionStats s = new CaptionStats(List.of("A boat on the sea.", "A boat in a harbour at night.", "Two women walk in a painted garden."));
        assertEquals(3, s.count);
        assertEquals(5, s.minWords);
        assertEquals(7, s.maxWords);
        assertEquals(7, s.medianWords);
        assertEquals(2, s.openings.get("a boat on") + s.openings.get("a boat in"));
        assertEquals(1, s.mentionStyle, "'painted' is a style word");
        assertEquals(14, s.vocabulary);
    }

    @Test
    void keyPoolSpacesRequestsPerKeyAndRetiresKeys() throws Exception {
        KeyPool pool = new KeyPool(List.of(Secret.of("a", "test"), Secret.of("b", "test")), 600); // 100 ms per key
        long t0 = System.nanoTime();
        for (int i = 0; i < 6; i++) pool.acquire();
        double secs = (System.nanoTime() - t0) / 1e9;
        assertTrue(secs >= 0.18 && secs < 1.5, "6 requests on 2 keys at 600/min take ~0.2 s: " + secs);
        KeyPool.Lease l = pool.acquire();
        assertTrue(pool.retire(l, "PerDay"));
        assertFalse(pool.retire(l, "again"));
        assertEquals(1, pool.usable());
        pool.retire(pool.acquire(), "PerDay");
        KeyPool.Exhausted e = assertThrows(KeyPool.Exhausted.class, pool::acquire);
        assertTrue(e.getMessage().contains("PerDay"));
        assertFalse(e.getMessage().contains("\"a\""));
    }

    @Test
    void delaysAndBackoff() {
        assertEquals(Duration.ofSeconds(34), GeminiBackend.parseDelay("34s"));
        assertEquals(Duration.ofMillis(1500), GeminiBackend.parseDelay("1.5s"));
        assertEquals(Duration.ofMillis(250), GeminiBackend.parseDelay("250ms"));
        assertEquals(Duration.ofSeconds(3), Backoff.retryAfter("3"));
        assertNull(Backoff.retryAfter("soon"));
        Backoff b = new Backoff(Duration.ofMillis(100), Duration.ofMillis(1000), 5);
        for (int i = 0; i < 50; i++) {
            long d = b.delay(2).toMillis();
            assertTrue(d >= 200 && d <= 400, "attempt 2: 400 ms with full jitter in [200, 400]: " + d);
            assertTrue(b.delay(10).toMillis() <= 1000, "capped");
        }
        assertEquals(1000, b.delay(0, Duration.ofSeconds(30)).toMillis(), "a server delay above the cap is capped");
    }

    @Test
    void secretsNeverShowInToString() throws Exception {
        Path f = dir.resolve("keys");
        Files.writeString(f, "# comment\nAIzaSECRET1\n\nAIzaSECRET2\n");
        List<Secret> keys = Secret.resolveMany(f, List.of("X"), java.util.Map.of(), "key");
        assertEquals(2, keys.size());
        assertEquals("AIzaSECRET2", keys.get(1).reveal());
        assertFalse(keys.toString().contains("SECRET"));
        assertEquals(List.of("k1", "k2"), Secret.resolveMany(null, List.of("A", "B"), java.util.Map.of("B", "k1, k2"), "key").stream().map(Secret::reveal).toList());
    }

    @Test
    void journalCutsATornLineAndRefusesASecondAnswer() throws Exception {
        Path j = dir.resolve("j.jsonl");
        Files.writeString(j, "{\"id\":\"a\",\"status\":\"ok\",\"caption\":\"x\"}\n{\"id\":\"b\",\"status\":\"failed\",\"reason\":\"r\"}\n{\"id\":\"c\",\"sta");
        try (CaptionJournal journal = new CaptionJournal(j)) {
            assertEquals(1, journal.tornLines());
            assertTrue(journal.done("a"));
            assertFalse(journal.done("b"));
            assertFalse(journal.done("c"));
            assertThrows(IllegalStateException.class, () -> journal.ok("a", "y", "t", 1));
            journal.ok("c", "A caption for c.", "t", 1);
            var busy = assertThrows(dev.impasto.pipeline.PipelineException.class, () -> new CaptionJournal(j));
            assertTrue(busy.getMessage().contains("in use by another caption run"));
        }
        List<String> lines = Files.readAllLines(j);
        assertEquals(3, lines.size());
        assertTrue(lines.get(2).startsWith("{\"id\":\"c\",\"status\":\"ok\""));
    }
}
