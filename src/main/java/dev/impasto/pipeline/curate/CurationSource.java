package dev.impasto.pipeline.curate;

import java.io.IOException;
import java.util.List;

/** Where rows come from: parquet shards or an image folder with a metadata file. */
public interface CurationSource {
    /** One row's labels, read without its image. {@code artist} is -1 when unknown. */
    record Row(int shard, long row, int genre, int style, int artist, String path) {}

    interface RowSink {
        void accept(Row row) throws IOException;
    }

    interface ImageSink {
        void accept(Candidate candidate, byte[] imageBytes) throws IOException;
    }

    String describe();

    List<String> shardNames();

    ClassLabels labels();

    /** Total rows if known cheaply (parquet footers), else -1. */
    long rowCount();

    /** Every row's labels, shard by shard; image bytes are not read. */
    void scan(RowSink sink) throws IOException;

    /** The image bytes of {@code wanted}, which is sorted by (shard, row); each shard is read once, in order. */
    void fetch(List<Candidate> wanted, ImageSink sink) throws IOException;
}
