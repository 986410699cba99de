package dev.impasto.encoders.tokenizer;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;

/** Paths of the committed tokenizer test data (see the README beside it). */
final class TestFiles {
    private TestFiles() {}

    static Path resource(String name) {
        URL url = TestFiles.class.getResource("/dev/impasto/encoders/tokenizer/" + name);
        if (url == null) throw new IllegalStateException("test resource " + name + " is missing");
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path resourceOrNull(String name) {
        URL url = TestFiles.class.getResource("/dev/impasto/encoders/tokenizer/" + name);
        if (url == null) return null;
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path clipBpe() {
        return resource("bpe_simple_vocab_16e6.txt.gz");
    }

    static Path spTestModel() {
        return resource("sentencepiece_test_model.model");
    }

    static Path t5likeNmt() {
        return resource("t5like_nmt.model");
    }

    static Path t5likeNmtByteFallback() {
        return resource("t5like_nmt_bytefallback.model");
    }

    private static ClipTokenizer clip;

    /** Loading the 49k-merge vocabulary takes a few hundred ms; the tests share one instance. */
    static synchronized ClipTokenizer clip() {
        if (clip == null) {
            try {
                clip = ClipTokenizer.fromOpenAiBpe(clipBpe());
            } catch (TokenizerFileException e) {
                throw new IllegalStateException(e);
            }
        }
        return clip;
    }
}
