package dev.impasto.api;

import dev.impasto.lora.LoadedLora;
import dev.impasto.lora.LoraFileReader;
import dev.impasto.model.FluxModel;
import dev.impasto.model.LoraGroup;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The named LoRA files a generator offers, and which one its model carries now (loaded on first use, swapped on demand). */
final class LoraSwitch {
    private final Map<String, Path> files = new LinkedHashMap<>();
    private String attached;

    LoraSwitch(Map<String, Path> files) {
        this.files.putAll(files);
    }

    List<String> names() {
        return new ArrayList<>(files.keySet());
    }

    /** Puts LoRA {@code name} on the model (null: leave the model as it is; strength 0 then gives the base). */
    void select(FluxModel model, String name) {
        if (name == null || name.equals(attached)) return;
        Path file = files.get(name);
        if (file == null) throw new IllegalArgumentException("unknown LoRA \"" + name + "\" (available: " + files.keySet() + ")");
        detach(model);
        try {
            LoadedLora l = LoraFileReader.read(file, model.config, model.backend, model.dtype);
            if (!l.unknownKeys().isEmpty()) {
                l.groups().forEach(LoraGroup::close);
                throw new IllegalArgumentException(file + ": keys that match no layer: " + l.unknownKeys());
            }
            model.attachLoraGroups(l.groups());
            attached = name;
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot load LoRA " + file + ": " + e.getMessage(), e);
        }
    }

    void detach(FluxModel model) {
        for (LoraGroup g : model.detachLora()) g.close();
        attached = null;
    }
}
