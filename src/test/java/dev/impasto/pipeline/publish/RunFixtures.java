package dev.impasto.pipeline.publish;

import dev.impasto.pipeline.TestImages;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import javax.imageio.ImageIO;

/** Stand-ins for what the trainer leaves in a run folder. */
final class RunFixtures {
    private RunFixtures() {}

    /** A safetensors file with LoRA keys in the given naming, {@code bytes} long (data random unless sparse). */
    static void lora(Path file, boolean kohya, long dataBytes, boolean sparse) throws IOException {
        long half = dataBytes / 2;
        String a = kohya ? "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight" : "transformer.transformer_blocks.0.attn.to_q.lora_A.weight";
        String b = kohya ? "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight" : "transformer.transformer_blocks.0.attn.to_q.lora_B.weight";
        String header = "{\"__metadata__\": {\"format\": \"pt\"}, \"" + a + "\": {\"dtype\": \"BF16\", \"shape\": [16, " + half / 32
                + "], \"data_offsets\": [0, " + half + "]}, \"" + b + "\": {\"dtype\": \"BF16\", \"shape\": [" + (dataBytes - half) / 32
                + ", 16], \"data_offsets\": [" + half + ", " + dataBytes + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
            f.write(h);
            if (sparse) f.setLength(8 + h.length + dataBytes);
            else {
                byte[] data = new byte[(int) dataBytes];
                new Random(dataBytes).nextBytes(data);
                f.write(data);
            }
        }
    }

    static Path run(Path dir, boolean diffusers, boolean kohya) throws IOException {
        Files.createDirectories(dir.resolve("samples"));
        if (diffusers) lora(dir.resolve("lora.safetensors"), false, 450_000, false);
        if (kohya) lora(dir.resolve("lora_kohya.safetensors"), true, 60_000, false);
        Files.writeString(dir.resolve("run.json"), "{\"trigger\": \"mnt_impr\", \"steps\": 2000, \"rank\": 16, \"learning_rate\": 0.0001,"
                + " \"sample_prompts\": [\"mnt_impr, a harbour at dawn\", \"mnt_impr, a woman with a parasol: windy day\", \"x\"]}");
        for (int i = 0; i < 3; i++) ImageIO.write(TestImages.painting(40 + i, 128, 128), "png", dir.resolve("samples/sample_" + i + ".png").toFile());
        Files.writeString(dir.resolve("samples/sample_2.txt"), "mnt_impr, still life with \"pears\"");
        ImageIO.write(TestImages.painting(50, 200, 120), "png", dir.resolve("loss.png").toFile());
        return dir;
    }
}
