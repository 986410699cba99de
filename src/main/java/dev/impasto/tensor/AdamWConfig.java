package dev.impasto.tensor;

/** AdamW hyper-parameters (torch.optim.AdamW semantics: decoupled weight decay, bias-corrected moments). */
public record AdamWConfig(double beta1, double beta2, double eps, double weightDecay, double maxGradNorm) {
    public static AdamWConfig defaults() {
        return new AdamWConfig(0.9, 0.999, 1e-8, 1e-2, 1.0);
    }
}
