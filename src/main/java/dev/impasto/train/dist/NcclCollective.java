package dev.impasto.train.dist;

import static dev.impasto.bindings.nccl.nccl_h.*;

import dev.impasto.cuda.CudaException;
import dev.impasto.cuda.NativeLibraries;
import dev.impasto.tensor.Tensor;
import dev.impasto.tensor.cuda.CudaBackend;
import dev.impasto.tensor.cuda.CudaTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Data parallelism across the GPUs of one host through NCCL, one rank per GPU, each rank a thread of this JVM: the
 * communicators come from one ncclCommInitAll; each rank averages its tensors with ncclAllReduce(ncclAvg) on its own
 * stream, all of a step's tensors in one NCCL group (one launch). NVLink multicast (NVLS) is switched off before NCCL
 * starts: on shared hosts it can take the GPUs out of service.
 *
 * <p>No hang: when a rank fails, {@link Group#abort()} aborts every communicator (so peers blocked in a collective or
 * a stream synchronisation return an error) and breaks the host barrier; a watchdog does the same when one collective
 * has not finished within the timeout.
 */
public final class NcclCollective implements Collective {
    /** The communicators of all ranks. */
    public static final class Group implements AutoCloseable {
        final MemorySegment[] comms;
        final CyclicBarrier barrier;
        final AtomicBoolean aborted = new AtomicBoolean();
        final AtomicLong[] inFlightSince;
        final long timeoutNanos;
        final Thread watchdog;

        public Group(int[] devices, long timeoutSeconds) {
            NativeLibraries.loadNccl();
            disableNvls();
            int n = devices.length;
            comms = new MemorySegment[n];
            try (Arena a = Arena.ofConfined()) {
                MemorySegment out = a.allocate(ValueLayout.ADDRESS, n);
                check(ncclCommInitAll(out, n, a.allocateFrom(ValueLayout.JAVA_INT, devices)), "ncclCommInitAll(" + n + " GPUs)");
                for (int i = 0; i < n; i++) comms[i] = out.getAtIndex(ValueLayout.ADDRESS, i);
            }
            barrier = new CyclicBarrier(n);
            timeoutNanos = TimeUnit.SECONDS.toNanos(timeoutSeconds);
            inFlightSince = new AtomicLong[n];
            for (int i = 0; i < n; i++) inFlightSince[i] = new AtomicLong();
            watchdog = Thread.ofPlatform().daemon().name("impasto-nccl-watchdog").start(() -> {
                while (!aborted.get()) {
                    try {
                        Thread.sleep(1000);
                    } catch (InterruptedException e) {
                        return;
                    }
                    for (AtomicLong t : inFlightSince) {
                        long s = t.get();
                        if (s != 0 && System.nanoTime() - s > timeoutNanos) {
                            System.err.println("[impasto] a collective has not completed in " + timeoutSeconds + " s: aborting all ranks");
                            abort();
                            return;
                        }
                    }
                }
            });
        }

        public int world() {
            return comms.length;
        }

        /** Fails every rank: aborts the communicators and breaks the barrier. Idempotent. */
        public void abort() {
            if (!aborted.compareAndSet(false, true)) return;
            barrier.reset();
            for (MemorySegment c : comms) ncclCommAbort(c);
        }

        @Override
        public void close() {
            watchdog.interrupt();
            if (!aborted.get()) for (MemorySegment c : comms) ncclCommDestroy(c);
        }
    }

    /**
     * nccl.h declares these as f() (no prototype), which jextract binds as variadic invokers, called with no arguments;
     * built on first use, after libnccl is loaded.
     */
    private static final class Groups {
        static final ncclGroupStart START = ncclGroupStart.makeInvoker();
        static final ncclGroupEnd END = ncclGroupEnd.makeInvoker();
    }

    private final Group group;
    private final int rank;
    private final CudaBackend be;

    public NcclCollective(Group group, int rank, CudaBackend be) {
        this.group = group;
        this.rank = rank;
        this.be = be;
    }

    public static int version() {
        NativeLibraries.loadNccl();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ValueLayout.JAVA_INT);
            check(ncclGetVersion(v), "ncclGetVersion");
            return v.get(ValueLayout.JAVA_INT, 0);
        }
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int world() {
        return group.world();
    }

    @Override
    public void allReduceMean(List<Tensor> tensors) {
        if (group.aborted.get()) throw new IllegalStateException("rank " + rank + ": another rank failed; stopping");
        be.context().makeCurrent();
        MemorySegment stream = be.context().stream().handle();
        check(Groups.START.apply(), "ncclGroupStart");
        try {
            for (Tensor t : tensors) {
                if (!t.isContiguous()) throw new IllegalArgumentException("all-reduce of a strided view " + t);
                int type = switch (t.dtype()) {
                    case F32 -> ncclFloat32();
                    case BF16 -> ncclBfloat16();
                    case F16 -> ncclFloat16();
                    default -> throw new IllegalArgumentException("all-reduce of " + t.dtype());
                };
                MemorySegment p = MemorySegment.ofAddress(((CudaTensor) t).address());
                check(ncclAllReduce(p, p, t.numel(), type, ncclAvg(), group.comms[rank], stream), "ncclAllReduce(" + t + ")");
            }
        } finally {
            check(Groups.END.apply(), "ncclGroupEnd");
        }
        // time the collective until the stream passes it (the trainer synchronises right after)
        group.inFlightSince[rank].set(System.nanoTime());
        try {
            be.synchronize();
        } catch (CudaException e) {
            throw new IllegalStateException(group.aborted.get() ? "rank " + rank + ": another rank failed; stopping" : "rank " + rank + ": " + e.getMessage(), e);
        } finally {
            group.inFlightSince[rank].set(0);
        }
        if (group.aborted.get()) throw new IllegalStateException("rank " + rank + ": another rank failed; stopping");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = a.allocate(ValueLayout.JAVA_INT);
            check(ncclCommGetAsyncError(group.comms[rank], err), "ncclCommGetAsyncError");
            check(err.get(ValueLayout.JAVA_INT, 0), "NCCL (asynchronous error)");
        }
    }

    @Override
    public void barrier() {
        try {
            group.barrier.await(group.timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            group.abort();
            throw new IllegalStateException("rank " + rank + ": another rank did not reach the collective in time", e);
        } catch (BrokenBarrierException e) {
            throw new IllegalStateException("rank " + rank + ": another rank failed; stopping", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("rank " + rank + " interrupted", e);
        }
    }

    static void check(int rc, String call) {
        if (rc == ncclSuccess()) return;
        String msg;
        try {
            msg = ncclGetErrorString(rc).reinterpret(512).getString(0);
        } catch (RuntimeException | LinkageError e) {
            msg = "";
        }
        throw new CudaException(call, rc, "NCCL error " + rc, msg);
    }

    /** setenv("NCCL_NVLS_ENABLE", "0", 0) through libc, before NCCL reads its environment. */
    static void disableNvls() {
        try (Arena a = Arena.ofConfined()) {
            Linker l = Linker.nativeLinker();
            MethodHandle setenv = l.downcallHandle(l.defaultLookup().find("setenv").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
            int rc = (int) setenv.invokeExact(a.allocateFrom("NCCL_NVLS_ENABLE"), a.allocateFrom("0"), 0);
            if (rc != 0) System.err.println("[impasto] could not set NCCL_NVLS_ENABLE=0; set it in the environment");
        } catch (Throwable t) {
            System.err.println("[impasto] could not set NCCL_NVLS_ENABLE=0 (" + t + "); set it in the environment");
        }
    }
}
