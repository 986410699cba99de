package dev.impasto.pipeline.cli;

import dev.impasto.pipeline.Secret;
import dev.impasto.pipeline.hub.Backoff;
import dev.impasto.pipeline.hub.HubHttp;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/** How to reach the Hugging Face Hub: the options curate (downloads) and publish (uploads) share. */
final class HubOptions {
    /** Where huggingface_hub looks for a token, in its order. */
    static final List<String> TOKEN_ENV = List.of("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN");

    @Option(names = "--hub-url", paramLabel = "URL", defaultValue = "https://huggingface.co", description = "Hub base URL (default: ${DEFAULT-VALUE}).")
    String url;

    @Option(names = "--token-file", paramLabel = "FILE",
            description = "File holding the Hub token (else HF_TOKEN or HUGGING_FACE_HUB_TOKEN); uploads need one, and so do gated or private datasets.")
    Path tokenFile;

    @Option(names = "--retry-base-ms", paramLabel = "MS", defaultValue = "1000",
            description = "First retry delay of Hub requests; doubles each time, with jitter (default: ${DEFAULT-VALUE}).")
    long retryBaseMs;

    /** The token from --token-file or {@code env}; when not {@code required} and neither gives one, null. */
    Secret token(Map<String, String> env, boolean required) {
        if (!required && tokenFile == null && TOKEN_ENV.stream().allMatch(v -> env.get(v) == null)) return null;
        return Secret.resolve(tokenFile, TOKEN_ENV, env, "Hub token");
    }

    /** A client retrying each request up to {@code attempts} times, from --retry-base-ms up to a minute apart. */
    HubHttp http(Secret token, int attempts, Duration requestTimeout) {
        return new HubHttp(url, token, new Backoff(Duration.ofMillis(retryBaseMs), Duration.ofSeconds(60), attempts), requestTimeout);
    }
}
