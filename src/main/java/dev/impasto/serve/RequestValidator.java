package dev.impasto.serve;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.api.ImageGenerator;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * Turns the JSON body of POST /api/generate into a generator request, or into the list of problems, each naming its
 * field and the allowed range, so the page can point at the field. Limits are the server's (--max-steps, --max-size),
 * tighter than the embedding API's own.
 */
final class RequestValidator {
    /** Largest seed a browser's JavaScript number holds exactly. */
    static final long MAX_SEED = (1L << 53) - 1;
    static final double MIN_STRENGTH = -2, MAX_STRENGTH = 4, MAX_GUIDANCE = 30;
    static final Set<String> FIELDS = Set.of("prompt", "seed", "steps", "guidance", "width", "height", "lora", "strength");

    record FieldError(String field, String message) {}

    static final class Invalid extends Exception {
        final List<FieldError> errors;

        Invalid(List<FieldError> errors) {
            super(errors.getFirst().message());
            this.errors = errors;
        }
    }

    private final DemoServer.Options limits;
    private final ImageGenerator.Info info;
    private final List<String> loras;
    private final SecureRandom random = new SecureRandom();

    RequestValidator(DemoServer.Options limits, ImageGenerator.Info info, List<String> loras) {
        this.limits = limits;
        this.info = info;
        this.loras = List.copyOf(loras);
    }

    ImageGenerator.Request parse(JsonNode body) throws Invalid {
        List<FieldError> errors = new ArrayList<>();
        if (body == null || !body.isObject()) throw new Invalid(List.of(new FieldError("", "the body must be a JSON object like {\"prompt\": \"...\", \"steps\": 20}")));
        for (Iterator<String> it = body.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!FIELDS.contains(f)) errors.add(new FieldError(f, "unknown field \"" + f + "\" (known: prompt, seed, steps, guidance, width, height, lora, strength)"));
        }
        String prompt = "";
        JsonNode p = body.get("prompt");
        if (p == null || !p.isTextual() || p.asText().isBlank()) errors.add(new FieldError("prompt", "prompt: give a non-empty text"));
        else if (p.asText().length() > limits.maxPromptChars()) errors.add(new FieldError("prompt", "prompt: at most " + limits.maxPromptChars() + " characters, got " + p.asText().length()));
        else prompt = p.asText().strip();

        long seed = random.nextLong(MAX_SEED + 1);
        JsonNode s = body.get("seed");
        if (s != null && !s.isNull() && !(s.isTextual() && s.asText().isBlank())) {
            Long v = integer(s);
            if (v == null || (v < 0 && v != -1) || v > MAX_SEED) errors.add(new FieldError("seed", "seed: an integer in 0.." + MAX_SEED + ", or empty / -1 for a random seed"));
            else if (v >= 0) seed = v;
        }
        int steps = intField(body, "steps", info.defaultSteps(), 1, limits.maxSteps(), errors);
        double guidance = numField(body, "guidance", info.defaultGuidance(), 0, MAX_GUIDANCE, errors);
        int width = sideField(body, "width", info.defaultSize(), errors);
        int height = sideField(body, "height", info.defaultSize(), errors);
        if (width > 0 && height > 0 && (long) width * height > (long) limits.maxSide() * limits.maxSide())
            errors.add(new FieldError("width", "size: at most " + limits.maxSide() + "x" + limits.maxSide() + " pixels in all, got " + width + "x" + height));
        String lora = null;
        JsonNode l = body.get("lora");
        if (l != null && !l.isNull()) {
            if (!l.isTextual()) errors.add(new FieldError("lora", "lora: a LoRA name (" + String.join(", ", loras) + ") or \"none\""));
            else if (!l.asText().isBlank() && !l.asText().equals("none")) {
                if (!loras.contains(l.asText())) errors.add(new FieldError("lora", "lora: unknown LoRA \"" + l.asText() + "\" (available: " + (loras.isEmpty() ? "none" : String.join(", ", loras)) + ")"));
                else lora = l.asText();
            }
        }
        double strength = numField(body, "strength", 1.0, MIN_STRENGTH, MAX_STRENGTH, errors);
        if (!errors.isEmpty()) throw new Invalid(errors);
        return new ImageGenerator.Request(prompt, seed, steps, guidance, width, height, lora, lora == null ? 0 : strength);
    }

    private int sideField(JsonNode body, String f, int def, List<FieldError> errors) {
        int before = errors.size();
        int v = intField(body, f, def, 16, limits.maxSide(), errors);
        if (errors.size() == before && v % 16 != 0) {
            errors.add(new FieldError(f, f + ": a multiple of 16 in 16.." + limits.maxSide() + ", got " + v));
            return -1;
        }
        return errors.size() == before ? v : -1;
    }

    private static int intField(JsonNode body, String f, int def, int min, int max, List<FieldError> errors) {
        JsonNode n = body.get(f);
        if (n == null || n.isNull()) return def;
        Long v = integer(n);
        if (v == null || v < min || v > max) {
            errors.add(new FieldError(f, f + ": an integer in " + min + ".." + max + ", got " + n));
            return def;
        }
        return v.intValue();
    }

    private static double numField(JsonNode body, String f, double def, double min, double max, List<FieldError> errors) {
        JsonNode n = body.get(f);
        if (n == null || n.isNull()) return def;
        double v = n.isNumber() ? n.asDouble() : n.isTextual() ? parse(n.asText()) : Double.NaN;
        if (!(v >= min && v <= max)) {
            errors.add(new FieldError(f, f + ": a number in " + fmt(min) + ".." + fmt(max) + ", got " + n));
            return def;
        }
        return v;
    }

    /** An integral JSON number (or a string of digits, as HTML forms send), else null. */
    private static Long integer(JsonNode n) {
        if (n.isIntegralNumber() && n.canConvertToLong()) return n.asLong();
        if (n.isNumber() && n.asDouble() == Math.rint(n.asDouble()) && Math.abs(n.asDouble()) < 9e15) return (long) n.asDouble();
        if (n.isTextual() && n.asText().strip().matches("-?\\d{1,16}")) return Long.parseLong(n.asText().strip());
        return null;
    }

    private static double parse(String s) {
        try {
            return Double.parseDouble(s.strip());
        } catch (NumberFormatException e) {
            return Double.NaN;
        }
    }

    private static String fmt(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }
}
