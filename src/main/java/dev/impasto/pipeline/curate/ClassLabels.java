package dev.impasto.pipeline.curate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The ClassLabel names of a WikiArt-style table. They travel in the parquet footer under the key
 * {@code huggingface}; without it, ids are all that is left, which is how an earlier upload lost them.
 */
public record ClassLabels(List<String> genres, List<String> styles, List<String> artists) {
    public static final String HF_KEY = "huggingface";

    public static final List<String> WIKIART_GENRES = List.of("abstract_painting", "cityscape", "genre_painting",
            "illustration", "landscape", "nude_painting", "portrait", "religious_painting", "sketch_and_study",
            "still_life", "Unknown Genre");
    public static final List<String> WIKIART_STYLES = List.of("Abstract_Expressionism", "Action_painting",
            "Analytical_Cubism", "Art_Nouveau", "Baroque", "Color_Field_Painting", "Contemporary_Realism", "Cubism",
            "Early_Renaissance", "Expressionism", "Fauvism", "High_Renaissance", "Impressionism",
            "Mannerism_Late_Renaissance", "Minimalism", "Naive_Art_Primitivism", "New_Realism", "Northern_Renaissance",
            "Pointillism", "Pop_Art", "Post_Impressionism", "Realism", "Rococo", "Romanticism", "Symbolism",
            "Synthetic_Cubism", "Ukiyo_e");

    public static ClassLabels wikiArt() {
        return new ClassLabels(WIKIART_GENRES, WIKIART_STYLES, List.of());
    }

    /** Names from a {@code huggingface} footer value; a column the footer doesn't describe keeps {@code fallback}'s names. */
    public static ClassLabels fromHuggingface(String json, ClassLabels fallback) {
        if (json == null) return fallback;
        try {
            JsonNode features = Json.parse(json).path("info").path("features");
            return new ClassLabels(names(features, "genre", fallback.genres), names(features, "style", fallback.styles),
                    names(features, "artist", fallback.artists));
        } catch (Exception e) {
            return fallback;
        }
    }

    private static List<String> names(JsonNode features, String column, List<String> fallback) {
        JsonNode n = features.path(column).path("names");
        if (!n.isArray() || n.isEmpty()) return fallback;
        List<String> out = new ArrayList<>();
        n.forEach(x -> out.add(x.asText()));
        return List.copyOf(out);
    }

    /** The id of a genre given as a name (any case) or a number. */
    public int genreId(String nameOrId, String where) {
        return id(genres, nameOrId, "genre", where);
    }

    public int styleId(String nameOrId, String where) {
        return id(styles, nameOrId, "style", where);
    }

    static int id(List<String> names, String nameOrId, String what, String where) {
        String s = nameOrId.strip();
        if (s.matches("\\d+")) {
            int id = Integer.parseInt(s);
            if (!names.isEmpty() && id >= names.size())
                throw new PipelineException(where + ": " + what + " id " + id + " is out of range (0.." + (names.size() - 1) + ")");
            return id;
        }
        for (int i = 0; i < names.size(); i++)
            if (names.get(i).equalsIgnoreCase(s) || names.get(i).replace('_', ' ').equalsIgnoreCase(s.replace('_', ' '))) return i;
        throw new PipelineException(where + ": unknown " + what + " '" + nameOrId + "'; known: " + String.join(", ", names));
    }

    public String genreName(int id) {
        return name(genres, id);
    }

    public String styleName(int id) {
        return name(styles, id);
    }

    public String artistName(int id) {
        return name(artists, id);
    }

    private static String name(List<String> names, int id) {
        return id >= 0 && id < names.size() ? names.get(id) : (id < 0 ? "" : Integer.toString(id));
    }

    /** The {@code huggingface} footer value for a table of image, text and these label columns. */
    public String huggingfaceJson(boolean withText, boolean withArtist) {
        ObjectNode root = Json.object();
        ObjectNode features = root.putObject("info").putObject("features");
        features.putObject("image").put("_type", "Image");
        if (withText) features.putObject("text").put("dtype", "string").put("_type", "Value");
        classLabel(features.putObject("genre"), genres);
        classLabel(features.putObject("style"), styles);
        if (withArtist) {
            if (artists.isEmpty()) features.putObject("artist").put("dtype", "int64").put("_type", "Value");
            else classLabel(features.putObject("artist"), artists);
        }
        return Json.line(root);
    }

    private static void classLabel(ObjectNode node, List<String> names) {
        ArrayNode a = node.putArray("names");
        names.forEach(a::add);
        node.put("_type", "ClassLabel");
    }

    /** File-system and caption friendly form of a label: "Unknown Genre" becomes "unknown_genre". */
    public static String slug(String name) {
        return name.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "_").replaceAll("^_|_$", "");
    }
}
