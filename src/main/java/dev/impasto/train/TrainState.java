package dev.impasto.train;

/** Where a run is: completed optimizer steps, data position, counters. Saved in every checkpoint. */
public final class TrainState {
    public long step;
    public long epoch;
    public int batchInEpoch;
    public double lossEma = Double.NaN;
    public long skippedSteps;
    public int nonFiniteInARow;
    public String configHash = "";
}
