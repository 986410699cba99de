package dev.impasto.cuda;

import static dev.impasto.bindings.cuda.cuda_h.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One kernel of the module with a typed launch: each argument is passed by its Java type, matching the kernel's C
 * signature: {@code Long} for pointers (device addresses) and 64-bit integers, {@code Integer} for int, {@code Float}
 * for float, {@code Double} for double. A launch the driver rejects (bad geometry, too much shared memory) throws a
 * {@link CudaException} naming the kernel; faults inside a kernel surface at the next synchronisation.
 */
public final class Kernel {
    private final String name;
    private final MemorySegment function;

    Kernel(String name, MemorySegment function) {
        this.name = name;
        this.function = function;
    }

    public String name() {
        return name;
    }

    public void launch(CudaStream stream, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ, int sharedBytes, Object... args) {
        if (gridX <= 0 || gridY <= 0 || gridZ <= 0) return; // empty problem: nothing to launch
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = a.allocate(ValueLayout.ADDRESS, Math.max(1, args.length));
            for (int i = 0; i < args.length; i++) {
                MemorySegment cell = switch (args[i]) {
                    case Long l -> a.allocateFrom(ValueLayout.JAVA_LONG, l);
                    case Integer v -> a.allocateFrom(ValueLayout.JAVA_INT, v);
                    case Float f -> a.allocateFrom(ValueLayout.JAVA_FLOAT, f);
                    case Double d -> a.allocateFrom(ValueLayout.JAVA_DOUBLE, d);
                    case null -> throw new IllegalArgumentException(name + ": argument " + i + " is null (pass 0L for a null pointer)");
                    default -> throw new IllegalArgumentException(name + ": argument " + i + " has unsupported type " + args[i].getClass().getSimpleName());
                };
                params.setAtIndex(ValueLayout.ADDRESS, i, cell);
            }
            Cuda.check(cuLaunchKernel(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, stream.handle(), params,
                    MemorySegment.NULL), "cuLaunchKernel(" + name + ", grid " + gridX + "x" + gridY + "x" + gridZ + ", block "
                    + blockX + "x" + blockY + "x" + blockZ + ", " + sharedBytes + " B shared)");
        }
    }

    /** 1-D launch helper: enough blocks of {@code block} threads to cover n items. */
    public void launch1d(CudaStream stream, long n, int block, Object... args) {
        long blocks = (n + block - 1) / block;
        if (blocks > Integer.MAX_VALUE) throw new IllegalArgumentException(name + ": " + n + " items is too many for one launch");
        launch(stream, (int) blocks, 1, 1, block, 1, 1, 0, args);
    }

    /** Raises the kernel's dynamic shared-memory limit (needed above 48 KiB). */
    public void setMaxDynamicShared(int bytes) {
        Cuda.check(cuFuncSetAttribute(function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES(), bytes),
                "cuFuncSetAttribute(" + name + ", max dynamic shared " + bytes + ")");
    }
}
