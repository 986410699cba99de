package dev.impasto.cuda;

import static dev.impasto.bindings.cublaslt.cublasLt_h.*;

import dev.impasto.bindings.cublaslt.cublasLtMatmulHeuristicResult_t;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;

/**
 * cuBLASLt matrix products with a ROW-MAJOR interface: D[m, n] = alpha * op(A)[m, k] op(B)[k, n] + beta * C (+ bias
 * per column of D) and optional epilogues, fp32 accumulation, strided batches.
 *
 * <p>cuBLASLt is column-major: a row-major X with leading dimension ld is the column-major X^T with the same ld, so
 * D^T = op(B)^T op(A)^T is computed with the operands swapped (cuBLASLt's "A" is our B). The heuristic's algorithm
 * is chosen once per (shape, types, transposes, leading dims, epilogue, pointer alignment) and cached, along with
 * the descriptors; FLUX has about a dozen distinct shapes.
 */
public final class CublasLt implements AutoCloseable {
    public static final long WORKSPACE_BYTES = 32L << 20;

    /** Element types cuBLASLt takes here. */
    public enum Type {
        F32, BF16, F16;

        int cuda() {
            return switch (this) {
                case F32 -> CUDA_R_32F();
                case BF16 -> CUDA_R_16BF();
                case F16 -> CUDA_R_16F();
            };
        }
    }

    public enum Epilogue {
        NONE, BIAS, GELU_BIAS, GELU_AUX_BIAS, DGELU, DGELU_BGRAD, BGRADA, BGRADB;

        int cuda() {
            return switch (this) {
                case NONE -> CUBLASLT_EPILOGUE_DEFAULT();
                case BIAS -> CUBLASLT_EPILOGUE_BIAS();
                case GELU_BIAS -> CUBLASLT_EPILOGUE_GELU_BIAS();
                case GELU_AUX_BIAS -> CUBLASLT_EPILOGUE_GELU_AUX_BIAS();
                case DGELU -> CUBLASLT_EPILOGUE_DGELU();
                case DGELU_BGRAD -> CUBLASLT_EPILOGUE_DGELU_BGRAD();
                case BGRADA -> CUBLASLT_EPILOGUE_BGRADA();
                case BGRADB -> CUBLASLT_EPILOGUE_BGRADB();
            };
        }

        boolean usesBias() {
            return this == BIAS || this == GELU_BIAS || this == GELU_AUX_BIAS || this == DGELU_BGRAD || this == BGRADA || this == BGRADB;
        }

        boolean usesAux() {
            return this == GELU_AUX_BIAS || this == DGELU || this == DGELU_BGRAD;
        }
    }

