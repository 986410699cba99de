package dev.impasto.train.dist;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Runs one task per rank on its own platform thread (one thread per GPU: CUDA contexts and libtorch streams are
 * per thread), waits for all, and turns the failure of any rank into the failure of the whole run: the group is
 * aborted so that ranks blocked in a collective fail at once instead of hanging, and the first real error is rethrown.
 */
public final class DataParallel {
    private DataParallel() {}

    @FunctionalInterface
    public interface RankTask<T> {
        T run(int rank) throws Exception;
    }

    public static <T> List<T> run(int world, Runnable abortGroup, RankTask<T> task) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(world, r -> {
            Thread t = new Thread(r);
            t.setName("impasto-rank-" + t.threadId());
            return t;
        });
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                int rank = r;
                fs.add(pool.submit(() -> {
                    try {
                        return task.run(rank);
                    } catch (Throwable e) {
                        abortGroup.run();
                        throw e;
                    }
                }));
            }
            List<T> out = new ArrayList<>();
            Exception first = null;
            for (int r = 0; r < world; r++) {
                try {
                    out.add(fs.get(r).get());
                } catch (ExecutionException e) {
                    Exception cause = e.getCause() instanceof Exception x ? x : new RuntimeException(e.getCause());
                    // a rank that failed because another rank failed is not the story: keep the root cause
                    if (first == null || isSecondary(first) && !isSecondary(cause)) first = new IllegalStateException("rank " + r + " failed: " + cause.getMessage(), cause);
                }
            }
            if (first != null) throw first;
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    private static boolean isSecondary(Exception e) {
        String m = String.valueOf(e.getMessage());
        return m.contains("another rank failed") || m.contains("did not reach the collective");
    }
}
