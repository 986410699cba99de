package dev.impasto.cuda;

import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Where GPU work may run. The CUDA driver keeps the current context per OS thread, and libtorch keeps its current
 * stream and grad mode per OS thread; a virtual thread can move to another carrier between two native calls, so the
 * context made current, or the stream libtorch was given, would silently belong to another thread. Impasto's CUDA
 * backend therefore refuses virtual threads ({@link #requirePlatformThread}), and the embedding API
 * ({@code FluxGenerator}) hands calls from virtual threads to one shared platform thread ({@link #call}).
 */
public final class DeviceThread {
    private DeviceThread() {}

    private static volatile ExecutorService thread;

    private static ExecutorService thread() {
        ExecutorService t = thread;
        if (t == null) {
            synchronized (DeviceThread.class) {
                t = thread;
                if (t == null) {
                    t = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().name("impasto-device").daemon(true).unstarted(r));
                    thread = t;
                }
            }
        }
        return t;
    }

    /** Throws when called on a virtual thread, naming the fix. */
    public static void requirePlatformThread() {
        if (Thread.currentThread().isVirtual())
            throw new IllegalStateException("impasto's CUDA backend was called from a virtual thread (" + Thread.currentThread()
                    + "): CUDA contexts and libtorch's stream are per OS thread and a virtual thread can change carriers between calls. "
                    + "Call it from a platform thread (e.g. an Executors.newSingleThreadExecutor()), or go through dev.impasto.api.FluxGenerator, "
                    + "which does that for you.");
    }

    /**
     * Runs op here on a platform thread, or, from a virtual thread, on impasto's device thread (one platform thread
     * shared by all callers) and waits. Exceptions come out as op threw them.
     */
    public static <T> T call(Callable<T> op) {
        if (!Thread.currentThread().isVirtual()) {
            try {
                return op.call();
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        CompletableFuture<T> f = new CompletableFuture<>();
        thread().execute(() -> {
            try {
                f.complete(op.call());
            } catch (Throwable e) {
                f.completeExceptionally(e);
            }
        });
        // join, not get: an interrupted caller still waits for its op to finish (it holds the caller's locks, e.g.
        // FluxGenerator's monitor; returning early would let a close() run beside a generate()); the flag stays set
        try {
            return f.join();
        } catch (java.util.concurrent.CompletionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) throw r;
            if (c instanceof Error err) throw err;
            throw new IllegalStateException(c);
        }
    }
}
