package dev.impasto.pipeline.publish;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import dev.impasto.pipeline.PipelineException;
import dev.impasto.pipeline.image.ContactSheet;
import dev.impasto.pipeline.image.ImageInspector;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

/**
 * Lays out a model repo from a training run folder: {@code lora.safetensors} (diffusers/peft key names) and/or
 * {@code lora_kohya.safetensors} (kohya key names), {@code run.json}, {@code samples/*.png} (prompt from a
 * {@code .txt} beside each, or run.json's {@code sample_prompts}), {@code loss.png}.
 */
public final class ModelRepoBuilder {
    public static final String DIFFUSERS_NAME = "pytorch_lora_weights.safetensors";
    public static final String KOHYA_NAME = "lora_kohya.safetensors";

    public record Result(Path folder, List<String> files, String trigger) {}

    private ModelRepoBuilder() {}

    public static Result build(Path run, Path out, String repoId, String triggerOption, String datasetRepo) throws IOException {
        if (!Files.isDirectory(run)) throw new PipelineException("run folder " + run + " does not exist");
        Path diffusers = run.resolve("lora.safetensors"), kohya = run.resolve("lora_kohya.safetensors");
        boolean hasD = Files.isRegularFile(diffusers), hasK = Files.isRegularFile(kohya);
        if (!hasD && !hasK)
            throw new PipelineException(run + ": no lora.safetensors (diffusers naming) or lora_kohya.safetensors (kohya naming); is this a training run folder?");
        SafetensorsInfo info = null;
        if (hasD) {
            info = SafetensorsInfo.read(diffusers);
            if (info.naming() == SafetensorsInfo.Naming.KOHYA)
                throw new PipelineException(diffusers + " has kohya key names (lora_unet_...); name it lora_kohya.safetensors");
        }
        if (hasK) {
            SafetensorsInfo k = SafetensorsInfo.read(kohya);
            if (k.naming() == SafetensorsInfo.Naming.DIFFUSERS)
                throw new PipelineException(kohya + " has diffusers key names (transformer....lora_A); name it lora.safetensors");
            if (info == null) info = k;
        }
        JsonNode config = Files.isRegularFile(run.resolve("run.json")) ? Json.read(run.resolve("run.json")) : null;
        String trigger = triggerOption;
        if (trigger == null && config != null) trigger = config.path("trigger").asText(config.path("trigger_word").asText(null));
        if (trigger == null || trigger.isBlank())
            throw new PipelineException("no trigger word: pass --trigger or put \"trigger\" in " + run.resolve("run.json"));

        RepoFolder.fresh(out);
        List<String> files = new ArrayList<>();
        if (hasD) { RepoFolder.place(diffusers, out.resolve(DIFFUSERS_NAME)); files.add(DIFFUSERS_NAME); }
        if (hasK) { RepoFolder.place(kohya, out.resolve(KOHYA_NAME)); files.add(KOHYA_NAME); }
        if (config != null) {
            Json.writePretty(out.resolve("training_config.json"), config);
            files.add("training_config.json");
        }
        List<ModelCard.Sample> samples = new ArrayList<>();
        Path sampleDir = run.resolve("samples");
        if (Files.isDirectory(sampleDir)) {
            List<Path> pngs;
            try (Stream<Path> s = Files.list(sampleDir)) {
                pngs = s.filter(p -> p.getFileName().toString().toLowerCase(Locale.ROOT).matches(".*\\.(png|jpe?g|webp)$")).sorted().toList();
            }
            JsonNode prompts = config == null ? null : config.path("sample_prompts");
            int cell = 384;
            if (!pngs.isEmpty()) {
                ImageInspector.Header h = header(pngs.getFirst());
                cell = Math.max(128, Math.min(512, Math.max(h.width(), h.height())));
            }
            ContactSheet grid = pngs.isEmpty() ? null : new ContactSheet(null, pngs.size(), Math.min(4, pngs.size()), cell);
            for (int i = 0; i < pngs.size(); i++) {
                Path p = pngs.get(i);
                String name = p.getFileName().toString();
                Path txt = p.resolveSibling(name.replaceAll("\\.[^.]+$", "") + ".txt");
                String prompt = Files.isRegularFile(txt) ? Files.readString(txt).strip()
                        : prompts != null && prompts.isArray() && i < prompts.size() ? promptText(prompts.get(i)) : trigger;
                RepoFolder.place(p, out.resolve("samples").resolve(name));
                files.add("samples/" + name);
                samples.add(new ModelCard.Sample("samples/" + name, prompt));
                BufferedImage img = ImageIO.read(p.toFile());
                if (img == null) throw new PipelineException(p + ": not a readable image");
                grid.add(img, prompt);
            }
            if (grid != null) {
                grid.write(out.resolve("samples_grid.png"));
                files.add("samples_grid.png");
            }
        }
        boolean hasLoss = Files.isRegularFile(run.resolve("loss.png"));
        if (hasLoss) { RepoFolder.place(run.resolve("loss.png"), out.resolve("loss.png")); files.add("loss.png"); }
        Files.writeString(out.resolve("README.md"), ModelCard.render(repoId, trigger, samples, hasD ? DIFFUSERS_NAME : null,
                hasK ? KOHYA_NAME : null, info, config, !samples.isEmpty(), hasLoss, datasetRepo));
        files.add("README.md");
        return new Result(out, files, trigger);
    }

    private static ImageInspector.Header header(Path p) throws IOException {
        try {
            return ImageInspector.header(Files.readAllBytes(p));
        } catch (ImageInspector.Rejected r) {
            throw new PipelineException(p + ": not a readable image (" + r.getMessage() + ")");
        }
    }

    private static String promptText(JsonNode n) {
        return n.isTextual() ? n.asText() : n.path("prompt").asText("");
    }
}
