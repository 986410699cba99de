package dev.impasto.pipeline.curate;

import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.parquet.ParquetIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.metadata.BlockMetaData;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.RecordReader;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;

/**
 * WikiArt-schema parquet shards (huggan/wikiart: {@code image struct<bytes, path>}, {@code genre}, {@code style},
 * {@code artist} as ClassLabel ints). The label pass reads only the label columns; the image pass reads the image
 * column of the row groups that hold wanted rows and skips the others, so at most one row group of images is in
 * memory at a time, however many shards there are.
 */
public final class ParquetShardSource implements CurationSource {
    private final List<Path> shards;
    private final ClassLabels labels;
    private final long rows;

    public ParquetShardSource(List<Path> shardsOrDirs, ClassLabels fallback) {
        List<Path> files = new ArrayList<>();
        for (Path p : shardsOrDirs) {
            if (Files.isDirectory(p)) {
                try (Stream<Path> s = Files.walk(p)) {
                    s.filter(f -> f.getFileName().toString().endsWith(".parquet")).sorted().forEach(files::add);
                } catch (IOException e) {
                    throw new PipelineException("cannot list " + p + ": " + e.getMessage());
                }
            } else if (Files.isRegularFile(p)) {
                files.add(p);
            } else {
                throw new PipelineException("parquet input " + p + " does not exist");
            }
        }
        if (files.isEmpty()) throw new PipelineException("no .parquet files in " + shardsOrDirs);
        this.shards = List.copyOf(files);
        long total = 0;
        ClassLabels found = null;
        for (Path f : shards) {
            try (ParquetFileReader r = ParquetIO.open(f)) {
                total += r.getRecordCount();
                MessageType schema = r.getFileMetaData().getSchema();
                for (String col : List.of("image", "genre", "style"))
                    if (!schema.containsField(col))
                        throw new PipelineException(f + ": no column '" + col + "' (columns: " + columnNames(schema)
                                + "); expected the huggan/wikiart schema image/genre/style[/artist]");
                if (found == null) {
                    String hf = r.getFileMetaData().getKeyValueMetaData().get(ClassLabels.HF_KEY);
                    if (hf != null) found = ClassLabels.fromHuggingface(hf, fallback);
                }
            } catch (IOException e) {
                throw new PipelineException(f + ": cannot read the parquet footer: " + e.getMessage(), e);
            }
        }
        this.labels = found != null ? found : fallback;
        this.rows = total;
    }

    private static String columnNames(MessageType schema) {
        return String.join(", ", schema.getFields().stream().map(Type::getName).toList());
    }

    @Override
    public String describe() {
        return shards.size() + " parquet shard(s), " + rows + " rows";
    }

    @Override
    public List<String> shardNames() {
        return shards.stream().map(p -> p.getFileName().toString()).toList();
    }

    @Override
    public ClassLabels labels() {
        return labels;
    }

    @Override
    public long rowCount() {
        return rows;
    }

    @Override
    public void scan(RowSink sink) throws IOException {
        for (int s = 0; s < shards.size(); s++) {
            Path f = shards.get(s);
            try (ParquetFileReader r = ParquetIO.open(f)) {
                MessageType schema = r.getFileMetaData().getSchema();
                List<Type> fields = new ArrayList<>();
                for (String c : List.of("genre", "style", "artist")) if (schema.containsField(c)) fields.add(schema.getType(c));
                MessageType proj = new MessageType(schema.getName(), fields);
                r.setRequestedSchema(proj);
                long base = 0;
                PageReadStore rg;
                while ((rg = r.readNextRowGroup()) != null) {
                    RecordReader<Group> rr = new ColumnIOFactory().getColumnIO(proj, schema).getRecordReader(rg, new GroupRecordConverter(proj));
                    long n = rg.getRowCount();
                    for (long i = 0; i < n; i++) {
                        Group g = rr.read();
                        String where = f.getFileName() + " row " + (base + i);
                        sink.accept(new Row(s, base + i, label(g, "genre", labels.genres(), where),
                                label(g, "style", labels.styles(), where), label(g, "artist", labels.artists(), where), null));
                    }
                    base += n;
                }
            } catch (PipelineException e) {
                throw e;
            } catch (RuntimeException e) {
                throw new PipelineException(f + ": corrupt parquet data (" + e.getMessage() + "); fetch the shard again", e);
            }
        }
    }

    private static int label(Group g, String field, List<String> names, String where) {
        if (!g.getType().containsField(field) || g.getFieldRepetitionCount(field) == 0) return -1;
        PrimitiveType t = g.getType().getType(field).asPrimitiveType();
        return switch (t.getPrimitiveTypeName()) {
            case INT32 -> g.getInteger(field, 0);
            case INT64 -> (int) g.getLong(field, 0);
            case BINARY -> ClassLabels.id(names, g.getString(field, 0), field, where);
            default -> throw new PipelineException(where + ": column " + field + " has type " + t + "; expected an integer class id or a name");
        };
    }

    @Override
    public void fetch(List<Candidate> wanted, ImageSink sink) throws IOException {
        int i = 0;
        while (i < wanted.size()) {
            int shard = wanted.get(i).shard();
            int j = i;
            while (j < wanted.size() && wanted.get(j).shard() == shard) j++;
            fetchShard(shard, wanted.subList(i, j), sink);
            i = j;
        }
    }

    private void fetchShard(int shard, List<Candidate> wanted, ImageSink sink) throws IOException {
        Path f = shards.get(shard);
        try (ParquetFileReader r = ParquetIO.open(f)) {
            MessageType schema = r.getFileMetaData().getSchema();
            MessageType proj = new MessageType(schema.getName(), List.of(schema.getType("image")));
            r.setRequestedSchema(proj);
            int k = 0;
            long base = 0;
            for (BlockMetaData block : r.getRowGroups()) {
                long n = block.getRowCount();
                if (k >= wanted.size()) break;
                if (wanted.get(k).row() >= base + n) {
                    r.skipNextRowGroup();
                    base += n;
                    continue;
                }
                PageReadStore rg = r.readNextRowGroup();
                RecordReader<Group> rr = new ColumnIOFactory().getColumnIO(proj, schema).getRecordReader(rg, new GroupRecordConverter(proj));
                for (long row = base; row < base + n && k < wanted.size(); row++) {
                    Group g = rr.read();
                    if (wanted.get(k).row() != row) continue;
                    sink.accept(wanted.get(k), imageBytes(g));
                    k++;
                }
                base += n;
            }
            if (k < wanted.size()) throw new PipelineException(f + ": row " + wanted.get(k).row() + " not found (file has " + base + " rows)");
        } catch (PipelineException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new PipelineException(f + ": corrupt parquet data (" + e.getMessage() + "); fetch the shard again", e);
        }
    }

    private static byte[] imageBytes(Group g) {
        if (g.getFieldRepetitionCount("image") == 0) return new byte[0];
        Type t = g.getType().getType("image");
        if (t.isPrimitive()) return g.getBinary("image", 0).getBytes();
        Group img = g.getGroup("image", 0);
        if (!img.getType().containsField("bytes") || img.getFieldRepetitionCount("bytes") == 0) return new byte[0];
        return img.getBinary("bytes", 0).getBytes();
    }
}