    /**
     * One product, row-major. a is [m, k] ([k, m] when transA), b is [k, n] ([n, k] when transB), c and d are [m, n];
     * c may equal d (beta accumulates in place). bias: n elements of biasType. aux: [m, n] with leading dim ldAux.
     * batch > 1 repeats the product with the given element strides.
     */
    public record Gemm(long m, long n, long k, boolean transA, boolean transB,
                       Type typeA, long a, long lda, Type typeB, long b, long ldb, Type typeC, long c, long ldc, long d, long ldd,
                       float alpha, float beta, Epilogue epilogue, long bias, Type biasType, long aux, long ldAux,
                       int batch, long strideA, long strideB, long strideC) {

        /** The plain case: no epilogue, no batch, c == d. */
        public static Gemm of(long m, long n, long k, boolean transA, boolean transB, Type ab, long a, long lda, long b, long ldb,
                              Type cd, long d, long ldd, float alpha, float beta) {
            return new Gemm(m, n, k, transA, transB, ab, a, lda, ab, b, ldb, cd, d, ldd, d, ldd, alpha, beta,
                    Epilogue.NONE, 0, cd, 0, 0, 1, 0, 0, 0);
        }

        public Gemm withBias(long biasPtr, Type type) {
            return new Gemm(m, n, k, transA, transB, typeA, a, lda, typeB, b, ldb, typeC, c, ldc, d, ldd, alpha, beta,
                    Epilogue.BIAS, biasPtr, type, aux, ldAux, batch, strideA, strideB, strideC);
        }

        public Gemm withEpilogue(Epilogue e, long biasPtr, Type bType, long auxPtr, long auxLd) {
            return new Gemm(m, n, k, transA, transB, typeA, a, lda, typeB, b, ldb, typeC, c, ldc, d, ldd, alpha, beta,
                    e, biasPtr, bType, auxPtr, auxLd, batch, strideA, strideB, strideC);
        }

        public Gemm batched(int count, long sa, long sb, long sc) {
            return new Gemm(m, n, k, transA, transB, typeA, a, lda, typeB, b, ldb, typeC, c, ldc, d, ldd, alpha, beta,
                    epilogue, bias, biasType, aux, ldAux, count, sa, sb, sc);
        }

        /** Leading-dimension and shape checks (the part of the wrapper that needs no GPU, unit-tested). */
        public void validate() {
            if (m < 0 || n < 0 || k < 0) throw new IllegalArgumentException("negative gemm dimension " + this);
            long aCols = transA ? m : k, bCols = transB ? k : n;
            if (lda < Math.max(1, aCols)) throw new IllegalArgumentException("lda " + lda + " < " + aCols + " (A is " + (transA ? "[k, m]" : "[m, k]") + ")");
            if (ldb < Math.max(1, bCols)) throw new IllegalArgumentException("ldb " + ldb + " < " + bCols + " (B is " + (transB ? "[n, k]" : "[k, n]") + ")");
            if (ldc < Math.max(1, n) || ldd < Math.max(1, n)) throw new IllegalArgumentException("ldc/ldd " + ldc + "/" + ldd + " < n " + n);
            if (typeA != typeB) throw new IllegalArgumentException("A and B must have the same type, got " + typeA + " and " + typeB);
            if (epilogue.usesAux() && ldAux < n) throw new IllegalArgumentException("aux leading dim " + ldAux + " < n " + n);
            if (batch < 1) throw new IllegalArgumentException("batch count " + batch);
        }

        /** cuBLASLt's column-major view: (rows, cols, ld) of its A (our B), its B (our A) and its C/D. */
        long[][] columnMajorLayouts() {
            return new long[][] {
                transB ? new long[] {k, n, ldb} : new long[] {n, k, ldb},
                transA ? new long[] {m, k, lda} : new long[] {k, m, lda},
                new long[] {n, m, ldc},
                new long[] {n, m, ldd}};
        }
    }

    private record Key(long m, long n, long k, boolean ta, boolean tb, Type typeA, Type typeC, long lda, long ldb, long ldc, long ldd,
                       Epilogue epi, Type biasType, long ldAux, int batch, long sa, long sb, long sc, int alignA, int alignB, int alignC, int alignD,
                       boolean sibling) {}

    /**
     * One product's descriptors and algorithm. fallback: the heuristic's own pick for this shape when algo was borrowed
     * from a sibling shape (see {@link #useSiblingAlgoForOddK}); used from the first call on if cuBLASLt refuses algo.
     */
    private static final class Plan {
        final MemorySegment desc, la, lb, lc, ld;
        MemorySegment algo, fallback;

        Plan(MemorySegment desc, MemorySegment la, MemorySegment lb, MemorySegment lc, MemorySegment ld, MemorySegment algo) {
            this.desc = desc;
            this.la = la;
            this.lb = lb;
            this.lc = lc;
            this.ld = ld;
            this.algo = algo;
        }
    }

    private static volatile boolean siblingAlgo = !Boolean.getBoolean("impasto.cublasOwnOddK");

    /**
     * A fused LoRA product has K = 3072 + 16 (the adapter's columns after the base's): for K off a multiple of 64 the
     * heuristic picks a different, slower kernel than for the K below it (about 5% at 4608 x 3072, where the extra 16
     * columns are worth 0.5%). With this on (the default), such a product runs the algorithm the heuristic picks for K
     * rounded down to a multiple of 64, when cuBLASLt accepts it for the real K. For side-by-side benchmarks.
     */
    public static void useSiblingAlgoForOddK(boolean on) {
        siblingAlgo = on;
    }

