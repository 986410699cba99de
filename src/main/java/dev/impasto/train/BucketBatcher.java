package dev.impasto.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * Batches that only mix items of one aspect-ratio bucket, reshuffled every epoch from the seed: epoch e's plan is a
 * pure function of (seed, e), so a resumed run continues with exactly the batches the interrupted one would have
 * drawn.
 */
public final class BucketBatcher {
    private final Map<String, List<Integer>> buckets = new TreeMap<>();
    private final int batchSize;
    private final long seed;

    public BucketBatcher(TrainingSet data, int batchSize, long seed) {
        if (data.size() == 0) throw new IllegalArgumentException("the training set is empty");
        for (int i = 0; i < data.size(); i++) buckets.computeIfAbsent(data.bucket(i), k -> new ArrayList<>()).add(i);
        this.batchSize = batchSize;
        this.seed = seed;
    }

    public Map<String, Integer> bucketSizes() {
        Map<String, Integer> m = new TreeMap<>();
        buckets.forEach((k, v) -> m.put(k, v.size()));
        return m;
    }

    /** The batches of one epoch, in order. A bucket smaller than the batch size yields one smaller batch. */
    public List<int[]> epoch(long epoch) {
        Random r = new Random(seed * 1_000_003L + epoch * 7919L + 17);
        List<int[]> batches = new ArrayList<>();
        for (List<Integer> items : buckets.values()) {
            List<Integer> shuffled = new ArrayList<>(items);
            Collections.shuffle(shuffled, r);
            int n = Math.min(batchSize, shuffled.size());
            for (int i = 0; i + n <= shuffled.size(); i += n)
                batches.add(shuffled.subList(i, i + n).stream().mapToInt(Integer::intValue).toArray());
        }
        Collections.shuffle(batches, r);
        return batches;
    }
}
