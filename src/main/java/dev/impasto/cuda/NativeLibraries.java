package dev.impasto.cuda;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * Finds and loads the native libraries impasto calls: the CUDA driver (libcuda.so.1), cuBLASLt and, optionally,
 * libtorch. Nothing relies on LD_LIBRARY_PATH: each library is searched for in
 * <ol>
 *   <li>its environment override (IMPASTO_CUDA_LIB_DIR for the driver and cuBLASLt, IMPASTO_CUBLAS_LIB_DIR for
 *       cuBLASLt alone, IMPASTO_LIBTORCH_DIR for libtorch; IMPASTO_LIBTORCH=off disables libtorch),</li>
 *   <li>the standard install locations (driver: /usr/lib/x86_64-linux-gnu, /usr/lib64, /usr/local/nvidia/lib64, ...;
 *       CUDA toolkit: $CUDA_HOME, /usr/local/cuda, /usr/local/cuda-13.x, /usr/local/cuda-12.x),</li>
 *   <li>the PyTorch installation that python3 reports (libtorch, and the NVIDIA wheels beside it for cuBLASLt),</li>
 *   <li>the dynamic linker's cache (ldconfig -p).</li>
 * </ol>
 * The libraries are loaded with System.load(absolute path), which is what the jextract bindings resolve symbols
 * through. The search itself is a pure function of the environment and the file system, so it is unit-tested.
 */
public final class NativeLibraries {
    /** One library's search: what was looked for, where, and what was found (null if nothing). */
    public record Search(String library, List<String> fileNames, List<Path> tried, Path found) {
        public boolean ok() {
            return found != null;
        }

        public String describe() {
            if (ok()) return library + ": " + found;
            return library + ": not found (looked for " + String.join(" or ", fileNames) + " in "
                    + (tried.isEmpty() ? "no directory" : tried.stream().map(Path::toString).reduce((a, b) -> a + ", " + b).orElse("")) + ")";
        }
    }

    /** What load() found and loaded. libtorch may be absent; its absence is not an error. */
    public record Status(Search cuda, Search cublasLt, Search torch, String torchSkippedReason, Throwable loadError) {
        public boolean cudaLoaded() {
            return cuda.ok() && cublasLt.ok() && loadError == null;
        }

        public boolean torchLoaded() {
            return cudaLoaded() && torch != null && torch.ok();
        }

        /** One message naming everything that is missing and where it was looked for. */
        public String problem() {
            List<String> l = new ArrayList<>();
            if (!cuda.ok()) l.add(cuda.describe() + ". Install the NVIDIA driver, or set IMPASTO_CUDA_LIB_DIR to the folder holding libcuda.so.1.");
            if (!cublasLt.ok()) l.add(cublasLt.describe() + ". Install the CUDA toolkit's cuBLAS (or PyTorch's nvidia-cublas wheel), or set IMPASTO_CUBLAS_LIB_DIR.");
            if (loadError != null) l.add("loading failed: " + loadError.getMessage());
            return String.join("\n", l);
        }
    }

    private static Status status;
    private static Search nccl;

    /**
     * Finds and loads NCCL (libnccl.so.2) for multi-GPU training: IMPASTO_NCCL_LIB_DIR, the system library folders,
     * PyTorch's nvidia-nccl wheel, the linker cache. Throws {@link CudaUnavailableException} naming where it looked.
     */
    public static synchronized Search loadNccl() {
        if (nccl != null && nccl.ok()) return nccl;
        Map<String, String> env = System.getenv();
        List<Path> dirs = new ArrayList<>();
        addEnv(dirs, env, "IMPASTO_NCCL_LIB_DIR");
        for (String d : List.of("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")) dirs.add(Path.of(d));
        if (!"off".equalsIgnoreCase(env.getOrDefault("IMPASTO_LIBTORCH", "")))
            pythonTorchDir().ifPresent(t -> dirs.add(t.getParent().resolve("nvidia/nccl/lib")));
        nccl = find("NCCL", List.of("libnccl.so.2", "libnccl.so"), dirs, Files::isRegularFile);
        if (!nccl.ok())
            throw new CudaUnavailableException(nccl.describe() + ". Install NCCL (libnccl2) or set IMPASTO_NCCL_LIB_DIR for multi-GPU training.");
        System.load(nccl.found().toString());
        return nccl;
    }

