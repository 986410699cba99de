package dev.impasto.model;

import dev.impasto.tensor.DType;

/** Dtype rules for saved activations. */
final class Activations {
    private Activations() {}

    /** Row statistics (LN mean/rstd, attention log-sum-exp) are fp32, or fp64 when the model itself runs in fp64. */
    static DType statType(DType compute) {
        return compute == DType.F64 ? DType.F64 : DType.F32;
    }
}
