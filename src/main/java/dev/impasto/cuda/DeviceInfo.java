package dev.impasto.cuda;

import static dev.impasto.bindings.cuda.cuda_h.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** What the driver says about one GPU. */
public record DeviceInfo(int ordinal, String name, int major, int minor, int multiprocessors, long totalMemory,
                         int l2CacheBytes, int maxSharedPerBlockOptin, int clockKhz, int memoryClockKhz, int busWidth) {

    public static DeviceInfo query(int ordinal) {
        Cuda.init();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment dev = a.allocate(ValueLayout.JAVA_INT);
            Cuda.check(cuDeviceGet(dev, ordinal), "cuDeviceGet(" + ordinal + ")");
            int d = dev.get(ValueLayout.JAVA_INT, 0);
            MemorySegment name = a.allocate(256);
            Cuda.check(cuDeviceGetName(name, 256, d), "cuDeviceGetName");
            MemorySegment mem = a.allocate(ValueLayout.JAVA_LONG);
            Cuda.check(cuDeviceTotalMem_v2(mem, d), "cuDeviceTotalMem");
            return new DeviceInfo(ordinal, name.getString(0),
                    attr(a, d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR()),
                    attr(a, d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR()),
                    attr(a, d, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT()),
                    mem.get(ValueLayout.JAVA_LONG, 0),
                    attr(a, d, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE()),
                    attr(a, d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN()),
                    attr(a, d, CU_DEVICE_ATTRIBUTE_CLOCK_RATE()),
                    attr(a, d, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE()),
                    attr(a, d, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH()));
        }
    }

    private static int attr(Arena a, int dev, int attribute) {
        MemorySegment v = a.allocate(ValueLayout.JAVA_INT);
        Cuda.check(cuDeviceGetAttribute(v, attribute, dev), "cuDeviceGetAttribute(" + attribute + ")");
        return v.get(ValueLayout.JAVA_INT, 0);
    }

    public String computeCapability() {
        return major + "." + minor;
    }

    /** The fatbin target this device runs natively ("sm_90a" for Hopper). */
    public String smTarget() {
        return "sm_" + major + minor + (major == 9 ? "a" : "");
    }
}
