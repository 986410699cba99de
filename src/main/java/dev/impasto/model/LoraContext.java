package dev.impasto.model;

/**
 * Per-call LoRA settings: the strength multiplier (0 = base model only; 1 = as trained), whether this is a training
 * pass (dropout on) and the seed of this step's dropout masks.
 */
public record LoraContext(double loraScale, boolean training, long dropoutSeed) {
    public static final LoraContext INFERENCE = new LoraContext(1, false, 0);
    public static final LoraContext BASE_ONLY = new LoraContext(0, false, 0);

    public static LoraContext training(long seed) {
        return new LoraContext(1, true, seed);
    }
}
