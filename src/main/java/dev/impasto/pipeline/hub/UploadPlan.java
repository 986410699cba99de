package dev.impasto.pipeline.hub;

import dev.impasto.io.Digests;
import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.Progress;
import dev.impasto.util.ProgressBar;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/** Every file of a repo folder with its size, sha256 (streamed, 1 MiB at a time) and the first 512 bytes. */
public record UploadPlan(String repoId, String repoType, String revision, List<Entry> files) {
    public record Entry(String path, Path local, long size, String sha256, byte[] sample) {
        /** The Hub's default rule when it is not asked: big or binary files go to LFS. */
        public boolean likelyLfs() {
            String n = path.toLowerCase(Locale.ROOT);
            return size > 10_000_000 || n.matches(".*\\.(safetensors|bin|pt|pth|ckpt|gguf|parquet|arrow|png|jpe?g|webp|zip|gz|tar)$");
        }
    }

    public static UploadPlan of(Path folder, String repoId, String repoType, String revision, PrintStream log) throws IOException {
        if (!repoId.matches("[A-Za-z0-9][\\w.-]*/[\\w.-]+"))
            throw new PipelineException("repo id '" + repoId + "' is not of the form owner/name");
        if (!List.of("model", "dataset", "space").contains(repoType))
            throw new PipelineException("repo type '" + repoType + "' is not model, dataset or space");
        List<Path> paths;
        try (Stream<Path> s = Files.walk(folder)) {
            paths = s.filter(Files::isRegularFile).sorted().toList();
        }
        long total = 0;
        for (Path p : paths) total += Files.size(p);
        List<Entry> out = new ArrayList<>();
        try (ProgressBar bar = Progress.bar("sha256", total, "B", log)) {
            for (Path p : paths) {
                String rel = folder.relativize(p).toString().replace('\\', '/');
                if (rel.startsWith(".git/") || rel.equals(".git")) continue;
                out.add(hash(rel, p, bar));
            }
        }
        return new UploadPlan(repoId, repoType, revision, List.copyOf(out));
    }

    static Entry hash(String rel, Path p, ProgressBar bar) throws IOException {
        MessageDigest md = Digests.of("SHA-256");
        byte[] sample = new byte[0];
        long size = 0;
        try (InputStream in = Files.newInputStream(p)) {
            byte[] buf = new byte[1 << 20];
            int n;
            while ((n = in.read(buf)) > 0) {
                if (sample.length < 512) {
                    int take = Math.min(n, 512 - sample.length);
                    byte[] s2 = java.util.Arrays.copyOf(sample, sample.length + take);
                    System.arraycopy(buf, 0, s2, sample.length, take);
                    sample = s2;
                }
                md.update(buf, 0, n);
                size += n;
                if (bar != null) bar.step(n);
            }
        }
        return new Entry(rel, p, size, Digests.hex(md), sample);
    }

    public long totalBytes() {
        return files.stream().mapToLong(Entry::size).sum();
    }

    /** What --dry-run prints. */
    public String describe() {
        StringBuilder sb = new StringBuilder();
        sb.append("plan: ").append(repoType).append(" repo ").append(repoId).append(" @ ").append(revision).append(", ")
                .append(files.size()).append(" files, ").append(Progress.bytes(totalBytes())).append('\n');
        sb.append("  1. create the repo (POST /api/repos/create; 409 = already exists)\n");
        sb.append("  2. preupload: ask the Hub which files go to LFS\n");
        sb.append("  3. LFS upload of new large files (basic PUT or multipart, then verify)\n");
        sb.append("  4. one commit with every file\n");
        for (Entry e : files)
            sb.append(String.format(Locale.ROOT, "  %-8s %12s  %s  %s%n", e.likelyLfs() ? "lfs?" : "regular?", Progress.bytes(e.size()),
                    e.sha256().substring(0, 16), e.path()));
        return sb.toString();
    }
}
