package dev.impasto.train.dist;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.Tensor;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Ranks as threads of one JVM, reducing through host memory: for CPU data parallelism and for testing the
 * data-parallel trainer without GPUs. The sum runs in rank order, so every rank gets bit-identical results.
 * One {@link Group} is shared by the ranks; each rank holds its own HostCollective view of it.
 */
public final class HostCollective implements Collective {
    /** The shared state of the ranks. */
    public static final class Group {
        final int world;
        final CyclicBarrier barrier;
        final double[][][] slots;  // [rank][tensor] -> values
        final long timeoutSeconds;

        public Group(int world, long timeoutSeconds) {
            this.world = world;
            this.barrier = new CyclicBarrier(world);
            this.slots = new double[world][][];
            this.timeoutSeconds = timeoutSeconds;
        }

        /** Breaks the barrier so every waiting rank fails (a rank died). */
        public void abort() {
            barrier.reset();
        }
    }

    private final Group group;
    private final int rank;
    private final Backend be;

    public HostCollective(Group group, int rank, Backend be) {
        this.group = group;
        this.rank = rank;
        this.be = be;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int world() {
        return group.world;
    }

    @Override
    public void allReduceMean(List<Tensor> tensors) {
        double[][] mine = new double[tensors.size()][];
        for (int i = 0; i < mine.length; i++) mine[i] = be.toDoubles(tensors.get(i));
        group.slots[rank] = mine;
        await();
        for (int i = 0; i < mine.length; i++) {
            double[] sum = new double[mine[i].length];
            for (int r = 0; r < group.world; r++) {
                double[] v = group.slots[r][i];
                if (v.length != sum.length) throw new IllegalStateException("rank " + r + " reduces a tensor of " + v.length + " values, rank " + rank + " of " + sum.length);
                for (int k = 0; k < sum.length; k++) sum[k] += v[k];
            }
            for (int k = 0; k < sum.length; k++) sum[k] /= group.world;
            Tensor t = tensors.get(i);
            try (Tensor src = be.fromDoubles(sum, t.dtype(), t.rows(), t.cols())) {
                be.copy(t, src);
            }
        }
        await(); // nobody overwrites its slot before all have read
    }

    @Override
    public void barrier() {
        await();
    }

    private void await() {
        try {
            group.barrier.await(group.timeoutSeconds, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            group.abort();
            throw new IllegalStateException("rank " + rank + ": another rank did not reach the collective within " + group.timeoutSeconds + " s", e);
        } catch (BrokenBarrierException e) {
            throw new IllegalStateException("rank " + rank + ": another rank failed; stopping", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("rank " + rank + " interrupted", e);
        }
    }
}
