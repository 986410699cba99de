package dev.impasto.model;

import dev.impasto.tensor.Backend;
import dev.impasto.tensor.DType;
import dev.impasto.tensor.Tensor;
import java.util.List;

/**
 * The LoRA adapters of one base linear, y += scale * (x A^T) B^T, trained with fp32 master weights.
 *
 * <p>A fused base projection (qkv, or linear1 = q|k|v|mlp) may carry one adapter per piece, as diffusers/peft/
 * ai-toolkit train them (to_q, to_k, to_v, proj_mlp), or one adapter for the whole projection, as kohya does. Either
 * way the pieces' A matrices are stacked into one {@code a} [pieces * rank, in] so that the down-projection of all
 * pieces is ONE matrix product, and the B matrices are stacked into {@code b} [sum of piece rows, rank]. Piece i adds
 * into the base output's rows [rowStart, rowEnd) (the pieces need not cover the whole output: an attention-only LoRA
 * on linear1 adapts q, k, v but not the MLP part) and owns columns [i * rank, (i+1) * rank) of the down-projection.
 */
public final class LoraGroup implements AutoCloseable {
    /** One adapter: its name suffix in diffusers naming ("to_q", "" for the whole layer) and its output rows. */
    public record Piece(String name, long rowStart, long rowEnd) {
        public long rows() {
            return rowEnd - rowStart;
        }
    }

    public final String key;          // canonical BFL module key, e.g. "double_blocks.0.img_attn.qkv"
    public final int rank;
    public final double alpha;
    public final double dropout;
    public final List<Piece> pieces;
    public final Tensor a, b;         // fp32 masters: [pieces * rank, in], [out, rank]
    public final Tensor gradA, gradB; // fp32
    private final long[] bOffsets;
    final Tensor computeA, computeB;  // compute-dtype copies (same tensors when the dtypes agree)

    /**
     * Zero-initialised masters and gradients on {@code be}; {@code computeType} is the model's compute dtype (its
     * compute copies are made when it differs from the fp32 master).
     */
    public LoraGroup(Backend be, String key, List<Piece> pieces, long in, int rank, double alpha, double dropout, DType computeType) {
        this.key = key;
        this.rank = rank;
        this.alpha = alpha;
        this.dropout = dropout;
        this.pieces = List.copyOf(pieces);
        this.bOffsets = new long[pieces.size()];
        long out = 0;
        for (int i = 0; i < pieces.size(); i++) {
            bOffsets[i] = out;
            out += pieces.get(i).rows();
        }
        DType master = computeType == DType.F64 ? DType.F64 : DType.F32;
        this.a = be.zeros(master, (long) pieces.size() * rank, in);
        this.b = be.zeros(master, out, rank);
        this.gradA = be.zeros(master, (long) pieces.size() * rank, in);
        this.gradB = be.zeros(master, out, rank);
        boolean copy = computeType != master;
        this.computeA = copy ? be.empty(computeType, (long) pieces.size() * rank, in) : a;
        this.computeB = copy ? be.empty(computeType, out, rank) : b;
        syncCompute(be);
    }

    public double scale() {
        return alpha / rank;
    }

    public long in() {
        return a.cols();
    }

    /** Rows of b (the adapted output rows). */
    public long adaptedRows() {
        return b.rows();
    }

    public int width() {
        return pieces.size() * rank;
    }

    /** A of piece i, [rank, in] (a view of the master). */
    public Tensor pieceA(int i) {
        return a.rows((long) i * rank, (long) (i + 1) * rank);
    }

    /** B of piece i, [rows, rank] (a view of the master). */
    public Tensor pieceB(int i) {
        return pieceRows(b, i);
    }

    /** Piece i's rows of a tensor laid out like b (b, gradB, the compute copy, optimizer moments). */
    public Tensor pieceRows(Tensor likeB, int i) {
        return likeB.rows(bOffsets[i], bOffsets[i] + pieces.get(i).rows());
    }

    /** Piece i's columns of the down-projection h. */
    public Tensor pieceCols(Tensor h, int i) {
        return h.cols((long) i * rank, (long) (i + 1) * rank);
    }

    private long version;

    /**
     * Counts {@link #syncCompute} calls: the compute copies are unchanged while it is. Only meaningful when the copies
     * are separate tensors ({@link #hasComputeCopies}); otherwise the masters are written directly.
     */
    long version() {
        return version;
    }

    /** Whether computeA / computeB are copies of the masters in another dtype (written only by syncCompute). */
    boolean hasComputeCopies() {
        return computeA != a;
    }

    /** Refreshes the compute-dtype copies after the masters changed (optimizer step, loading). */
    public void syncCompute(Backend be) {
        version++;
        if (computeA != a) {
            be.copy(computeA, a);
            be.copy(computeB, b);
        }
    }

    public long parameterCount() {
        return a.numel() + b.numel();
    }

    @Override
    public void close() {
        a.close();
        b.close();
        gradA.close();
        gradB.close();
        if (computeA != a) {
            computeA.close();
            computeB.close();
        }
    }
}
