package dev.impasto.pipeline.publish;

import com.fasterxml.jackson.databind.JsonNode;
import dev.impasto.pipeline.Json;
import java.util.List;
import java.util.Map;

/** The README.md of a FLUX.1-dev LoRA repo: Hub front matter (widget, license, tags) and a usable body. */
public final class ModelCard {
    public static final String BASE_MODEL = "black-forest-labs/FLUX.1-dev";
    public static final String LICENSE_NAME = "flux-1-dev-non-commercial-license";
    public static final String LICENSE_LINK = "https://huggingface.co/black-forest-labs/FLUX.1-dev/blob/main/LICENSE.md";

    /** A sample image with the prompt that made it, path relative to the repo root. */
    public record Sample(String path, String prompt) {}

    private ModelCard() {}

    /** A YAML double-quoted scalar (JSON string syntax is valid YAML). */
    static String q(String s) {
        return Json.line(s == null ? "" : s);
    }

    public static String frontMatter(String trigger, List<Sample> widget) {
        StringBuilder y = new StringBuilder("---\n");
        y.append("base_model: ").append(BASE_MODEL).append('\n');
        y.append("instance_prompt: ").append(q(trigger)).append('\n');
        y.append("license: other\n");
        y.append("license_name: ").append(LICENSE_NAME).append('\n');
        y.append("license_link: ").append(LICENSE_LINK).append('\n');
        y.append("tags:\n- text-to-image\n- flux\n- lora\n- diffusers\n");
        if (!widget.isEmpty()) {
            y.append("widget:\n");
            for (Sample s : widget) y.append("- text: ").append(q(s.prompt())).append("\n  output:\n    url: ").append(s.path()).append('\n');
        }
        y.append("library_name: diffusers\n");
        y.append("---\n");
        return y.toString();
    }

    /**
     * @param diffusersFile repo path of the diffusers-named LoRA, or null
     * @param kohyaFile repo path of the kohya-named LoRA, or null
     */
    public static String render(String repoId, String trigger, List<Sample> samples, String diffusersFile, String kohyaFile,
                                SafetensorsInfo info, JsonNode runConfig, boolean hasGrid, boolean hasLoss, String datasetRepo) {
        StringBuilder md = new StringBuilder(frontMatter(trigger, samples));
        String name = repoId.substring(repoId.indexOf('/') + 1);
        md.append("\n# ").append(name).append("\n\n");
        md.append("A style LoRA for [FLUX.1-dev](https://huggingface.co/").append(BASE_MODEL).append("), trained with impasto");
        if (datasetRepo != null) md.append(" on [").append(datasetRepo).append("](https://huggingface.co/datasets/").append(datasetRepo).append(')');
        md.append(".\n\n");
        md.append("## Trigger word\n\nPut `").append(trigger).append("` in the prompt, e.g. `").append(trigger)
                .append(", a harbour at dawn with fishing boats`. Captions described the content only, so the trigger carries the style.\n\n");
        if (hasGrid) md.append("## Samples\n\n![samples](samples_grid.png)\n\n");
        md.append("## Files\n\n| file | for |\n|---|---|\n");
        if (diffusersFile != null) md.append("| `").append(diffusersFile).append("` | diffusers (`load_lora_weights`), peft key names |\n");
        if (kohyaFile != null) md.append("| `").append(kohyaFile).append("` | ComfyUI, Forge, kohya sd-scripts (`lora_unet_*` key names) |\n");
        md.append("| `training_config.json` | the full training configuration |\n");
        if (info != null)
            md.append("\n").append(info.tensors()).append(" tensors").append(info.rank() > 0 ? ", rank " + info.rank() : "").append(".\n");
        md.append("\n## Use with diffusers\n\n```python\nimport torch\nfrom diffusers import FluxPipeline\n\n")
                .append("pipe = FluxPipeline.from_pretrained(\"").append(BASE_MODEL).append("\", torch_dtype=torch.bfloat16).to(\"cuda\")\n");
        if (diffusersFile != null)
            md.append("pipe.load_lora_weights(\"").append(repoId).append("\", weight_name=\"").append(diffusersFile).append("\")\n");
        else
            md.append("pipe.load_lora_weights(\"").append(repoId).append("\", weight_name=\"").append(kohyaFile).append("\")  # diffusers converts kohya keys\n");
        md.append("image = pipe(\"").append(trigger.replace("\"", "\\\"")).append(", a harbour at dawn with fishing boats\", num_inference_steps=28, guidance_scale=3.5).images[0]\n")
                .append("image.save(\"out.png\")\n```\n");
        if (runConfig != null && runConfig.isObject()) {
            md.append("\n## Training\n\n| setting | value |\n|---|---|\n");
            for (Map.Entry<String, JsonNode> e : runConfig.properties())
                if (e.getValue().isValueNode()) {
                    JsonNode v = e.getValue();
                    String text = v.isFloatingPointNumber() ? v.decimalValue().stripTrailingZeros().toPlainString() : v.asText();
                    md.append("| ").append(e.getKey()).append(" | ").append(text.replace("|", "\\|")).append(" |\n");
                }
            md.append("\nEverything is in `training_config.json`.\n");
        }
        if (hasLoss) md.append("\n![training loss](loss.png)\n");
        md.append("\n## License\n\nThe weights are a derivative of FLUX.1-dev and fall under the [FLUX.1 [dev] Non-Commercial License](")
                .append(LICENSE_LINK).append(").\n");
        return md.toString();
    }
}
