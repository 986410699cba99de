package dev.impasto.pipeline.caption;

import java.nio.file.Path;

/**
 * One image to caption.
 * @param id its file_name in the dataset (the journal key)
 * @param genre the genre label, or null
 */
public record CaptionItem(String id, Path image, String genre) {}
