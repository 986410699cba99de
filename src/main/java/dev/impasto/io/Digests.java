package dev.impasto.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** Checksums of files (checkpoint integrity, Hub LFS oids and git blob ids). */
public final class Digests {
    private Digests() {}

    /** A fresh digest of an algorithm every JVM provides ("SHA-256", "SHA-1"). */
    public static MessageDigest of(String algorithm) {
        try {
            return MessageDigest.getInstance(algorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Feeds all of {@code file} to {@code md}, streamed 64 KiB at a time; returns {@code md}. */
    public static MessageDigest update(MessageDigest md, Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) md.update(buf, 0, n);
        }
        return md;
    }

    /** The digest as lower-case hex; the digest is reset. */
    public static String hex(MessageDigest md) {
        return HexFormat.of().formatHex(md.digest());
    }

    /** SHA-256 of the file as lower-case hex (what {@code sha256sum} prints and Hub LFS calls the oid). */
    public static String sha256(Path file) throws IOException {
        return hex(update(of("SHA-256"), file));
    }
}
