package dev.impasto.train;

/** Learning rate per optimizer step (1-based): linear warmup, then constant, linear or cosine decay to minLrRatio * lr. */
public record LrSchedule(String type, double lr, int warmupSteps, int totalSteps, double minLrRatio) {
    public double at(long step) {
        if (warmupSteps > 0 && step <= warmupSteps) return lr * step / warmupSteps;
        if (type.equals("constant")) return lr;
        double span = Math.max(1, totalSteps - warmupSteps);
        double p = Math.min(1, Math.max(0, (step - warmupSteps) / span));
        double min = lr * minLrRatio;
        return switch (type) {
            case "linear" -> min + (lr - min) * (1 - p);
            case "cosine" -> min + (lr - min) * 0.5 * (1 + Math.cos(Math.PI * p));
            default -> throw new IllegalArgumentException("unknown schedule " + type);
        };
    }
}
