package dev.impasto.pipeline.caption;

import dev.impasto.pipeline.Secret;

/** One way to get a caption for one image. Implementations classify every outcome into a {@link Reply}. */
public interface CaptionBackend {
    String describe();

    /** Whether requests need an API key (the offline template does not). */
    default boolean needsKey() {
        return true;
    }

    /**
     * @param jpeg the image as JPEG, already scaled down
     * @param key the key to use, or null when {@link #needsKey()} is false
     */
    Reply caption(CaptionItem item, byte[] jpeg, String systemPrompt, String userPrompt, Secret key);
}
