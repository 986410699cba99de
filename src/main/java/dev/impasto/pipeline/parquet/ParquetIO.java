package dev.impasto.pipeline.parquet;

import dev.impasto.pipeline.PipelineException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.apache.parquet.ParquetReadOptions;
import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.ParquetFileWriter;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalInputFile;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.io.OutputFile;
import org.apache.parquet.schema.MessageType;

/** Opening parquet files on the local disk with no Hadoop FileSystem or Configuration involved. */
public final class ParquetIO {
    private ParquetIO() {}

    public static ParquetFileReader open(Path file) {
        try {
            if (Files.size(file) < 12) throw new PipelineException(file + ": not a parquet file (only " + Files.size(file) + " bytes)");
            ParquetReadOptions options = ParquetReadOptions.builder(new PlainParquetConfiguration())
                    .withCodecFactory(LocalCodecs.INSTANCE).build();
            return ParquetFileReader.open(new LocalInputFile(file), options);
        } catch (PipelineException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new PipelineException(file + ": cannot read as parquet (" + e.getMessage()
                    + "); the file may be truncated: delete it and fetch it again", e);
        }
    }

    /** A writer of example Groups; the key/value metadata lands in the file footer. */
    public static ParquetWriter<Group> writer(Path file, MessageType schema, Map<String, String> keyValueMetadata,
                                              CompressionCodecName codec, long rowGroupBytes) throws IOException {
        OutputFile out = new LocalOutputFile(file);
        return ExampleParquetWriter.builder(out)
                .withConf(new PlainParquetConfiguration())
                .withCodecFactory(LocalCodecs.INSTANCE)
                .withCompressionCodec(codec)
                .withType(schema)
                .withExtraMetaData(keyValueMetadata)
                .withRowGroupSize(rowGroupBytes)
                // image rows are ~1 MB each: check sizes after every row, not after the default 100, or a page and
                // a row group grow to 100 images in memory before the first check
                .withMinRowCountForPageSizeCheck(1)
                .withMaxRowCountForPageSizeCheck(16)
                .withDictionaryEncoding(false)
                .withWriteMode(ParquetFileWriter.Mode.OVERWRITE)
                .build();
    }
}
