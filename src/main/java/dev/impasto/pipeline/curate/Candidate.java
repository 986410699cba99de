package dev.impasto.pipeline.curate;

/**
 * One row of a source that passed the label filters, before its image is looked at.
 * @param shard index of the shard (or 0 for an image folder) in the source's list
 * @param row row index inside the shard
 * @param priority seeded random key: candidates are tried in ascending priority, across all shards
 */
public record Candidate(int shard, long row, int genre, int style, int artist, String path, long priority) {
    /** Deterministic per (seed, shard name, row): independent of how many shards there are or their order. */
    public static long priorityKey(long seed, String shardName, long row) {
        long h = seed * 0x9E3779B97F4A7C15L ^ shardName.hashCode() * 0xC2B2AE3D27D4EB4FL ^ row * 0x165667B19E3779F9L;
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb9fe1a85ec53L;
        return h ^ (h >>> 33);
    }
}
