package dev.impasto.encoders.cache;

import java.nio.file.Path;

/** One training picture: its file, the name it has in the dataset (relative path) and its caption. */
public record DataItem(String name, Path file, String caption) {}
