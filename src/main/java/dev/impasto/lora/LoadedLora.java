package dev.impasto.lora;

import dev.impasto.model.LoraGroup;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A LoRA file read for a model.
 *
 * @param groups           one group per adapted BFL module, in the model's layer order (the caller attaches or closes them)
 * @param format           the layout the file was written in
 * @param metadata         the file's safetensors {@code __metadata__}
 * @param unknownKeys      tensors that were NOT applied: names impasto does not recognise, adapter types it does not
 *                         implement (DoRA, LoHa, LoKr), LoRA on layers outside the transformer blocks, alphas without weights
 * @param notes            what the reader decided and why (alpha source, padding, splits and fusions, skipped key groups)
 * @param textEncoderKeys  text-encoder LoRA tensors; they are not applied
 */
public record LoadedLora(List<LoraGroup> groups, LoraFormat format, Map<String, String> metadata, List<String> unknownKeys,
                         List<String> notes, List<String> textEncoderKeys) {

    public LoadedLora {
        groups = List.copyOf(groups);
        metadata = Map.copyOf(metadata);
        unknownKeys = List.copyOf(unknownKeys);
        notes = List.copyOf(notes);
        textEncoderKeys = List.copyOf(textEncoderKeys);
    }

    /** Whether every tensor of the file was applied. */
    public boolean complete() {
        return unknownKeys.isEmpty() && textEncoderKeys.isEmpty();
    }

    public long parameterCount() {
        long n = 0;
        for (LoraGroup g : groups) n += g.parameterCount();
        return n;
    }

    /** A human-readable report: summary, notes, then every key that was not applied, one per line. */
    public List<String> report() {
        List<String> l = new ArrayList<>();
        Map<Integer, Integer> ranks = new TreeMap<>();
        for (LoraGroup g : groups) ranks.merge(g.rank, 1, Integer::sum);
        l.add("format: " + format.description());
        l.add("modules: " + groups.size() + " (" + parameterCount() + " parameters), ranks " + ranks);
        for (String n : notes) l.add("note: " + n);
        if (!textEncoderKeys.isEmpty()) {
            l.add("text-encoder LoRA keys are not applied (" + textEncoderKeys.size() + "):");
            for (String k : textEncoderKeys) l.add("  " + k);
        }
        if (!unknownKeys.isEmpty()) {
            l.add("keys not applied (" + unknownKeys.size() + "):");
            for (String k : unknownKeys) l.add("  " + k);
        }
        return l;
    }
}
