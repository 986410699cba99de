package dev.impasto.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** GPU work stays on platform threads: inline on one, handed to the device thread from a virtual one. */
class DeviceThreadTest {
    @Test
    void platformCallersRunInlineVirtualOnesOnTheDeviceThread() throws Exception {
        Thread me = Thread.currentThread();
        assertSame(me, DeviceThread.call(Thread::currentThread), "a platform caller runs the op itself");
        AtomicReference<Thread> ran = new AtomicReference<>(), ran2 = new AtomicReference<>();
        Thread v = Thread.ofVirtual().start(() -> {
            ran.set(DeviceThread.call(Thread::currentThread));
            ran2.set(DeviceThread.call(Thread::currentThread));
        });
        v.join();
        assertFalse(ran.get().isVirtual(), "from a virtual thread the op runs on a platform thread");
        assertEquals("impasto-device", ran.get().getName());
        assertSame(ran.get(), ran2.get(), "always the same device thread (one OS thread for CUDA and libtorch state)");
    }

    @Test
    void anInterruptedCallerStillWaitsForItsOpToFinish() throws Exception {
        java.util.concurrent.atomic.AtomicBoolean finished = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicBoolean sawFinished = new java.util.concurrent.atomic.AtomicBoolean(), stillInterrupted = new java.util.concurrent.atomic.AtomicBoolean();
        Thread v = Thread.ofVirtual().start(() -> {
            String r = DeviceThread.call(() -> {
                Thread.sleep(300);
                finished.set(true);
                return "done";
            });
            sawFinished.set(finished.get() && r.equals("done"));
            stillInterrupted.set(Thread.currentThread().isInterrupted());
        });
        Thread.sleep(50);
        v.interrupt();
        v.join();
        assertTrue(sawFinished.get(), "the caller returned only after its op (it may hold locks the op relies on)");
        assertTrue(stillInterrupted.get(), "the interrupt is kept for the caller to see");
    }

    @Test
    void exceptionsComeOutAsThrownAndVirtualThreadsAreRefusedByTheBackend() throws Exception {
        AtomicReference<Throwable> got = new AtomicReference<>(), refused = new AtomicReference<>();
        Thread v = Thread.ofVirtual().start(() -> {
            try {
                DeviceThread.call(() -> {
                    throw new IllegalArgumentException("bad request");
                });
            } catch (Throwable t) {
                got.set(t);
            }
            try {
                DeviceThread.requirePlatformThread();
            } catch (Throwable t) {
                refused.set(t);
            }
        });
        v.join();
        assertTrue(got.get() instanceof IllegalArgumentException && got.get().getMessage().equals("bad request"), String.valueOf(got.get()));
        assertTrue(refused.get() instanceof IllegalStateException && refused.get().getMessage().contains("virtual thread"), String.valueOf(refused.get()));
        DeviceThread.requirePlatformThread(); // this test's thread is a platform thread
        assertThrows(IllegalStateException.class, () -> DeviceThread.call(() -> {
            throw new java.io.IOException("checked");
        }));
    }
}
