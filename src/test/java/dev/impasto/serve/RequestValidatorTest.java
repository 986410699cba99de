package dev.impasto.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.impasto.api.ImageGenerator;
import dev.impasto.eval.FakeGenerator;
import java.util.List;
import org.junit.jupiter.api.Test;

class RequestValidatorTest {
    static final ObjectMapper JSON = new ObjectMapper();
    final FakeGenerator gen = new FakeGenerator();
    final RequestValidator v = new RequestValidator(new DemoServer.Options("127.0.0.1", 0, 2, 30, 256, 100, null, 8, 1, "t"), gen.info(), gen.loras());

    ImageGenerator.Request ok(String json) throws Exception {
        return v.parse(JSON.readTree(json));
    }

    List<RequestValidator.FieldError> bad(String json) {
        return assertThrows(RequestValidator.Invalid.class, () -> v.parse(JSON.readTree(json))).errors;
    }

    @Test
    void defaultsComeFromTheModel() throws Exception {
        ImageGenerator.Request r = ok("{\"prompt\": \"  red \"}");
        assertEquals("red", r.prompt());
        assertEquals(4, r.steps());
        assertEquals(1.0, r.guidance());
        assertEquals(64, r.width());
        assertEquals(64, r.height());
        assertNull(r.lora());
        assertEquals(0.0, r.loraScale());
        assertTrue(r.seed() >= 0 && r.seed() <= RequestValidator.MAX_SEED);
        // HTML forms send numbers as strings; "none" and "" mean the base model; -1 means a random seed
        r = ok("{\"prompt\": \"blue\", \"seed\": \"42\", \"steps\": \"7\", \"guidance\": \"3.5\", \"width\": 128, \"height\": 96, \"lora\": \"pale\", \"strength\": 0.75}");
        assertEquals(42, r.seed());
        assertEquals(7, r.steps());
        assertEquals(3.5, r.guidance());
        assertEquals(96, r.height());
        assertEquals("pale", r.lora());
        assertEquals(0.75, r.loraScale());
        assertNull(ok("{\"prompt\": \"blue\", \"lora\": \"none\", \"strength\": 2}").lora());
        assertTrue(ok("{\"prompt\": \"blue\", \"seed\": -1}").seed() >= 0);
        assertEquals(RequestValidator.MAX_SEED, ok("{\"prompt\": \"blue\", \"seed\": 9007199254740991}").seed());
    }

    @Test
    void everyProblemNamesItsField() {
        assertEquals("prompt", bad("{}").getFirst().field());
        assertEquals("prompt", bad("{\"prompt\": \"   \"}").getFirst().field());
        assertTrue(bad("{\"prompt\": \"" + "x".repeat(101) + "\"}").getFirst().message().contains("at most 100 characters"));
        assertEquals("steps", bad("{\"prompt\": \"red\", \"steps\": 0}").getFirst().field());
        var e = bad("{\"prompt\": \"red\", \"steps\": 31}").getFirst();
        assertEquals("steps: an integer in 1..30, got 31", e.message());
        assertEquals("steps", bad("{\"prompt\": \"red\", \"steps\": 2.5}").getFirst().field());
        assertEquals("width: a multiple of 16 in 16..256, got 100", bad("{\"prompt\": \"red\", \"width\": 100}").getFirst().message());
        assertEquals("height", bad("{\"prompt\": \"red\", \"height\": 4096}").getFirst().field());
        assertEquals("guidance", bad("{\"prompt\": \"red\", \"guidance\": \"lots\"}").getFirst().field());
        assertEquals("guidance", bad("{\"prompt\": \"red\", \"guidance\": 31}").getFirst().field());
        assertEquals("strength", bad("{\"prompt\": \"red\", \"lora\": \"pale\", \"strength\": 5}").getFirst().field());
        assertTrue(bad("{\"prompt\": \"red\", \"lora\": \"../../etc/passwd\"}").getFirst().message().contains("unknown LoRA \"../../etc/passwd\" (available: pale)"));
        assertEquals("seed", bad("{\"prompt\": \"red\", \"seed\": 9007199254740992}").getFirst().field());
        assertEquals("seed", bad("{\"prompt\": \"red\", \"seed\": \"abc\"}").getFirst().field());
        assertTrue(bad("{\"prompt\": \"red\", \"negative\": \"x\"}").getFirst().message().contains("unknown field \"negative\""));
        assertEquals("", bad("[1, 2]").getFirst().field());
        // all problems at once, in field order
        List<String> fields = bad("{\"steps\": 0, \"width\": 17}").stream().map(RequestValidator.FieldError::field).toList();
        assertEquals(List.of("prompt", "steps", "width"), fields);
    }
}
