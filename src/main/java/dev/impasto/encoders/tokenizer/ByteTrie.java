package dev.impasto.encoders.tokenizer;

import java.util.Arrays;

/**
 * A trie over UTF-8 byte strings, mapping each inserted key to an int value. Children live in one open-addressing
 * table keyed by (node, byte), which keeps a 32k-piece vocabulary in a few flat arrays and makes the per-byte step of
 * a prefix walk a single probe.
 */
final class ByteTrie {
    private long[] keys;      // (node << 8 | byte) + 1; 0 = empty slot
    private int[] children;
    private int mask;
    private int used;
    private int[] values = new int[256]; // per node; -1 = not a key
    private int nodeCount = 1;

    ByteTrie(int expectedKeys) {
        int cap = Integer.highestOneBit(Math.max(16, expectedKeys * 8)) << 1;
        keys = new long[cap];
        children = new int[cap];
        mask = cap - 1;
        Arrays.fill(values, -1);
    }

    /** Inserts or overwrites the value of {@code key}. */
    void put(byte[] key, int value) {
        int node = 0;
        for (byte b : key) {
            int child = child(node, b & 0xFF);
            if (child < 0) {
                child = newNode();
                addChild(node, b & 0xFF, child);
            }
            node = child;
        }
        values[node] = value;
    }

    /** The value stored for the key, or -1. */
    int get(byte[] key) {
        int node = 0;
        for (byte b : key) {
            node = child(node, b & 0xFF);
            if (node < 0) return -1;
        }
        return values[node];
    }

    /** The child of {@code node} along {@code b}, or -1. */
    int child(int node, int b) {
        long k = ((long) node << 8 | b) + 1;
        int slot = mix(k) & mask;
        while (true) {
            long s = keys[slot];
            if (s == k) return children[slot];
            if (s == 0) return -1;
            slot = (slot + 1) & mask;
        }
    }

    /** The value at a node reached by {@link #child}, or -1 when that node ends no key. */
    int value(int node) {
        return values[node];
    }

    static int root() {
        return 0;
    }

    private int newNode() {
        if (nodeCount == values.length) {
            int old = values.length;
            values = Arrays.copyOf(values, old * 2);
            Arrays.fill(values, old, values.length, -1);
        }
        return nodeCount++;
    }

    private void addChild(int node, int b, int child) {
        if ((used + 1) * 2 > keys.length) grow();
        insert(((long) node << 8 | b) + 1, child);
        used++;
    }

    private void insert(long k, int child) {
        int slot = mix(k) & mask;
        while (keys[slot] != 0) slot = (slot + 1) & mask;
        keys[slot] = k;
        children[slot] = child;
    }

    private void grow() {
        long[] oldKeys = keys;
        int[] oldChildren = children;
        keys = new long[oldKeys.length * 2];
        children = new int[oldKeys.length * 2];
        mask = keys.length - 1;
        for (int i = 0; i < oldKeys.length; i++) if (oldKeys[i] != 0) insert(oldKeys[i], oldChildren[i]);
    }

    private static int mix(long k) {
        k *= 0x9E3779B97F4A7C15L;
        return (int) (k ^ (k >>> 32));
    }
}