    private NativeLibraries() {}

    /** Loads the libraries once; later calls return the same status. Never throws. */
    public static synchronized Status load() {
        if (status != null) return status;
        Map<String, String> env = System.getenv();
        Predicate<Path> exists = Files::isRegularFile;
        Search cuda = find("CUDA driver", List.of("libcuda.so.1", "libcuda.so"), driverDirs(env), exists);
        List<Path> torchDirs = new ArrayList<>();
        String torchSkip = null;
        if ("off".equalsIgnoreCase(env.getOrDefault("IMPASTO_LIBTORCH", ""))) torchSkip = "disabled by IMPASTO_LIBTORCH=off";
        else torchDirs.addAll(torchDirs(env, NativeLibraries::pythonTorchDir));
        Search cublas = find("cuBLASLt", List.of("libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"),
                cublasDirs(env, torchDirs), exists);
        Search torch = torchSkip != null ? null : find("libtorch", List.of("libtorch_cuda.so"), torchDirs, exists);
        Throwable err = null;
        if (cuda.ok() && cublas.ok()) {
            try {
                System.load(cuda.found().toString());
                System.load(cublas.found().toString());
            } catch (Throwable t) {
                err = t;
            }
        }
        if (err == null && torch != null && torch.ok()) {
            try {
                Path dir = torch.found().getParent();
                for (String lib : List.of("libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so")) {
                    Path p = dir.resolve(lib);
                    if (Files.isRegularFile(p)) System.load(p.toString());
                }
            } catch (Throwable t) {
                torchSkip = "found at " + torch.found() + " but loading failed: " + t.getMessage();
                torch = new Search("libtorch", torch.fileNames(), torch.tried(), null);
            }
        }
        status = new Status(cuda, cublas, torch, torchSkip, err);
        return status;
    }

    static Search find(String what, List<String> names, List<Path> dirs, Predicate<Path> exists) {
        List<Path> tried = new ArrayList<>(new LinkedHashSet<>(dirs));
        for (Path d : tried)
            for (String n : names) {
                Path p = d.resolve(n);
                if (exists.test(p)) return new Search(what, names, tried, p.toAbsolutePath());
            }
        for (String n : names) {
            Optional<Path> cached = ldconfigLookup(n);
            if (cached.isPresent() && exists.test(cached.get())) return new Search(what, names, tried, cached.get());
        }
        return new Search(what, names, tried, null);
    }

    static List<Path> driverDirs(Map<String, String> env) {
        List<Path> l = new ArrayList<>();
        addEnv(l, env, "IMPASTO_CUDA_LIB_DIR");
        for (String d : List.of("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu",
                "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/wsl/lib", "/usr/lib/aarch64-linux-gnu"))
            l.add(Path.of(d));
        return l;
    }

