package dev.impasto.cuda;

import static dev.impasto.bindings.cuda.cuda_h.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Everything impasto holds on one GPU: the device's primary context (shared with libtorch), one stream, the caching
 * allocator, the kernel module, cuBLASLt and (when present) libtorch. Driver contexts are current per OS thread:
 * {@link #makeCurrent()} binds this context to the calling thread.
 */
public final class CudaContext implements AutoCloseable {
    public final DeviceInfo info;
    private final int device;
    private final MemorySegment context;
    private final CudaStream stream;
    private final DeviceAllocator allocator = new DeviceAllocator();
    private KernelModule kernels;
    private CublasLt blas;
    private TorchRuntime torch;
    private boolean torchTried;
    private boolean closed;

    private CudaContext(DeviceInfo info, int device, MemorySegment context) {
        this.info = info;
        this.device = device;
        this.context = context;
        makeCurrent();
        this.stream = CudaStream.create();
    }

    public static CudaContext open(int ordinal) {
        DeviceThread.requirePlatformThread(); // before anything is retained that a refusal would leak
        Cuda.init();
        int count = Cuda.deviceCount();
        if (ordinal < 0 || ordinal >= count)
            throw new CudaUnavailableException("GPU " + ordinal + " does not exist (" + count + " visible)");
        DeviceInfo info = DeviceInfo.query(ordinal);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment dev = a.allocate(ValueLayout.JAVA_INT);
            Cuda.check(cuDeviceGet(dev, ordinal), "cuDeviceGet");
            int d = dev.get(ValueLayout.JAVA_INT, 0);
            MemorySegment ctx = a.allocate(ValueLayout.ADDRESS);
            Cuda.check(cuDevicePrimaryCtxRetain(ctx, d), "cuDevicePrimaryCtxRetain");
            return new CudaContext(info, d, ctx.get(ValueLayout.ADDRESS, 0));
        }
    }

    /** Makes this context current on the calling thread, which must be a platform thread (see {@link DeviceThread}). Cheap. */
    public void makeCurrent() {
        DeviceThread.requirePlatformThread();
        Cuda.check(cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    public int ordinal() {
        return info.ordinal();
    }

    public CudaStream stream() {
        return stream;
    }

    public DeviceAllocator allocator() {
        return allocator;
    }

    public synchronized KernelModule kernels() {
        if (kernels == null) kernels = KernelModule.load();
        return kernels;
    }

    public synchronized CublasLt blas() {
        if (blas == null) blas = new CublasLt(allocator);
        return blas;
    }

    /** libtorch for cuDNN/flash attention and convolutions, or null when it is not installed. */
    public synchronized TorchRuntime torch() {
        if (!torchTried) {
            torchTried = true;
            if (NativeLibraries.load().torchLoaded()) torch = new TorchRuntime(this);
        }
        return torch;
    }

    public void synchronize() {
        stream.synchronize();
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        makeCurrent(); // refuses a virtual thread before anything is marked closed (a later close from a platform thread still frees)
        closed = true;
        stream.synchronize();
        if (blas != null) blas.close();
        if (kernels != null) kernels.close();
        allocator.close();
        stream.close();
        cuDevicePrimaryCtxRelease_v2(device);
    }
}
