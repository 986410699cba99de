package dev.impasto.tensor;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A debugging decorator: after every op it checks every tensor argument for NaN/Inf and throws naming the FIRST op
 * whose arguments turned non-finite (the arguments were finite after the previous op, so it is that op's output).
 * Slow (one synchronisation per tensor per op); for tests that hunt a numerical bug.
 */
public final class FiniteCheckingBackend {
    private FiniteCheckingBackend() {}

    public static Backend wrap(Backend real, List<String> log) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (p, m, args) -> {
            Object r;
            try {
                r = m.invoke(real, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
            if (args == null || m.getName().equals("fill") || m.getName().equals("hasNonFinite") || m.getName().equals("empty")
                    || m.getName().startsWith("to") || m.getName().equals("close")) return r;
            List<Tensor> ts = new ArrayList<>();
            for (Object a : args) {
                if (a instanceof Tensor t) ts.add(t);
                else if (a instanceof List<?> l) for (Object o : l) if (o instanceof Tensor t) ts.add(t);
            }
            for (int i = 0; i < ts.size(); i++) {
                Tensor t = ts.get(i);
                if (t.storage().released()) continue;
                if (real.hasNonFinite(List.of(t))) {
                    String msg = "op " + m.getName() + " left tensor argument " + i + " " + t + " non-finite; args: " + Arrays.toString(args);
                    log.add(msg);
                    throw new IllegalStateException(msg);
                }
            }
            return r;
        });
    }
}
