package dev.impasto.pipeline.curate;

import dev.impasto.pipeline.parquet.ParquetIO;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.api.Binary;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;

/** Writes huggan/wikiart-schema shards for tests. */
public final class Shards {
    public record Row(byte[] image, int genre, int style, int artist) {}

    public static final MessageType SCHEMA = MessageTypeParser.parseMessageType(
            "message schema { optional group image { optional binary bytes; optional binary path (STRING); } "
                    + "optional int64 artist; optional int64 genre; optional int64 style; }");

    public static void write(Path file, List<Row> rows, long rowGroupBytes) throws IOException {
        write(file, rows, rowGroupBytes, CompressionCodecName.SNAPPY);
    }

    public static void write(Path file, List<Row> rows, long rowGroupBytes, CompressionCodecName codec) throws IOException {
        String hf = "{\"info\": {\"features\": {\"image\": {\"_type\": \"Image\"}, \"artist\": {\"names\": [\"Unknown Artist\", \"claude-monet\", \"camille-pissarro\"], \"_type\": \"ClassLabel\"}, "
                + "\"genre\": {\"names\": " + names(ClassLabels.WIKIART_GENRES) + ", \"_type\": \"ClassLabel\"}, \"style\": {\"names\": "
                + names(ClassLabels.WIKIART_STYLES) + ", \"_type\": \"ClassLabel\"}}}}";
        try (ParquetWriter<Group> w = ParquetIO.writer(file, SCHEMA, Map.of(ClassLabels.HF_KEY, hf), codec, rowGroupBytes)) {
            SimpleGroupFactory f = new SimpleGroupFactory(SCHEMA);
            int i = 0;
            for (Row r : rows) {
                Group g = f.newGroup();
                Group img = g.addGroup("image");
                img.add("bytes", Binary.fromConstantByteArray(r.image()));
                img.add("path", "img" + (i++) + ".jpg");
                g.add("artist", (long) r.artist());
                g.add("genre", (long) r.genre());
                g.add("style", (long) r.style());
                w.write(g);
            }
        }
    }

    private static String names(List<String> l) {
        return "[" + String.join(", ", l.stream().map(s -> "\"" + s + "\"").toList()) + "]";
    }
}
