package dev.impasto.train;

/** Where a run is: completed optimizer steps, data position, counters. Saved in every checkpoint. */
public final class TrainState {
    public long step;
    public long epoch;
    public int batchInEpoch;
    /** Items per optimizer micro-step when this state was saved (batch size x ranks): resuming with another rank count rescales batchInEpoch. */
    public int globalBatch;
    public double lossEma = Double.NaN;
    public long skippedSteps;
    public int nonFiniteInARow;
    public String configHash = "";
}
