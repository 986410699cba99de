package dev.impasto.io;

import dev.impasto.quant.GgmlType;
import dev.impasto.io.gguf.GgufValue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Writes GGUF files for tests (the layout of gguf-py's GGUFWriter: header, KVs, tensor infos, aligned data). */
public final class GgufTestWriter {
    private int version = 3;
    private int alignment = 32;
    private final ByteArrayOutputStream kvs = new ByteArrayOutputStream();
    private int kvCount;
    private record Tensor(String name, GgmlType type, long[] shape, byte[] data) {}
    private final List<Tensor> tensors = new ArrayList<>();

    public GgufTestWriter version(int v) {
        version = v;
        return this;
    }

    /** Sets a non-default alignment and records it as general.alignment (UINT32). */
    public GgufTestWriter alignment(int a) {
        alignment = a;
        return kv("general.alignment", GgufValue.Type.UINT32, (long) a);
    }

    public GgufTestWriter kv(String key, GgufValue.Type type, Object value) {
        str(kvs, key);
        i32(kvs, type.ordinal());
        value(kvs, type, value);
        kvCount++;
        return this;
    }

    /** An array KV; elements of nested arrays are given as GgufValue. */
    public GgufTestWriter kvArray(String key, GgufValue.Type elementType, List<?> values) {
        str(kvs, key);
        i32(kvs, GgufValue.Type.ARRAY.ordinal());
        array(kvs, elementType, values);
        kvCount++;
        return this;
    }

    /** A tensor in PyTorch shape order; data must be the exact byte size. */
    public GgufTestWriter tensor(String name, GgmlType type, long[] shape, byte[] data) {
        tensors.add(new Tensor(name, type, shape, data));
        return this;
    }

    private static void value(ByteArrayOutputStream o, GgufValue.Type type, Object v) {
        switch (type) {
            case UINT8, INT8 -> o.write((int) (long) (Long) v);
            case BOOL -> o.write((Boolean) v ? 1 : 0);
            case UINT16, INT16 -> {
                long x = (Long) v;
                o.write((int) x);
                o.write((int) (x >> 8));
            }
            case UINT32, INT32 -> i32(o, (int) (long) (Long) v);
            case UINT64, INT64 -> i64(o, (Long) v);
            case FLOAT32 -> i32(o, Float.floatToIntBits((Float) v));
            case FLOAT64 -> i64(o, Double.doubleToLongBits((Double) v));
            case STRING -> str(o, (String) v);
            case ARRAY -> {
                GgufValue g = (GgufValue) v;
                array(o, g.elementType(), g.asList());
            }
        }
    }

    private static void array(ByteArrayOutputStream o, GgufValue.Type elementType, List<?> values) {
        i32(o, elementType.ordinal());
        i64(o, values.size());
        for (Object e : values) value(o, elementType, e);
    }

    static void i32(ByteArrayOutputStream o, int v) {
        o.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array());
    }

    static void i64(ByteArrayOutputStream o, long v) {
        o.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
    }

    static void str(ByteArrayOutputStream o, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        i64(o, b.length);
        o.writeBytes(b);
    }

    public byte[] toBytes() {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.writeBytes("GGUF".getBytes(StandardCharsets.US_ASCII));
        i32(o, version);
        i64(o, tensors.size());
        i64(o, kvCount);
        o.writeBytes(kvs.toByteArray());
        long offset = 0;
        List<Long> offsets = new ArrayList<>();
        for (Tensor t : tensors) {
            str(o, t.name);
            i32(o, t.shape.length);
            for (int d = t.shape.length - 1; d >= 0; d--) i64(o, t.shape[d]);
            i32(o, t.type.id());
            i64(o, offset);
            offsets.add(offset);
            offset = align(offset + t.data.length);
        }
        while (o.size() % alignment != 0) o.write(0);
        long base = o.size();
        for (int i = 0; i < tensors.size(); i++) {
            while (o.size() < base + offsets.get(i)) o.write(0);
            o.writeBytes(tensors.get(i).data);
        }
        while (o.size() % alignment != 0) o.write(0);
        return o.toByteArray();
    }

    private long align(long x) {
        return (x + alignment - 1) / alignment * alignment;
    }

    public Path write(Path p) throws IOException {
        Files.write(p, toBytes());
        return p;
    }

    /** Little-endian F32 bytes. */
    public static byte[] f32(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) b.putFloat(f);
        return b.array();
    }

    /** Q8_0 blocks (f16 scale, 32 int8) of values whose length is a multiple of 32. */
    public static byte[] q8_0(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length / 32 * 34).order(ByteOrder.LITTLE_ENDIAN);
        for (int blk = 0; blk < v.length / 32; blk++) {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(v[blk * 32 + i]));
            float d = amax / 127;
            b.putShort(Float.floatToFloat16(d));
            for (int i = 0; i < 32; i++) b.put((byte) (d == 0 ? 0 : Math.round(v[blk * 32 + i] / d)));
        }
        return b.array();
    }
}
