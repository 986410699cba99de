package dev.impasto.pipeline.caption;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The instructions sent with each image. A style LoRA learns the style from the trigger word, so captions must
 * describe what is in the picture and leave the style out: a caption that says "impressionist brushwork" teaches
 * the model that those words, not the trigger, carry the style.
 */
public final class CaptionPrompt {
    public static final String SYSTEM = """
            You write captions for training a text-to-image model. Describe only the CONTENT of the image: \
            the subjects, what they are doing and where they are placed, the setting, season, weather, time of day \
            and light, notable objects and their colours. Do NOT mention the artistic style, art movement, medium, \
            brushwork, texture of paint, the artist, or that the image is a painting or an artwork. Do not guess names \
            of people or places. Write one to three plain English sentences, 15 to 60 words, starting with the main \
            subject. Answer with JSON only, exactly of the form {"caption": "..."}.""";

    public static final Map<String, String> GENRE_HINTS = new LinkedHashMap<>();

    static {
        GENRE_HINTS.put("landscape", "The picture is a landscape: name the terrain, water, sky and clouds, vegetation, season and light.");
        GENRE_HINTS.put("portrait", "The picture is a portrait: describe the person's apparent age, clothing, pose, expression, hair and the background.");
        GENRE_HINTS.put("cityscape", "The picture is a city view: describe the buildings, streets, bridges or water, people, vehicles, weather and time of day.");
        GENRE_HINTS.put("urban", GENRE_HINTS.get("cityscape"));
        GENRE_HINTS.put("still_life", "The picture is a still life: list the objects, their arrangement, materials and the surface or cloth they rest on.");
        GENRE_HINTS.put("genre_painting", "The picture shows a scene of everyday life: describe the people, what they do and where.");
        GENRE_HINTS.put("nude_painting", "The picture shows a nude figure: describe pose and setting plainly and without judgement.");
        GENRE_HINTS.put("religious_painting", "The picture shows a religious scene: describe the figures, their gestures and the setting.");
    }

    private final String system;
    private final Map<String, String> hints;

    public CaptionPrompt(String system, Map<String, String> extraHints) {
        this.system = system == null || system.isBlank() ? SYSTEM : system;
        this.hints = new LinkedHashMap<>(GENRE_HINTS);
        if (extraHints != null) hints.putAll(extraHints);
    }

    public String system() {
        return system;
    }

    /** The per-image user text: the genre hint when the genre is known. */
    public String user(String genre) {
        String hint = genre == null ? null : hints.get(genre);
        return (hint == null ? "" : hint + " ") + "Reply with {\"caption\": \"...\"} only.";
    }
}
