package dev.impasto.encoders.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * Protocol-buffers wire format, read field by field with every length checked against the buffer, so that a
 * truncated or foreign file fails with a message instead of reading out of bounds.
 */
final class ProtoReader {
    static final int VARINT = 0, FIXED64 = 1, LENGTH_DELIMITED = 2, FIXED32 = 5;

    private final byte[] buf;
    private int pos;
    private final int end;

    ProtoReader(byte[] buf) {
        this(buf, 0, buf.length);
    }

    ProtoReader(byte[] buf, int from, int to) {
        this.buf = buf;
        this.pos = from;
        this.end = to;
    }

    boolean hasMore() {
        return pos < end;
    }

    int position() {
        return pos;
    }

    /** Next tag (field number << 3 | wire type). */
    int readTag() throws MalformedProtoException {
        long tag = readVarint();
        if (tag <= 0 || tag > Integer.MAX_VALUE) throw new MalformedProtoException("bad field tag " + tag + " at byte " + pos);
        return (int) tag;
    }

    long readVarint() throws MalformedProtoException {
        long result = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= end) throw new MalformedProtoException("varint runs past the end of the data");
            byte b = buf[pos++];
            result |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new MalformedProtoException("varint longer than 10 bytes at byte " + pos);
    }

    int readFixed32() throws MalformedProtoException {
        if (end - pos < 4) throw new MalformedProtoException("fixed32 runs past the end of the data");
        int v = (buf[pos] & 0xFF) | (buf[pos + 1] & 0xFF) << 8 | (buf[pos + 2] & 0xFF) << 16 | (buf[pos + 3] & 0xFF) << 24;
        pos += 4;
        return v;
    }

    float readFloat() throws MalformedProtoException {
        return Float.intBitsToFloat(readFixed32());
    }

    /** Start and end offsets of a length-delimited field's payload; the reader moves past it. */
    int[] readLengthDelimited() throws MalformedProtoException {
        long len = readVarint();
        if (len < 0 || len > end - pos) throw new MalformedProtoException("field of " + len + " bytes runs past the end of the data");
        int start = pos;
        pos += (int) len;
        return new int[] {start, pos};
    }

    byte[] readBytes() throws MalformedProtoException {
        int[] r = readLengthDelimited();
        byte[] out = new byte[r[1] - r[0]];
        System.arraycopy(buf, r[0], out, 0, out.length);
        return out;
    }

    String readString() throws MalformedProtoException {
        int[] r = readLengthDelimited();
        return new String(buf, r[0], r[1] - r[0], StandardCharsets.UTF_8);
    }

    ProtoReader readMessage() throws MalformedProtoException {
        int[] r = readLengthDelimited();
        return new ProtoReader(buf, r[0], r[1]);
    }

    void skip(int wireType) throws MalformedProtoException {
        switch (wireType) {
            case VARINT -> readVarint();
            case FIXED64 -> {
                if (end - pos < 8) throw new MalformedProtoException("fixed64 runs past the end of the data");
                pos += 8;
            }
            case LENGTH_DELIMITED -> readLengthDelimited();
            case FIXED32 -> readFixed32();
            default -> throw new MalformedProtoException("unsupported wire type " + wireType + " at byte " + pos);
        }
    }

    static final class MalformedProtoException extends Exception {
        MalformedProtoException(String message) {
            super(message);
        }
    }
}
