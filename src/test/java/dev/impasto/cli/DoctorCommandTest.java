package dev.impasto.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The NVIDIA driver release that `impasto doctor` prints, read from /proc/driver/nvidia/version. */
class DoctorCommandTest {
    @Test
    void driverReleaseComesFromTheKernelModuleLine(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("version");
        Files.writeString(f, "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Tue Oct  7 12:00:00 UTC 2025\n"
                + "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n");
        assertEquals("580.159.04", DoctorCommand.nvidiaDriverRelease(f));
        Files.writeString(f, "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build\n");
        assertEquals("570.86.15", DoctorCommand.nvidiaDriverRelease(f));
        Files.writeString(f, "something else\n");
        assertNull(DoctorCommand.nvidiaDriverRelease(f));
        assertNull(DoctorCommand.nvidiaDriverRelease(tmp.resolve("missing")));
    }
}
