package dev.impasto.tensor;

import dev.impasto.tensor.cpu.CpuBackend;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Differential op checking on real model traffic: every tensor of the wrapped (fast) backend has a CPU mirror; each
 * op runs on both with identical inputs (the mirrors are resynchronised from the fast backend before every op), and
 * every tensor argument is compared after it. A mismatch names the op, the argument, its shape and stride and the
 * relative error: the first op that computes something different from the reference, isolated from error build-up.
 */
public final class MirrorBackend {
    public record Mismatch(String op, int arg, String tensor, double relErr) {}

    private static final Set<String> CREATE = Set.of("empty", "zeros", "fromDoubles", "fromFloats", "fromBytes");
    private static final Set<String> PASS = Set.of("name", "isGpu", "toDoubles", "toFloats", "toBytes", "synchronize", "bytesInUse",
            "peakBytes", "resetPeak", "close", "hasNonFinite", "hashCode", "equals", "toString");

    private MirrorBackend() {}

    public static Backend wrap(Backend fast, double tol, List<Mismatch> out) {
        CpuBackend cpu = new CpuBackend();
        Map<Tensor.Storage, Tensor> owners = new IdentityHashMap<>();
        Map<Tensor.Storage, Tensor> fastOwners = new IdentityHashMap<>();
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (p, m, args) -> {
            String op = m.getName();
            if (PASS.contains(op) || m.isDefault() && CREATE.contains(op) == false && args == null) return invoke(m, fast, args);
            if (CREATE.contains(op)) {
                Tensor t = (Tensor) invoke(m, fast, args);
                Tensor c = cpu.empty(t.dtype(), t.shape());
                try (Tensor tmp = cpu.fromDoubles(fast.toDoubles(t), t.dtype(), t.shape())) {
                    cpu.copy(c, tmp);
                }
                owners.put(t.storage(), c);
                fastOwners.put(t.storage(), t);
                return t;
            }
            Object[] cargs = args == null ? null : new Object[args.length];
            List<Tensor[]> pairs = new ArrayList<>();
            if (args != null) for (int i = 0; i < args.length; i++) cargs[i] = mirror(args[i], owners, fast, cpu, pairs);
            Object r = invoke(m, fast, args);
            try {
                invoke(m, cpu, cargs);
            } catch (RuntimeException e) {
                out.add(new Mismatch(op, -1, "CPU reference threw " + e, Double.NaN));
                resync(pairs, fast, cpu);
                return r;
            }
            for (int i = 0; i < pairs.size(); i++) {
                Tensor f = pairs.get(i)[0], c = pairs.get(i)[1];
                double e = relL2SameGarbage(fast.toDoubles(f), cpu.toDoubles(c));
                double t = f.dtype() == DType.F32 ? tol : Math.max(tol, 2e-2);
                if (!(e <= t)) out.add(new Mismatch(op, i, f + " offset " + f.offset() + " stride " + f.rowStride(), e));
            }
            resync(pairs, fast, cpu);
            return r;
        });
    }

    /** Relative L2 error where positions equal on both sides (unwritten garbage, NaN included) count as equal. */
    static double relL2SameGarbage(double[] a, double[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            if (Double.doubleToLongBits(a[i]) == Double.doubleToLongBits(b[i])) {
                if (Double.isFinite(b[i])) den += b[i] * b[i];
                continue;
            }
            double d = a[i] - b[i];
            if (!Double.isFinite(d)) return Double.POSITIVE_INFINITY;
            num += d * d;
            den += b[i] * b[i];
        }
        return num == 0 ? 0 : Math.sqrt(num / Math.max(den, 1e-300));
    }

    private static Object invoke(Method m, Object target, Object[] args) throws Throwable {
        try {
            return m.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    private static void resync(List<Tensor[]> pairs, Backend fast, CpuBackend cpu) {
        for (Tensor[] pr : pairs) {
            try (Tensor tmp = cpu.fromDoubles(fast.toDoubles(pr[0]), pr[0].dtype(), pr[0].rows(), pr[0].cols())) {
                cpu.copy(pr[1], tmp);
            }
        }
    }

    /** The CPU counterpart of an argument (tensors, lists of tensors, linear weights); records tensor pairs. */
    private static Object mirror(Object a, Map<Tensor.Storage, Tensor> owners, Backend fast, CpuBackend cpu, List<Tensor[]> pairs) {
        if (a instanceof Tensor t) {
            Tensor owner = owners.get(t.storage());
            if (owner == null) throw new IllegalStateException("tensor " + t + " was not created through the mirror");
            Tensor c = owner.strided(t.offset(), t.rowStride(), t.shape());
            // bring the mirror to the fast backend's current contents first (ops write some tensors partially)
            try (Tensor tmp = cpu.fromDoubles(fast.toDoubles(t), t.dtype(), t.rows(), t.cols())) {
                cpu.copy(c, tmp);
            }
            pairs.add(new Tensor[] {t, c});
            return c;
        }
        if (a instanceof List<?> l) {
            List<Object> out = new ArrayList<>();
            for (Object o : l) out.add(mirror(o, owners, fast, cpu, pairs));
            return out;
        }
        if (a instanceof LinearWeight w) return mirrorWeight(w, owners, fast, cpu, pairs);
        return a;
    }

    private static LinearWeight mirrorWeight(LinearWeight w, Map<Tensor.Storage, Tensor> owners, Backend fast, CpuBackend cpu, List<Tensor[]> pairs) {
        java.util.function.Function<Tensor, Tensor> m = t -> t == null ? null : (Tensor) mirror(t, owners, fast, cpu, new ArrayList<>());
        return switch (w) {
            case LinearWeight.Dense d -> new LinearWeight.Dense(m.apply(d.w()));
            case LinearWeight.Nf4 n -> new LinearWeight.Nf4(m.apply(n.packed()), m.apply(n.absmax()), m.apply(n.nestedAbsmax()), m.apply(n.nestedCode()),
                    n.nestedOffset(), n.blocksize(), n.nestedBlocksize(), n.outFeatures(), n.inFeatures());
            case LinearWeight.Int8 q -> new LinearWeight.Int8(m.apply(q.q()), m.apply(q.scale()), q.outFeatures(), q.inFeatures());
            case LinearWeight.Int4 q -> new LinearWeight.Int4(m.apply(q.packed()), m.apply(q.scale()), m.apply(q.min()), q.groupSize(), q.outFeatures(), q.inFeatures());
            case LinearWeight.Gguf g -> new LinearWeight.Gguf(m.apply(g.blocks()), g.ggmlType(), g.typeName(), g.outFeatures(), g.inFeatures());
            case LinearWeight.Stacked s -> new LinearWeight.Stacked(s.parts().stream().map(p -> mirrorWeight(p, owners, fast, cpu, pairs)).toList());
        };
    }
}
