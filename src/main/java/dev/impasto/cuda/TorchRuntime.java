package dev.impasto.cuda;

import static dev.impasto.bindings.torch.torch_shim_h.*;

import dev.impasto.tensor.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * libtorch through its stable C ABI (the AOTInductor shim): our device memory wrapped as torch tensors without a
 * copy, and the per-op C shims for cuDNN / flash attention. Handles are opaque pointers that must be deleted.
 *
 * <p>libtorch keeps the current stream and grad mode per OS thread: {@link #bind()} sets our stream and grad mode
 * off on the calling thread (once per thread). That thread is a platform thread, so one OS thread: the CUDA backend
 * refuses virtual threads ({@link DeviceThread}). Error codes carry no message; libtorch prints it on stderr.
 */
public final class TorchRuntime {
    private final CudaContext ctx;
    private final int dtF32, dtBf16, dtF16, dtI64, devCuda;
    /**
     * Per OS (platform) thread: the stream handle this thread last made libtorch's current one, per device. Static, not
     * per runtime: two backends on one device used from one thread (two generators on impasto's device thread) share
     * libtorch's per-thread slot, so each call rebinds when the other backend's stream is current.
     */
    private static final ThreadLocal<java.util.Map<Integer, Long>> BOUND = ThreadLocal.withInitial(java.util.HashMap::new);

    TorchRuntime(CudaContext ctx) {
        this.ctx = ctx;
        dtF32 = aoti_torch_dtype_float32();
        dtBf16 = aoti_torch_dtype_bfloat16();
        dtF16 = aoti_torch_dtype_float16();
        dtI64 = aoti_torch_dtype_int64();
        devCuda = aoti_torch_device_type_cuda();
    }

    public static long abiVersion() {
        return aoti_torch_abi_version();
    }

    static void check(int rc, String call) {
        if (rc != 0) throw new CudaException(call, rc, "AOTI_TORCH_FAILURE", "libtorch printed the reason on stderr");
    }

    /** Our stream current and grad mode off for libtorch on this thread (a map lookup when they already are). */
    public void bind() {
        java.util.Map<Integer, Long> bound = BOUND.get();
        long stream = ctx.stream().handle().address();
        Long current = bound.get(ctx.ordinal());
        if (current != null && current == stream) return;
        ctx.makeCurrent();
        aoti_torch_grad_mode_set_enabled(false);
        check(torch_set_current_cuda_stream(ctx.stream().handle(), ctx.ordinal()), "torch_set_current_cuda_stream");
        bound.put(ctx.ordinal(), stream);
    }

    int dtype(DType t) {
        return switch (t) {
            case F32 -> dtF32;
            case BF16 -> dtBf16;
            case F16 -> dtF16;
            case I64 -> dtI64;
            default -> throw new IllegalArgumentException("no torch dtype mapping for " + t);
        };
    }

    /** A torch tensor over our device memory (no copy). Delete it with {@link #delete}. */
    public MemorySegment view(long address, DType type, long[] sizes, long[] strides) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            check(aoti_torch_create_tensor_from_blob_v2(MemorySegment.ofAddress(address), sizes.length,
                    a.allocateFrom(ValueLayout.JAVA_LONG, sizes), a.allocateFrom(ValueLayout.JAVA_LONG, strides), 0,
                    dtype(type), devCuda, ctx.ordinal(), out, 0, MemorySegment.NULL, 0), "aoti_torch_create_tensor_from_blob_v2");
            return out.get(ValueLayout.ADDRESS, 0);
        }
    }

    /** An undefined tensor (the C ABI's way to say "None" where a Tensor argument is required). */
    public MemorySegment undefined() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            check(aoti_torch_new_uninitialized_tensor(out), "aoti_torch_new_uninitialized_tensor");
            return out.get(ValueLayout.ADDRESS, 0);
        }
    }

    public void delete(MemorySegment h) {
        if (h != null && !h.equals(MemorySegment.NULL)) check(aoti_torch_delete_tensor_object(h), "aoti_torch_delete_tensor_object");
    }

    public long[] sizes(MemorySegment h) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment dim = a.allocate(ValueLayout.JAVA_LONG);
            check(aoti_torch_get_dim(h, dim), "aoti_torch_get_dim");
            int n = (int) dim.get(ValueLayout.JAVA_LONG, 0);
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(aoti_torch_get_sizes(h, p), "aoti_torch_get_sizes");
            return p.get(ValueLayout.ADDRESS, 0).reinterpret(8L * n).toArray(ValueLayout.JAVA_LONG);
        }
    }

    public long[] strides(MemorySegment h) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment dim = a.allocate(ValueLayout.JAVA_LONG);
            check(aoti_torch_get_dim(h, dim), "aoti_torch_get_dim");
            int n = (int) dim.get(ValueLayout.JAVA_LONG, 0);
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(aoti_torch_get_strides(h, p), "aoti_torch_get_strides");
            return p.get(ValueLayout.ADDRESS, 0).reinterpret(8L * n).toArray(ValueLayout.JAVA_LONG);
        }
    }

    public long dataPtr(MemorySegment h) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(aoti_torch_get_data_ptr(h, p), "aoti_torch_get_data_ptr");
            return p.get(ValueLayout.ADDRESS, 0).address();
        }
    }

    /** dst.copy_(src) on our stream (strided, dtype-converting). */
    public void copy(MemorySegment dst, MemorySegment src) {
        bind();
        check(aoti_torch_copy_(dst, src, 0), "aoti_torch_copy_");
    }

    /** Which fused attention implementation to ask libtorch for. */
    public enum AttentionKernel { CUDNN, FLASH }

    /** Whether a kernel's log-sum-exp comes as [B, H, L, 1] (cuDNN) rather than [B, H, L]; learnt from its forward. */
    private final boolean[] lseTrailingOne = new boolean[AttentionKernel.values().length];

    /** A torch view of our F32 log-sum-exp buffer [B, H, L] in the shape the kernel uses. */
    public MemorySegment lseView(AttentionKernel kind, long address, long b, long h, long l) {
        return lseTrailingOne[kind.ordinal()]
                ? view(address, DType.F32, new long[] {b, h, l, 1}, new long[] {h * l, l, 1, 1})
                : view(address, DType.F32, new long[] {b, h, l}, new long[] {h * l, l, 1});
    }

    /**
     * softmax(q k^T * scale) v through libtorch. q, k, v are torch views [B, H, L, D]; the output is copied into
     * outView and the log-sum-exp into our F32 buffer lse [B, H, L]. Every torch-allocated result is deleted.
     */
    public void attentionForward(AttentionKernel kind, MemorySegment q, MemorySegment k, MemorySegment v, double scale,
                                 MemorySegment outView, long lse, long b, long h, long l) {
        bind();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment[] ret = new MemorySegment[9];
            for (int i = 0; i < 9; i++) ret[i] = a.allocate(ValueLayout.ADDRESS);
            MemorySegment maxQ = a.allocate(ValueLayout.JAVA_LONG), maxK = a.allocate(ValueLayout.JAVA_LONG);
            MemorySegment sc = a.allocateFrom(ValueLayout.JAVA_DOUBLE, scale);
            int rc = switch (kind) {
                case CUDNN -> aoti_torch_cuda__scaled_dot_product_cudnn_attention(q, k, v, MemorySegment.NULL, 1, 0.0, 0, 0, sc,
                        ret[0], ret[1], ret[2], ret[3], maxQ, maxK, ret[6], ret[7], ret[8]);
                case FLASH -> aoti_torch_cuda__scaled_dot_product_flash_attention(q, k, v, 0.0, 0, 0, sc,
                        ret[0], ret[1], ret[2], ret[3], maxQ, maxK, ret[6], ret[7], ret[8]);
            };
            check(rc, "aoti_torch_cuda__scaled_dot_product_" + kind.name().toLowerCase() + "_attention");
            try {
                copy(outView, ret[0].get(ValueLayout.ADDRESS, 0));
                MemorySegment lseOut = ret[1].get(ValueLayout.ADDRESS, 0);
                lseTrailingOne[kind.ordinal()] = sizes(lseOut).length == 4;
                MemorySegment lseView = lseView(kind, lse, b, h, l);
                try {
                    copy(lseView, lseOut);
                } finally {
                    delete(lseView);
                }
            } finally {
                for (int i : new int[] {0, 1, 2, 3, 6, 7, 8}) {
                    MemorySegment handle = ret[i].get(ValueLayout.ADDRESS, 0);
                    if (!handle.equals(MemorySegment.NULL)) delete(handle);
                }
            }
        }
    }

    /** Backward of {@link #attentionForward}: dq, dk, dv views receive the gradients. */
    public void attentionBackward(AttentionKernel kind, MemorySegment dout, MemorySegment q, MemorySegment k, MemorySegment v,
                                  MemorySegment out, MemorySegment lse, long lq, long lk, double scale,
                                  MemorySegment dqView, MemorySegment dkView, MemorySegment dvView) {
        bind();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment[] ret = {a.allocate(ValueLayout.ADDRESS), a.allocate(ValueLayout.ADDRESS), a.allocate(ValueLayout.ADDRESS)};
            MemorySegment sc = a.allocateFrom(ValueLayout.JAVA_DOUBLE, scale);
            MemorySegment seed = undefined(), offset = undefined(), bias = undefined(), cq = undefined(), ck = undefined();
            try {
                int rc = switch (kind) {
                    case CUDNN -> aoti_torch_cuda__scaled_dot_product_cudnn_attention_backward(dout, q, k, v, out, lse, seed, offset, bias,
                            cq, ck, lq, lk, 0.0, 0, sc, ret[0], ret[1], ret[2]);
                    case FLASH -> aoti_torch_cuda__scaled_dot_product_flash_attention_backward(dout, q, k, v, out, lse, cq, ck, lq, lk,
                            0.0, 0, seed, offset, sc, ret[0], ret[1], ret[2]);
                };
                check(rc, "aoti_torch_cuda__scaled_dot_product_" + kind.name().toLowerCase() + "_attention_backward");
                MemorySegment[] dst = {dqView, dkView, dvView};
                for (int i = 0; i < 3; i++) {
                    MemorySegment h = ret[i].get(ValueLayout.ADDRESS, 0);
                    try {
                        copy(dst[i], h);
                    } finally {
                        delete(h);
                    }
                }
            } finally {
                for (MemorySegment h : new MemorySegment[] {seed, offset, bias, cq, ck}) delete(h);
            }
        }
    }
}
