package dev.impasto.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Turns every field of a config object into a command-line flag named by its path ({@code --lora.rank 32},
 * {@code --sample.seeds 1,2,3}, {@code --lora.blockRanks 'double_blocks\.0\..*=32'}), with the field's
 * {@code @JsonPropertyDescription} as help, and back into a JSON patch over the config.
 */
final class ConfigFlags {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final List<String> paths = new ArrayList<>();
    private final ObjectNode defaults;

    ConfigFlags(Object defaults, CommandSpec spec) {
        this.defaults = JSON.valueToTree(defaults);
        walk(this.defaults, defaults.getClass(), "", spec);
    }

    private void walk(ObjectNode node, Class<?> type, String prefix, CommandSpec spec) {
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            var e = it.next();
            String path = prefix + e.getKey();
            Field f = field(type, e.getKey());
            if (e.getValue().isObject() && f != null && !Map.class.isAssignableFrom(f.getType())) {
                walk((ObjectNode) e.getValue(), f.getType(), path + ".", spec);
                continue;
            }
            String desc = "";
            if (f != null) {
                var d = f.getAnnotation(com.fasterxml.jackson.annotation.JsonPropertyDescription.class);
                if (d != null) desc = d.value();
            }
            String def = e.getValue().isArray() || e.getValue().isObject() ? render(e.getValue()) : e.getValue().asText();
            spec.addOption(OptionSpec.builder("--" + path).paramLabel(label(e.getValue())).type(String.class)
                    .description((desc.isEmpty() ? "" : desc + " ") + "(default: " + (def.isEmpty() ? "none" : def) + ")").build());
            paths.add(path);
        }
    }

    private static Field field(Class<?> type, String name) {
        try {
            return type.getField(name);
        } catch (NoSuchFieldException e) {
            return null;
        }
    }

    private static String label(JsonNode n) {
        if (n.isBoolean()) return "true|false";
        if (n.isIntegralNumber()) return "INT";
        if (n.isNumber()) return "NUM";
        if (n.isArray()) return "A,B,..";
        if (n.isObject()) return "KEY=VAL,..";
        return "TEXT";
    }

    private static String render(JsonNode n) {
        if (n.isArray()) {
            List<String> l = new ArrayList<>();
            n.forEach(x -> l.add(x.asText()));
            return String.join(",", l);
        }
        List<String> l = new ArrayList<>();
        n.fields().forEachRemaining(e -> l.add(e.getKey() + "=" + e.getValue().asText()));
        return String.join(",", l);
    }

    /** The flags the user gave, as a JSON patch (values typed like the defaults). */
    ObjectNode patch(CommandLine.ParseResult pr) {
        ObjectNode patch = JSON.createObjectNode();
        for (String path : paths) {
            if (!pr.hasMatchedOption("--" + path)) continue;
            String raw = pr.matchedOptionValue("--" + path, "");
            JsonNode def = defaults.at("/" + path.replace('.', '/'));
            String[] parts = path.split("\\.");
            ObjectNode at = patch;
            for (int i = 0; i < parts.length - 1; i++) at = at.has(parts[i]) ? (ObjectNode) at.get(parts[i]) : at.putObject(parts[i]);
            String key = parts[parts.length - 1];
            try {
                if (def.isBoolean()) {
                    if (!raw.equalsIgnoreCase("true") && !raw.equalsIgnoreCase("false"))
                        throw new IllegalArgumentException("expects true or false");
                    at.put(key, Boolean.parseBoolean(raw));
                } else if (def.isIntegralNumber()) at.put(key, Long.parseLong(raw.trim()));
                else if (def.isNumber()) at.put(key, Double.parseDouble(raw.trim()));
                else if (def.isArray()) {
                    ArrayNode arr = at.putArray(key);
                    boolean numeric = def.isEmpty() || def.get(0).isNumber();
                    for (String s : raw.split(",")) {
                        if (s.isBlank()) continue;
                        if (numeric) arr.add(Long.parseLong(s.trim()));
                        else arr.add(s.trim());
                    }
                } else if (def.isObject()) {
                    ObjectNode obj = at.putObject(key);
                    for (String kv : raw.split(",")) {
                        if (kv.isBlank()) continue;
                        int eq = kv.lastIndexOf('=');
                        if (eq <= 0) throw new IllegalArgumentException("expects KEY=VALUE pairs, got \"" + kv + "\"");
                        String v = kv.substring(eq + 1).trim();
                        if (v.matches("-?\\d+")) obj.put(kv.substring(0, eq), Long.parseLong(v));
                        else obj.put(kv.substring(0, eq), v);
                    }
                } else at.put(key, raw);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--" + path + ": \"" + raw + "\" is not a number");
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--" + path + ": " + e.getMessage());
            }
        }
        return patch;
    }
}
