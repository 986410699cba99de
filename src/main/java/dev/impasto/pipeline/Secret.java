package dev.impasto.pipeline;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * An API key or token. It is read from an environment variable or a file and never appears in
 * toString, logs or error messages: only {@link #reveal()} gives the value, for the request header.
 */
public final class Secret {
    private final String value;
    private final String origin;

    private Secret(String value, String origin) {
        this.value = value;
        this.origin = origin;
    }

    public static Secret of(String value, String origin) {
        if (value == null || value.isBlank()) throw new PipelineException(origin + " is empty");
        return new Secret(value.strip(), origin);
    }

    /**
     * The secret from {@code file} when given, else from the first set variable of {@code envVars}.
     * @param what what the secret is for, used in the error message
     */
    public static Secret resolve(Path file, List<String> envVars, Map<String, String> env, String what) {
        if (file != null) {
            try {
                return of(Files.readString(file).strip(), "file " + file);
            } catch (IOException e) {
                throw new PipelineException("cannot read the " + what + " from " + file + ": " + e.getMessage());
            }
        }
        for (String v : envVars) {
            String s = env.get(v);
            if (s != null && !s.isBlank()) return new Secret(s.strip(), "environment variable " + v);
        }
        throw new PipelineException("no " + what + ": set " + String.join(" or ", envVars) + ", or pass a file with it");
    }

    /** Several keys from one file (one per line, # comments) or one variable (comma separated). */
    public static List<Secret> resolveMany(Path file, List<String> envVars, Map<String, String> env, String what) {
        List<Secret> out = new ArrayList<>();
        if (file != null) {
            try {
                int n = 0;
                for (String line : Files.readAllLines(file)) {
                    n++;
                    String s = line.strip();
                    if (!s.isEmpty() && !s.startsWith("#")) out.add(new Secret(s, "file " + file + " line " + n));
                }
            } catch (IOException e) {
                throw new PipelineException("cannot read the " + what + " from " + file + ": " + e.getMessage());
            }
            if (out.isEmpty()) throw new PipelineException(file + " holds no " + what + " (one per line)");
            return out;
        }
        for (String v : envVars) {
            String s = env.get(v);
            if (s == null || s.isBlank()) continue;
            for (String part : s.split(",")) if (!part.isBlank()) out.add(new Secret(part.strip(), "environment variable " + v));
            return out;
        }
        throw new PipelineException("no " + what + ": set " + String.join(" or ", envVars) + ", or pass a file with it");
    }

    public String reveal() {
        return value;
    }

    public String origin() {
        return origin;
    }

    /** A short label safe to print: the origin and the last 4 characters at most. */
    public String label() {
        return origin + " (..." + (value.length() > 8 ? value.substring(value.length() - 4) : "") + ")";
    }

    @Override
    public String toString() {
        return "Secret[" + origin + "]";
    }
}
