package dev.impasto;

import dev.impasto.cuda.Cuda;
import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.cpu.CpuBackend;
import dev.impasto.tensor.cuda.CudaBackend;

/** Opens a backend by name: "cpu", "cuda", "cuda:N", or "auto" (the first GPU if there is one, else the CPU). */
public final class Backends {
    private Backends() {}

    /** Callable from any thread; from a virtual thread a GPU backend is opened on impasto's device thread (see DeviceThread). */
    public static Backend open(String device) {
        return dev.impasto.cuda.DeviceThread.call(() -> openHere(device));
    }

    private static Backend openHere(String device) {
        String d = device == null ? "auto" : device.trim().toLowerCase(java.util.Locale.ROOT);
        if (d.equals("cpu")) return new CpuBackend();
        if (d.equals("auto")) return Cuda.available() ? CudaBackend.open(0) : new CpuBackend();
        if (d.equals("cuda") || d.equals("gpu")) return CudaBackend.open(0);
        if (d.startsWith("cuda:")) {
            try {
                return CudaBackend.open(Integer.parseInt(d.substring(5)));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad device \"" + device + "\": use cpu, cuda, cuda:N or auto");
            }
        }
        throw new IllegalArgumentException("unknown device \"" + device + "\": use cpu, cuda, cuda:N or auto");
    }

    /** The dtype the model computes in on a backend: bf16 on GPUs, f32 on the CPU. */
    public static DType computeType(Backend be) {
        return be.isGpu() ? DType.BF16 : DType.F32;
    }
}