    private final MemorySegment handle;
    private final Arena arena = Arena.ofShared();
    private final Map<Key, Plan> plans = new HashMap<>();
    private final long workspace;
    private final DeviceAllocator allocator;

    public CublasLt(DeviceAllocator allocator) {
        this.allocator = allocator;
        MemorySegment p = arena.allocate(ValueLayout.ADDRESS);
        check(cublasLtCreate(p), "cublasLtCreate");
        handle = p.get(ValueLayout.ADDRESS, 0);
        workspace = allocator.allocate(WORKSPACE_BYTES);
    }

    public static long version() {
        return cublasLtGetVersion();
    }

    public int cachedPlans() {
        return plans.size();
    }

    static void check(int status, String call) {
        if (status == CUBLAS_STATUS_SUCCESS()) return;
        String name, desc;
        try {
            name = cublasLtGetStatusName(status).reinterpret(256).getString(0);
            desc = cublasLtGetStatusString(status).reinterpret(1024).getString(0);
        } catch (RuntimeException | LinkageError e) {
            name = "CUBLAS_STATUS_" + status;
            desc = "";
        }
        throw new CudaException(call, status, name, desc);
    }

    private static int alignment(long ptr) {
        if (ptr == 0) return 256;
        return (int) Math.min(256, Long.lowestOneBit(ptr));
    }

