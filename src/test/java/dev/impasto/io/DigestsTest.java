package dev.impasto.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DigestsTest {
    @TempDir
    Path dir;

    @Test
    void fileDigestsMatchTheKnownValues() throws IOException {
        Path f = dir.resolve("abc.txt");
        Files.writeString(f, "abc");
        // FIPS 180-2 test vector
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Digests.sha256(f));
        // `git hash-object` of a file holding "abc": sha1 of "blob 3\0abc"
        MessageDigest git = Digests.of("SHA-1");
        git.update("blob 3\0".getBytes(StandardCharsets.UTF_8));
        assertEquals("f2ba8f84ab5c1bce84a7b441cb1959cfc7093b7f", Digests.hex(Digests.update(git, f)));
        // more than one 64 KiB read
        byte[] big = new byte[200_000];
        for (int i = 0; i < big.length; i++) big[i] = (byte) (i * 31);
        Path b = dir.resolve("big.bin");
        Files.write(b, big);
        assertEquals(Digests.hex(digestOf(big)), Digests.sha256(b));
    }

    static MessageDigest digestOf(byte[] data) {
        MessageDigest md = Digests.of("SHA-256");
        md.update(data);
        return md;
    }
}
