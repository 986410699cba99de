package dev.impasto.bindings;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.impasto.bindings.cuda.cuda_h;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The generated bindings are made without jextract's -l option, so they resolve symbols in libraries that were
 * loaded with System.load from the same class loader. This test builds a stub library (with the C compiler, when
 * there is one) exporting a few CUDA / cuBLASLt / libtorch entry points and calls them through the bindings.
 * It runs in a class loader of its own so the stub never becomes visible to the rest of the test JVM.
 */
class BindingsSymbolLookupTest {

    private static final String STUB_C = """
            #include <stdint.h>
            #include <stddef.h>
            int cuDriverGetVersion(int *v) { *v = 13000; return 0; }
            int cuDeviceGetCount(int *c) { *c = 3; return 0; }
            int cuGetErrorName(int e, const char **s) {
                if (e == 2) { *s = "CUDA_ERROR_OUT_OF_MEMORY"; return 0; }
                *s = 0; return 1;
            }
            size_t cublasLtGetVersion(void) { return 130100; }
            uint64_t aoti_torch_abi_version(void) { return 0x020b000000000000ULL; }
            int32_t aoti_torch_get_dim(void *tensor, int64_t *ret_dim) { *ret_dim = (int64_t)(intptr_t)tensor * 2; return 0; }
            """;

    @Test
    void symbolsResolveFromALibraryLoadedWithSystemLoad(@TempDir Path dir) throws Exception {
        Path source = dir.resolve("stub.c");
        Files.writeString(source, STUB_C);
        Path library = dir.resolve("libimpasto_stub.so");
        assumeTrue(compile(source, library), "no C compiler (cc) here to build the stub library");

        URL[] classpath = {
                cuda_h.class.getProtectionDomain().getCodeSource().getLocation(),
                StubLibraryCalls.class.getProtectionDomain().getCodeSource().getLocation()};
        try (URLClassLoader isolated = new URLClassLoader(classpath, ClassLoader.getPlatformClassLoader())) {
            Class<?> calls = Class.forName(StubLibraryCalls.class.getName(), true, isolated);
            assertEquals(isolated, calls.getClassLoader());
            Object[] r = (Object[]) calls.getMethod("callThroughBindings", String.class)
                    .invoke(null, library.toAbsolutePath().toString());
            assertArrayEquals(new Object[] {0, 0, 13000, 0, 3, 0, "CUDA_ERROR_OUT_OF_MEMORY", 130100L,
                    0x020b000000000000L, 0, 10L}, r);
        }
    }

    private static boolean compile(Path source, Path library) throws InterruptedException {
        try {
            Process p = new ProcessBuilder("cc", "-shared", "-fPIC", "-O1", "-o", library.toString(), source.toString())
                    .redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new AssertionError("cc failed on the stub library:\n" + log);
            }
            return true;
        } catch (IOException noCompiler) {
            return false;
        }
    }
}