    static List<Path> cublasDirs(Map<String, String> env, List<Path> torchLibDirs) {
        List<Path> l = new ArrayList<>();
        addEnv(l, env, "IMPASTO_CUBLAS_LIB_DIR");
        addEnv(l, env, "IMPASTO_CUDA_LIB_DIR");
        for (String var : List.of("CUDA_HOME", "CUDA_PATH")) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) {
                l.add(Path.of(v, "lib64"));
                l.add(Path.of(v, "targets", "x86_64-linux", "lib"));
            }
        }
        l.add(Path.of("/usr/local/cuda/lib64"));
        l.add(Path.of("/usr/local/cuda/targets/x86_64-linux/lib"));
        for (String glob : List.of("cuda-13", "cuda-12")) l.addAll(versionedToolkits(Path.of("/usr/local"), glob));
        l.add(Path.of("/usr/lib/x86_64-linux-gnu"));
        // PyTorch's NVIDIA wheels sit beside torch/: site-packages/nvidia/{cu13,cublas}/lib
        for (Path t : torchLibDirs) {
            Path pkg = t.getParent();
            Path site = pkg == null || pkg.getFileName() == null || !pkg.getFileName().toString().equals("torch") ? null : pkg.getParent();
            if (site != null) {
                l.add(site.resolve("nvidia/cu13/lib"));
                l.add(site.resolve("nvidia/cublas/lib"));
            }
        }
        return l;
    }

    private static List<Path> versionedToolkits(Path parent, String prefix) {
        try (Stream<Path> s = Files.list(parent)) {
            return s.filter(p -> p.getFileName().toString().startsWith(prefix))
                    .sorted((a, b) -> b.getFileName().toString().compareTo(a.getFileName().toString()))
                    .flatMap(p -> Stream.of(p.resolve("targets/x86_64-linux/lib"), p.resolve("lib64")))
                    .toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    interface TorchLocator {
        Optional<Path> torchPackageDir();
    }

    static List<Path> torchDirs(Map<String, String> env, TorchLocator python) {
        List<Path> l = new ArrayList<>();
        String dir = env.get("IMPASTO_LIBTORCH_DIR");
        if (dir != null && !dir.isBlank()) {
            l.add(Path.of(dir));
            l.add(Path.of(dir, "lib"));
            return l; // an explicit choice is the only choice
        }
        String libtorch = env.get("LIBTORCH");
        if (libtorch != null && !libtorch.isBlank()) l.add(Path.of(libtorch, "lib"));
        python.torchPackageDir().ifPresent(p -> l.add(p.resolve("lib")));
        l.add(Path.of("/opt/libtorch/lib"));
        return l;
    }

    private static Optional<Path> pythonTorchDir() {
        for (String py : List.of("python3", "python")) {
            try {
                Process p = new ProcessBuilder(py, "-c", "import os, torch; print(os.path.dirname(torch.__file__))")
                        .redirectErrorStream(false).redirectError(ProcessBuilder.Redirect.DISCARD).start();
                if (!p.waitFor(30, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    continue;
                }
                String out = new String(p.getInputStream().readAllBytes()).trim();
                if (p.exitValue() == 0 && !out.isEmpty()) return Optional.of(Path.of(out.lines().reduce((a, b) -> b).orElse(out)));
            } catch (IOException e) {
                // no such interpreter
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return Optional.empty();
            }
        }
        return Optional.empty();
    }

    private static Optional<Path> ldconfigLookup(String name) {
        for (String exe : List.of("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig")) {
            try {
                Process p = new ProcessBuilder(exe, "-p").redirectError(ProcessBuilder.Redirect.DISCARD).start();
                String out = new String(p.getInputStream().readAllBytes());
                p.waitFor(10, TimeUnit.SECONDS);
                return parseLdconfig(out, name);
            } catch (IOException e) {
                // try the next location
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        return Optional.empty();
    }

    /** The path ldconfig -p lists for an exact library file name (x86-64 entries preferred). */
    static Optional<Path> parseLdconfig(String output, String name) {
        Path any = null;
        for (String line : output.split("\n")) {
            line = line.strip();
            if (!line.startsWith(name + " ")) continue;
            int arrow = line.indexOf("=>");
            if (arrow < 0) continue;
            Path p = Path.of(line.substring(arrow + 2).strip());
            if (line.contains("x86-64") || line.contains("x86_64")) return Optional.of(p);
            if (any == null) any = p;
        }
        return Optional.ofNullable(any);
    }

    private static void addEnv(List<Path> l, Map<String, String> env, String var) {
        String v = env.get(var);
        if (v != null && !v.isBlank()) for (String part : v.split(":")) if (!part.isBlank()) l.add(Path.of(part));
    }
}
