package dev.impasto.pipeline.parquet;

import com.github.luben.zstd.Zstd;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;
import org.apache.parquet.bytes.BytesInput;
import org.apache.parquet.compression.CompressionCodecFactory;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.xerial.snappy.Snappy;

/**
 * Parquet page codecs without Hadoop: parquet-java's default factory goes through Hadoop's
 * CompressionCodec classes (and Hadoop's Configuration, which drags in half of Hadoop). The codecs
 * that pyarrow and the Hugging Face datasets library write (snappy by default, zstd, gzip) are
 * handled here with the libraries parquet-hadoop already depends on.
 */
public final class LocalCodecs implements CompressionCodecFactory {
    public static final LocalCodecs INSTANCE = new LocalCodecs();

    @Override
    public BytesInputCompressor getCompressor(CompressionCodecName codec) {
        check(codec);
        return new BytesInputCompressor() {
            @Override
            public BytesInput compress(BytesInput input) throws IOException {
                byte[] raw = bytes(input);
                return BytesInput.from(switch (codec) {
                    case UNCOMPRESSED -> raw;
                    case SNAPPY -> Snappy.compress(raw);
                    case ZSTD -> Zstd.compress(raw, 3);
                    case GZIP -> gzip(raw);
                    default -> throw new IllegalStateException(codec.name());
                });
            }

            @Override
            public CompressionCodecName getCodecName() {
                return codec;
            }

            @Override
            public void release() {}
        };
    }

    @Override
    public BytesInputDecompressor getDecompressor(CompressionCodecName codec) {
        check(codec);
        return new BytesInputDecompressor() {
            @Override
            public BytesInput decompress(BytesInput input, int uncompressedSize) throws IOException {
                return BytesInput.from(inflate(codec, bytes(input), uncompressedSize));
            }

            @Override
            public void decompress(ByteBuffer input, int compressedSize, ByteBuffer output, int uncompressedSize)
                    throws IOException {
                byte[] in = new byte[compressedSize];
                input.get(in);
                output.put(inflate(codec, in, uncompressedSize));
            }

            @Override
            public void release() {}
        };
    }

    @Override
    public void release() {}

    private static byte[] bytes(BytesInput input) throws IOException {
        return input.toInputStream().readAllBytes();
    }

    private static void check(CompressionCodecName codec) {
        switch (codec) {
            case UNCOMPRESSED, SNAPPY, ZSTD, GZIP -> {}
            default -> throw new UnsupportedOperationException("parquet codec " + codec
                    + " is not supported (snappy, zstd, gzip and uncompressed are); rewrite the file with one of those");
        }
    }

    static byte[] inflate(CompressionCodecName codec, byte[] in, int size) throws IOException {
        if (size < 0) throw new IOException("corrupt parquet page: negative uncompressed size " + size);
        byte[] out;
        switch (codec) {
            case UNCOMPRESSED -> out = in;
            case SNAPPY -> {
                if (!Snappy.isValidCompressedBuffer(in)) throw new IOException("corrupt snappy page");
                if (Snappy.uncompressedLength(in) != size)
                    throw new IOException("corrupt snappy page: length " + Snappy.uncompressedLength(in) + " != " + size);
                out = new byte[size];
                Snappy.uncompress(in, 0, in.length, out, 0);
            }
            case ZSTD -> out = Zstd.decompress(in, size);
            case GZIP -> {
                try (GZIPInputStream z = new GZIPInputStream(new ByteArrayInputStream(in))) {
                    out = z.readNBytes(size);
                }
            }
            default -> throw new IllegalStateException(codec.name());
        }
        if (out.length != size) throw new IOException("corrupt " + codec + " page: " + out.length + " bytes, header says " + size);
        return out;
    }

    private static byte[] gzip(byte[] raw) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream(raw.length / 2 + 64);
        try (GZIPOutputStream z = new GZIPOutputStream(bos)) {
            z.write(raw);
        }
        return bos.toByteArray();
    }
}