    public synchronized void matmul(Gemm g, CudaStream stream) {
        g.validate();
        if (g.m() == 0 || g.n() == 0) return;
        Key key = new Key(g.m(), g.n(), g.k(), g.transA(), g.transB(), g.typeA(), g.typeC(), g.lda(), g.ldb(), g.ldc(), g.ldd(),
                g.epilogue(), g.biasType(), g.ldAux(), g.batch(), g.strideA(), g.strideB(), g.strideC(),
                alignment(g.a()), alignment(g.b()), alignment(g.c()), alignment(g.d()), siblingAlgo && g.k() % 64 != 0);
        Plan plan = plans.computeIfAbsent(key, kk -> plan(g, kk));
        try (Arena a = Arena.ofConfined()) {
            if (g.epilogue().usesBias())
                check(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER(), a.allocateFrom(ValueLayout.JAVA_LONG, g.bias()), 8), "set BIAS_POINTER");
            if (g.epilogue().usesAux())
                check(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER(), a.allocateFrom(ValueLayout.JAVA_LONG, g.aux()), 8), "set AUX_POINTER");
            MemorySegment alpha = a.allocateFrom(ValueLayout.JAVA_FLOAT, g.alpha());
            MemorySegment beta = a.allocateFrom(ValueLayout.JAVA_FLOAT, g.beta());
            int status = launch(g, plan, plan.algo, alpha, beta, stream);
            if (status != CUBLAS_STATUS_SUCCESS() && plan.fallback != null) { // the borrowed algorithm was refused: the shape's own
                plan.algo = plan.fallback;
                plan.fallback = null;
                status = launch(g, plan, plan.algo, alpha, beta, stream);
            }
            check(status, "cublasLtMatmul(m=" + g.m() + ", n=" + g.n() + ", k=" + g.k() + ", " + g.typeA() + "->" + g.typeC() + ", " + g.epilogue() + ")");
        }
    }

    private int launch(Gemm g, Plan plan, MemorySegment algo, MemorySegment alpha, MemorySegment beta, CudaStream stream) {
        // swapped operands: cuBLASLt's A is our B
        return cublasLtMatmul(handle, plan.desc, alpha, MemorySegment.ofAddress(g.b()), plan.la, MemorySegment.ofAddress(g.a()), plan.lb,
                beta, MemorySegment.ofAddress(g.c()), plan.lc, MemorySegment.ofAddress(g.d()), plan.ld, algo,
                MemorySegment.ofAddress(workspace), WORKSPACE_BYTES, stream.handle());
    }

    private Plan plan(Gemm g, Key key) {
        MemorySegment p = arena.allocate(ValueLayout.ADDRESS);
        boolean allF32 = g.typeA() == Type.F32 && g.typeC() == Type.F32;
        check(cublasLtMatmulDescCreate(p, CUBLAS_COMPUTE_32F(), CUDA_R_32F()), "cublasLtMatmulDescCreate");
        MemorySegment desc = p.get(ValueLayout.ADDRESS, 0);
        setInt(desc, CUBLASLT_MATMUL_DESC_TRANSA(), g.transB() ? CUBLAS_OP_T() : CUBLAS_OP_N());
        setInt(desc, CUBLASLT_MATMUL_DESC_TRANSB(), g.transA() ? CUBLAS_OP_T() : CUBLAS_OP_N());
        setInt(desc, CUBLASLT_MATMUL_DESC_EPILOGUE(), g.epilogue().cuda());
        if (g.epilogue().usesBias()) {
            setInt(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE(), g.biasType().cuda());
            try (Arena a = Arena.ofConfined()) {
                check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER(), a.allocateFrom(ValueLayout.JAVA_LONG, g.bias()), 8), "set BIAS_POINTER");
            }
        }
        if (g.epilogue().usesAux()) {
            try (Arena a = Arena.ofConfined()) {
                check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD(), a.allocateFrom(ValueLayout.JAVA_LONG, g.ldAux()), 8), "set AUX_LD");
                check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER(), a.allocateFrom(ValueLayout.JAVA_LONG, g.aux()), 8), "set AUX_POINTER");
            }
        }
        long[][] l = g.columnMajorLayouts();
        MemorySegment la = layout(g.typeB(), l[0], g.batch(), g.strideB());
        MemorySegment lb = layout(g.typeA(), l[1], g.batch(), g.strideA());
        MemorySegment lc = layout(g.typeC(), l[2], g.batch(), g.strideC());
        MemorySegment ld = layout(g.typeC(), l[3], g.batch(), g.strideC());
        MemorySegment own = heuristic(g, key, desc, la, lb, lc, ld);
        if (own == null)
            throw new CudaException("cuBLASLt has no algorithm for m=" + g.m() + ", n=" + g.n() + ", k=" + g.k() + " " + g.typeA() + "->" + g.typeC()
                    + " " + g.epilogue() + (allF32 ? "" : " (leading dimensions should be multiples of 8 and pointers 16-byte aligned)"));
        Plan plan = new Plan(desc, la, lb, lc, ld, own);
        long k64 = g.k() / 64 * 64;
        if (key.sibling() && k64 >= 1024 && g.batch() == 1) {
            Gemm sib = new Gemm(g.m(), g.n(), k64, g.transA(), g.transB(), g.typeA(), g.a(), g.lda(), g.typeB(), g.b(), g.ldb(), g.typeC(), g.c(),
                    g.ldc(), g.d(), g.ldd(), g.alpha(), g.beta(), g.epilogue(), g.bias(), g.biasType(), g.aux(), g.ldAux(), 1, 0, 0, 0);
            long[][] sl = sib.columnMajorLayouts();
            MemorySegment sa = layout(g.typeB(), sl[0], 1, 0), sb = layout(g.typeA(), sl[1], 1, 0);
            try {
                MemorySegment borrowed = heuristic(sib, key, desc, sa, sb, lc, ld);
                if (borrowed != null) {
                    plan.algo = borrowed;
                    plan.fallback = own;
                }
            } catch (CudaException e) {
                // no algorithm for the rounded-down shape: the shape's own pick stands
            } finally {
                cublasLtMatrixLayoutDestroy(sa);
                cublasLtMatrixLayoutDestroy(sb);
            }
        }
        return plan;
    }

    /** The heuristic's first usable algorithm for these descriptors (copied into the plan arena), or null. */
    private MemorySegment heuristic(Gemm g, Key key, MemorySegment desc, MemorySegment la, MemorySegment lb, MemorySegment lc, MemorySegment ld) {
        MemorySegment pref = null;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment pp = a.allocate(ValueLayout.ADDRESS);
            check(cublasLtMatmulPreferenceCreate(pp), "cublasLtMatmulPreferenceCreate");
            pref = pp.get(ValueLayout.ADDRESS, 0);
            check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES(), a.allocateFrom(ValueLayout.JAVA_LONG, WORKSPACE_BYTES), 8), "set MAX_WORKSPACE");
            // cuBLASLt's A is our B and vice versa
            check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES(), a.allocateFrom(ValueLayout.JAVA_INT, key.alignB()), 4), "set ALIGN_A");
            check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES(), a.allocateFrom(ValueLayout.JAVA_INT, key.alignA()), 4), "set ALIGN_B");
            check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES(), a.allocateFrom(ValueLayout.JAVA_INT, key.alignC()), 4), "set ALIGN_C");
            check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES(), a.allocateFrom(ValueLayout.JAVA_INT, key.alignD()), 4), "set ALIGN_D");
            int want = 8;
            MemorySegment results = cublasLtMatmulHeuristicResult_t.allocateArray(want, a);
            MemorySegment count = a.allocate(ValueLayout.JAVA_INT);
            check(cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, ld, pref, want, results, count),
                    "cublasLtMatmulAlgoGetHeuristic(m=" + g.m() + ", n=" + g.n() + ", k=" + g.k() + ")");
            int n = count.get(ValueLayout.JAVA_INT, 0);
            for (int i = 0; i < n; i++) {
                MemorySegment r = cublasLtMatmulHeuristicResult_t.asSlice(results, i);
                if (cublasLtMatmulHeuristicResult_t.state(r) == CUBLAS_STATUS_SUCCESS()
                        && cublasLtMatmulHeuristicResult_t.workspaceSize(r) <= WORKSPACE_BYTES) {
                    MemorySegment algo = arena.allocate(cublasLtMatmulHeuristicResult_t.algo(r).byteSize(), 16);
                    algo.copyFrom(cublasLtMatmulHeuristicResult_t.algo(r));
                    return algo;
                }
            }
        } finally {
            if (pref != null) cublasLtMatmulPreferenceDestroy(pref);
        }
        return null;
    }

    /** How many cached products run an algorithm borrowed from their K rounded down (see {@link #useSiblingAlgoForOddK}). */
    public synchronized int borrowedAlgorithmPlans() {
        int n = 0;
        for (Plan p : plans.values()) if (p.fallback != null) n++;
        return n;
    }

    private void setInt(MemorySegment desc, int attr, int value) {
        try (Arena a = Arena.ofConfined()) {
            check(cublasLtMatmulDescSetAttribute(desc, attr, a.allocateFrom(ValueLayout.JAVA_INT, value), 4), "cublasLtMatmulDescSetAttribute(" + attr + ")");
        }
    }

    private MemorySegment layout(Type t, long[] rcl, int batch, long stride) {
        MemorySegment p = arena.allocate(ValueLayout.ADDRESS);
        check(cublasLtMatrixLayoutCreate(p, t.cuda(), rcl[0], rcl[1], rcl[2]), "cublasLtMatrixLayoutCreate");
        MemorySegment l = p.get(ValueLayout.ADDRESS, 0);
        if (batch > 1) {
            try (Arena a = Arena.ofConfined()) {
                check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT(), a.allocateFrom(ValueLayout.JAVA_INT, batch), 4), "set BATCH_COUNT");
                check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET(), a.allocateFrom(ValueLayout.JAVA_LONG, stride), 8), "set BATCH_OFFSET");
            }
        }
        return l;
    }

    @Override
    public synchronized void close() {
        for (Plan p : plans.values()) {
            cublasLtMatmulDescDestroy(p.desc);
            for (MemorySegment l : new MemorySegment[] {p.la, p.lb, p.lc, p.ld}) cublasLtMatrixLayoutDestroy(l);
        }
        plans.clear();
        allocator.free(workspace);
        cublasLtDestroy(handle);
        arena.close();
    }
}
