package dev.impasto.pipeline.caption;

import dev.impasto.pipeline.PipelineException;
import java.util.Locale;

/** Puts the trigger word into captions: at the {@code [trigger]} placeholder, or in front. */
public final class TriggerWords {
    public static final String PLACEHOLDER = "[trigger]";

    public enum Mode {
        /** Replace the placeholder where there is one, else prepend. */
        AUTO,
        /** Always prepend (a placeholder is removed first). */
        PREPEND,
        /** Only replace placeholders; captions without one stay as they are. */
        REPLACE,
        /** Leave the trigger out (placeholders removed). */
        NONE;

        public static Mode parse(String s, String where) {
            try {
                return valueOf(s.strip().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new PipelineException(where + ": trigger mode '" + s + "' is not one of auto, prepend, replace, none");
            }
        }
    }

    private TriggerWords() {}

    public static String apply(String caption, String trigger, Mode mode, String separator) {
        boolean has = caption.contains(PLACEHOLDER);
        if (trigger == null || trigger.isBlank() || mode == Mode.NONE) return strip(caption);
        return switch (mode) {
            case AUTO -> has ? caption.replace(PLACEHOLDER, trigger) : trigger + separator + caption;
            case PREPEND -> trigger + separator + strip(caption);
            case REPLACE -> caption.replace(PLACEHOLDER, trigger);
            case NONE -> strip(caption);
        };
    }

    /** The caption with placeholders taken out and the punctuation around them tidied. */
    public static String strip(String caption) {
        String s = caption.replace(PLACEHOLDER + ", ", "").replace(PLACEHOLDER + " ", "").replace(PLACEHOLDER, "");
        s = s.replaceAll("\\s+", " ").replaceAll(" ([,.;])", "$1").strip();
        return s.isEmpty() ? s : Character.toUpperCase(s.charAt(0)) + s.substring(1);
    }
}
