package dev.impasto.encoders.tokenizer;

import java.util.Arrays;

/** Growable int array; token ids are collected in one of these instead of boxing them into a List. */
final class IntList {
    private int[] data;
    private int size;

    IntList(int capacity) {
        data = new int[Math.max(4, capacity)];
    }

    void add(int v) {
        if (size == data.length) data = Arrays.copyOf(data, size * 2);
        data[size++] = v;
    }

    void addAll(int[] values) {
        for (int v : values) add(v);
    }

    int get(int i) {
        return data[i];
    }

    int size() {
        return size;
    }

    int[] toArray() {
        return Arrays.copyOf(data, size);
    }
}
