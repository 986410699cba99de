package dev.impasto.pipeline.curate;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.parquet.ParquetIO;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.api.Binary;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;

/**
 * Imagefolder ({@code train/} + {@code train/metadata.jsonl}) to a Hugging Face parquet file: the image column
 * as {@code struct<bytes, path>}, labels as int64 ClassLabel ids, and the {@code huggingface} footer key that
 * carries the ClassLabel names, so {@code load_dataset} gives named classes back. Streams row by row.
 */
public final class DatasetExport {
    /**
     * parquet-java buffers a whole row group before writing it; 8 MB (a few dozen images) keeps memory flat
     * and matches the small row groups the datasets library writes for image tables.
     */
    static final long ROW_GROUP_BYTES = 8L << 20;

    private DatasetExport() {}

    /** {@code labels} with the genre names replaced by the curated output labels (e.g. cityscape -> urban). */
    public static ClassLabels renamed(ClassLabels labels, Map<Integer, String> outLabel) {
        List<String> genres = new ArrayList<>(labels.genres());
        outLabel.forEach((g, name) -> { if (g < genres.size()) genres.set(g, name); });
        return new ClassLabels(List.copyOf(genres), labels.styles(), labels.artists());
    }

    /** @return rows written */
    public static long toParquet(Path trainDir, Path parquetFile, ClassLabels labels) throws IOException {
        Path meta = trainDir.resolve("metadata.jsonl");
        if (!Files.isRegularFile(meta)) throw new PipelineException(trainDir + ": no metadata.jsonl");
        boolean withText = false, withArtist = false;
        try (BufferedReader r = Files.newBufferedReader(meta)) {
            String line;
            while ((line = r.readLine()) != null) {
                if (line.isBlank()) continue;
                JsonNode o = Json.parse(line);
                withText |= o.has("text");
                withArtist |= o.has("artist_id");
            }
        }
        StringBuilder schemaText = new StringBuilder("message schema { optional group image { optional binary bytes; optional binary path (STRING); } ");
        if (withText) schemaText.append("optional binary text (STRING); ");
        schemaText.append("optional int64 genre; optional int64 style; ");
        if (withArtist) schemaText.append("optional int64 artist; ");
        schemaText.append('}');
        MessageType schema = MessageTypeParser.parseMessageType(schemaText.toString());
        Path tmp = parquetFile.resolveSibling(parquetFile.getFileName() + ".tmp");
        long rows = 0;
        try (ParquetWriter<Group> w = ParquetIO.writer(tmp, schema, Map.of(ClassLabels.HF_KEY, labels.huggingfaceJson(withText, withArtist)),
                CompressionCodecName.SNAPPY, ROW_GROUP_BYTES);
             BufferedReader r = Files.newBufferedReader(meta)) {
            SimpleGroupFactory f = new SimpleGroupFactory(schema);
            String line;
            int n = 0;
            while ((line = r.readLine()) != null) {
                n++;
                if (line.isBlank()) continue;
                JsonNode o = Json.parse(line);
                String file = o.path("file_name").asText("");
                Path img = trainDir.resolve(file).normalize();
                if (file.isEmpty() || !img.startsWith(trainDir.normalize()) || !Files.isRegularFile(img))
                    throw new PipelineException(meta + " line " + n + ": file_name '" + file + "' is not a file in " + trainDir);
                Group g = f.newGroup();
                Group image = g.addGroup("image");
                image.add("bytes", Binary.fromConstantByteArray(Files.readAllBytes(img)));
                image.add("path", file);
                if (withText && o.hasNonNull("text")) g.add("text", o.get("text").asText());
                if (o.has("genre_id")) g.add("genre", o.get("genre_id").asLong());
                if (o.has("style_id")) g.add("style", o.get("style_id").asLong());
                if (withArtist && o.has("artist_id")) g.add("artist", o.get("artist_id").asLong());
                w.write(g);
                rows++;
            }
        }
        Files.move(tmp, parquetFile, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        return rows;
    }
}
