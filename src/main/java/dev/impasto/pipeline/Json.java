package dev.impasto.pipeline;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** One shared Jackson mapper for the pipeline: compact lines for jsonl, pretty files for people. */
public final class Json {
    public static final ObjectMapper MAPPER = new ObjectMapper()
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
    private static final ObjectMapper PRETTY = MAPPER.copy().enable(SerializationFeature.INDENT_OUTPUT);
    private static final ObjectMapper SETTINGS = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.KEBAB_CASE)
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, true);

    private Json() {}

    public static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    public static String line(Object value) {
        try {
            return MAPPER.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public static String pretty(Object value) {
        try {
            return PRETTY.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public static JsonNode parse(String text) throws JsonProcessingException {
        return MAPPER.readTree(text);
    }

    /** Line {@code lineNo} of the jsonl file {@code file}; malformed JSON is a PipelineException naming both. */
    public static JsonNode parseLine(Path file, int lineNo, String line) {
        try {
            return MAPPER.readTree(line);
        } catch (JsonProcessingException e) {
            throw new PipelineException(file + " line " + lineNo + ": not valid JSON (" + e.getMessage() + ")");
        }
    }

    /** Reads a JSON file, naming the file in the error when it is missing or malformed. */
    public static JsonNode read(Path file) {
        try {
            return MAPPER.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new PipelineException(file + ": not valid JSON (" + e.getOriginalMessage() + " at line "
                    + e.getLocation().getLineNr() + ")", e);
        } catch (IOException e) {
            throw new PipelineException(file + ": cannot read (" + e.getMessage() + ")", e);
        }
    }

    /**
     * Settings from a JSON config file keyed by the CLI option names ({@code "min-side": 512}), strictly: an unknown
     * or mistyped field is a PipelineException naming the file and the field. {@code what} ("caption config") names
     * the file in a read error.
     */
    public static <T> T readSettings(Path file, Class<T> type, String what) {
        try {
            return SETTINGS.readValue(file.toFile(), type);
        } catch (UnrecognizedPropertyException e) {
            throw new PipelineException(file + ": unknown field '" + e.getPropertyName() + "'; known fields: "
                    + String.join(", ", e.getKnownPropertyIds().stream().map(Object::toString).sorted().toList()));
        } catch (MismatchedInputException e) {
            String field = e.getPath().isEmpty() ? "?" : e.getPath().get(0).getFieldName();
            throw new PipelineException(file + ": field '" + field + "' has the wrong type (" + e.getOriginalMessage() + ")");
        } catch (IOException e) {
            throw new PipelineException(file + ": cannot read the " + what + ": " + e.getMessage());
        }
    }

    public static void writePretty(Path file, Object value) {
        try {
            Files.writeString(file, pretty(value) + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
