package dev.impasto.pipeline.caption;

import dev.impasto.pipeline.Progress;
import dev.impasto.pipeline.hub.Backoff;
import dev.impasto.pipeline.image.DecodedImage;
import dev.impasto.pipeline.image.ImageInspector;
import dev.impasto.pipeline.image.ImageOps;
import dev.impasto.util.ProgressBar;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Captions every item that has no answer in the journal yet, on {@code concurrency} workers sharing a key pool.
 * Each item ends with exactly one journal line of its fate in this run: "ok" with the caption (written and
 * forced to disk before the worker moves on) or "failed" with the reason. Failed items are tried again by the
 * next run.
 */
public final class Captioner {
    /** @param failures id -> reason, for items that failed in this run */
    public record Result(int total, int alreadyDone, int captioned, int failed, Map<String, String> failures) {}

    static final int INLINE_LIMIT_BYTES = 14 << 20;
    private final CaptionBackend backend;
    private final KeyPool keys;
    private final CaptionSettings settings;
    private final CaptionPrompt prompt;
    private final Backoff backoff;
    private final PrintStream log;

    public Captioner(CaptionBackend backend, KeyPool keys, CaptionSettings settings, PrintStream log) {
        this.backend = backend;
        this.keys = keys;
        this.settings = settings;
        this.prompt = new CaptionPrompt(settings.systemPrompt, settings.genrePrompts);
        this.backoff = new Backoff(Duration.ofMillis(settings.retryBaseMs), Duration.ofMillis(settings.retryCapMs), settings.maxAttempts);
        this.log = log;
    }

    public Result run(List<CaptionItem> items, CaptionJournal journal) throws IOException {
        List<CaptionItem> todo = new ArrayList<>();
        for (CaptionItem it : items) if (!journal.done(it.id())) todo.add(it);
        int already = items.size() - todo.size();
        Map<String, String> failures = java.util.Collections.synchronizedMap(new LinkedHashMap<>());
        AtomicInteger ok = new AtomicInteger();
        if (journal.tornLines() > 0) log.println("caption journal: cut off " + journal.tornLines() + " torn line(s) from an interrupted run");
        log.println("captioning " + todo.size() + " of " + items.size() + " images (" + already + " already done) with " + backend.describe());
        ExecutorService pool = Executors.newFixedThreadPool(settings.concurrency);
        try (ProgressBar bar = Progress.bar("caption", todo.size(), "img", log)) {
            for (CaptionItem it : todo)
                pool.execute(() -> {
                    try {
                        String fail = captionOne(it, journal);
                        if (fail == null) ok.incrementAndGet();
                        else failures.put(it.id(), fail);
                    } catch (IOException | RuntimeException e) {
                        failures.put(it.id(), "journal write failed: " + e.getMessage());
                    } finally {
                        bar.step(1);
                        bar.status(failures.isEmpty() ? "" : failures.size() + " failed");
                    }
                });
            pool.shutdown();
            if (!pool.awaitTermination(365, TimeUnit.DAYS)) throw new IOException("captioning did not finish");
        } catch (InterruptedException e) {
            pool.shutdownNow();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        return new Result(items.size(), already, ok.get(), failures.size(), new LinkedHashMap<>(failures));
    }

    /** @return null when captioned, else the failure reason (already journaled) */
    private String captionOne(CaptionItem item, CaptionJournal journal) throws IOException {
        byte[] jpeg;
        try {
            DecodedImage img = ImageInspector.decode(Files.readAllBytes(item.image()), 400_000_000L);
            int side = settings.maxSide;
            jpeg = ImageOps.jpeg(ImageOps.fit(img.rgb(), side), 0.9f);
            // inline images travel base64-encoded (4/3 larger) inside a request that must stay under 20 MB
            while (jpeg.length > INLINE_LIMIT_BYTES && side > 256) {
                side = side * 3 / 4;
                jpeg = ImageOps.jpeg(ImageOps.fit(img.rgb(), side), 0.9f);
            }
        } catch (ImageInspector.Rejected | IOException e) {
            String why = "cannot read the image: " + e.getMessage();
            journal.failed(item.id(), why, 0);
            return why;
        }
        int attempts = 0, malformed = 0;
        String last = "";
        while (attempts < settings.maxAttempts) {
            KeyPool.Lease lease;
            try {
                lease = keys.acquire();
            } catch (KeyPool.Exhausted e) {
                journal.failed(item.id(), e.getMessage(), attempts);
                return e.getMessage();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
            attempts++;
            Reply reply = backend.caption(item, jpeg, prompt.system(), prompt.user(item.genre()), lease.secret());
            switch (reply) {
                case Reply.Caption c -> {
                    journal.ok(item.id(), c.text(), backend.describe(), attempts);
                    return null;
                }
                case Reply.Retry r -> {
                    last = r.why();
                    if (r.after() != null) keys.pause(lease, backoff.delay(attempts - 1, r.after()));
                    else Backoff.sleep(backoff.delay(attempts - 1));
                }
                case Reply.Malformed m -> {
                    last = m.why();
                    if (++malformed > settings.maxMalformed) {
                        String why = "answer not usable after " + malformed + " tries: " + m.why();
                        journal.failed(item.id(), why, attempts);
                        return why;
                    }
                }
                case Reply.KeyExhausted k -> {
                    if (keys.retire(lease, k.why())) log.println("caption: key " + (lease.index() + 1) + " retired for this run: " + k.why());
                    if (k.itemFails()) {
                        journal.failed(item.id(), k.why(), attempts);
                        return k.why();
                    }
                    attempts--; // the item did nothing wrong: try it with another key
                    last = k.why();
                }
                case Reply.Fatal f -> {
                    journal.failed(item.id(), f.why(), attempts);
                    return f.why();
                }
            }
        }
        String why = "gave up after " + attempts + " attempts: " + last;
        journal.failed(item.id(), why, attempts);
        return why;
    }
}
