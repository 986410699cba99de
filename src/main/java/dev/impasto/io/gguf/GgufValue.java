package dev.impasto.io.gguf;

import java.util.List;
import java.util.StringJoiner;

/**
 * A GGUF metadata value.
 *
 * @param type        the stored type
 * @param elementType for arrays, the element type (else null)
 * @param value       Long for every integer type (UINT64 as raw bits: read with Long.toUnsignedString), Float,
 *                    Double, Boolean, String, or for arrays an unmodifiable List of those (nested arrays as GgufValue)
 */
public record GgufValue(Type type, Type elementType, Object value) {

    /** GGUF value types, numbered as in the file. */
    public enum Type {
        UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64;

        public static Type byId(int id) {
            return id >= 0 && id < values().length ? values()[id] : null;
        }

        public boolean isInteger() {
            return switch (this) {
                case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
                default -> false;
            };
        }
    }

    public boolean isArray() {
        return type == Type.ARRAY;
    }

    @SuppressWarnings("unchecked")
    public List<Object> asList() {
        if (type != Type.ARRAY) throw new IllegalStateException("not an array but " + type);
        return (List<Object>) value;
    }

    public long asLong() {
        if (!type.isInteger()) throw new IllegalStateException("not an integer but " + type);
        return (Long) value;
    }

    public String asString() {
        if (type != Type.STRING) throw new IllegalStateException("not a string but " + type);
        return (String) value;
    }

    /** Human-readable, arrays longer than {@code maxElements} abbreviated. */
    public String display(int maxElements) {
        if (type == Type.ARRAY) {
            List<Object> l = asList();
            StringJoiner j = new StringJoiner(", ", "[", l.size() > maxElements ? ", ... (" + l.size() + " " + elementType + ")]" : "]");
            for (int i = 0; i < Math.min(l.size(), maxElements); i++) j.add(displayScalar(l.get(i), elementType));
            return j.toString();
        }
        return displayScalar(value, type);
    }

    private static String displayScalar(Object v, Type t) {
        if (v instanceof GgufValue g) return g.display(4);
        if (t == Type.UINT64) return Long.toUnsignedString((Long) v);
        if (t == Type.STRING) {
            String s = (String) v;
            return s.length() > 200 ? s.substring(0, 200) + "..." : s;
        }
        return String.valueOf(v);
    }

    @Override
    public String toString() {
        return display(8);
    }
}
