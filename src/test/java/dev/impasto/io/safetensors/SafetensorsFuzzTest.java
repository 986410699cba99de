package dev.impasto.io.safetensors;

import dev.impasto.io.Shapes;
import dev.impasto.io.TensorEntry;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Mutation fuzzing: valid generated files with bytes flipped, truncated, extended, length prefixes replaced and
 * header JSON edited. Every mutant must either open with every tensor inside the file and the right size, or fail
 * with SafetensorsFormatException: never another exception, never a crash. Deterministic (fixed seeds).
 */
class SafetensorsFuzzTest {
    private static final String[] TYPES = {"F32", "BF16", "F16", "U8", "I64", "F8_E4M3", "BOOL", "F64", "I16", "F4"};
    private static final Pattern NUMBER = Pattern.compile("-?\\d+");

    /** A valid file with a few small tensors, laid out like the official writer. */
    static byte[] validFile(SplittableRandom r) {
        int n = r.nextInt(0, 6);
        StringBuilder h = new StringBuilder("{");
        if (r.nextBoolean()) h.append("\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\"}");
        long off = 0;
        for (int i = 0; i < n; i++) {
            String type = TYPES[r.nextInt(TYPES.length)];
            int rank = type.equals("F4") ? r.nextInt(1, 4) : r.nextInt(0, 4);
            long[] shape = new long[rank];
            for (int d = 0; d < rank; d++) shape[d] = r.nextInt(0, 5) * (type.equals("F4") ? 2 : 1);
            long bytes = SafetensorsDType.byName(type).byteSize(Shapes.numel(shape));
            if (h.length() > 1) h.append(',');
            h.append("\"t").append(i).append("\":{\"dtype\":\"").append(type).append("\",\"shape\":")
                    .append(Arrays.toString(shape).replace(" ", "")).append(",\"data_offsets\":[").append(off).append(',')
                    .append(off + bytes).append("]}");
            off += bytes;
        }
        h.append('}');
        while (h.length() % 8 != 0) h.append(' ');
        byte[] hb = h.toString().getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate((int) (8 + hb.length + off)).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(hb.length).put(hb);
        while (b.hasRemaining()) b.put((byte) r.nextInt(256));
        return b.array();
    }

    static byte[] mutate(byte[] f, SplittableRandom r, StringBuilder how) {
        byte[] m = f.clone();
        long n = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        int kind = r.nextInt(7);
        switch (kind) {
            case 0 -> { // flip bits anywhere in the header (length prefix included)
                int k = r.nextInt(1, 4);
                for (int i = 0; i < k; i++) {
                    int at = r.nextInt((int) Math.min(m.length, 8 + n));
                    m[at] ^= (byte) (1 << r.nextInt(8));
                    how.append("flip@").append(at).append(' ');
                }
            }
            case 1 -> { // truncate
                int len = r.nextInt(m.length + 1);
                how.append("truncate to ").append(len);
                m = Arrays.copyOf(m, len);
            }
            case 2 -> { // extend
                int extra = r.nextInt(1, 64);
                how.append("extend by ").append(extra);
                m = Arrays.copyOf(m, m.length + extra);
            }
            case 3 -> { // random length prefix
                long v = switch (r.nextInt(3)) {
                    case 0 -> r.nextLong();
                    case 1 -> n + r.nextInt(-16, 17);
                    default -> r.nextInt(0, m.length + 16);
                };
                how.append("length ").append(v);
                ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putLong(0, v);
            }
            case 4, 5 -> { // change one number of the JSON (shape dims, offsets)
                String h = new String(f, 8, (int) n, StandardCharsets.UTF_8);
                Matcher mt = NUMBER.matcher(h);
                int count = 0;
                while (mt.find()) count++;
                if (count == 0) return mutate(f, r, how);
                int pick = r.nextInt(count);
                mt.reset();
                for (int i = 0; i <= pick; i++) mt.find();
                String[] repl = {"-1", "0", "1", "7", "9223372036854775807", "18446744073709551615", "99999999999", "1e3", "2.5",
                        String.valueOf(Long.parseLong(mt.group()) + r.nextInt(-9, 10))};
                String rep = repl[r.nextInt(repl.length)];
                how.append("number #").append(pick).append(' ').append(mt.group()).append("->").append(rep);
                String nh = h.substring(0, mt.start()) + rep + h.substring(mt.end());
                m = withHeader(f, n, nh, r.nextBoolean());
            }
            default -> { // structural JSON edits
                String h = new String(f, 8, (int) n, StandardCharsets.UTF_8);
                String nh = switch (r.nextInt(5)) {
                    case 0 -> h.replaceFirst("\"(F32|BF16|F16|U8|I64|F64)\"", "\"F8_E5M2\"");
                    case 1 -> h.replaceFirst("\"dtype\":\"[A-Z0-9_]+\"", "\"dtype\":\"XX\"");
                    case 2 -> h.replaceFirst("\"t0\"", "\"t1\"");
                    case 3 -> h.replaceFirst("\\[", "[[");
                    default -> {
                        int at = r.nextInt(h.length());
                        yield h.substring(0, at) + h.substring(Math.min(h.length(), at + r.nextInt(1, 4)));
                    }
                };
                how.append("json edit");
                m = withHeader(f, n, nh, r.nextBoolean());
            }
        }
        return m;
    }

    /** Replaces the header text, keeping (or not) the length field in sync. */
    static byte[] withHeader(byte[] f, long n, String header, boolean fixLength) {
        byte[] hb = header.getBytes(StandardCharsets.UTF_8);
        byte[] data = Arrays.copyOfRange(f, (int) (8 + n), f.length);
        ByteBuffer b = ByteBuffer.allocate(8 + hb.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(fixLength ? hb.length : n).put(hb).put(data);
        return b.array();
    }

    @Test
    void mutantsOpenWithinBoundsOrFailWithAFormatError() {
        SplittableRandom seeds = new SplittableRandom(20240601);
        int opened = 0, rejected = 0;
        for (int i = 0; i < 4000; i++) {
            long seed = seeds.nextLong();
            SplittableRandom r = new SplittableRandom(seed);
            byte[] valid = validFile(r);
            StringBuilder how = new StringBuilder();
            byte[] m = mutate(valid, r, how);
            try (SafetensorsFile f = SafetensorsFile.of(MemorySegment.ofArray(m), "fuzz")) {
                long total = 0;
                for (TensorEntry t : f.tensors()) {
                    SafetensorsDType type = SafetensorsDType.byName(t.typeName());
                    assertEquals(type.byteSize(t.numel()), t.byteSize(), "seed " + seed + " " + how);
                    byte[] bytes = t.data().toArray(ValueLayout.JAVA_BYTE);
                    assertEquals(t.byteSize(), bytes.length);
                    if (t.isSupported()) assertEquals(t.numel(), t.toFloatArray().length);
                    total += t.byteSize();
                }
                assertEquals(m.length - f.dataStart(), total, "tensors tile the data area; seed " + seed + " " + how);
                opened++;
            } catch (SafetensorsFormatException e) {
                assertNotNull(e.getMessage());
                assertTrue(e.getMessage().startsWith("fuzz"), e.getMessage());
                rejected++;
            } catch (Throwable t) {
                fail("seed " + seed + " (" + how + ") threw " + t, t);
            }
        }
        assertTrue(opened > 300 && rejected > 1500, "opened " + opened + ", rejected " + rejected);
    }
}
