// Elementwise kernels over [rows, cols] matrices with row strides (ld, in elements), fp32 arithmetic.
//
// Geometry for all of them: a 1-D grid of 256-thread blocks, any size (grid-stride loops); CudaBackend launches
// min(ceil(n / 256), 65535 * 32) blocks. Each thread handles 16-byte vectors (8 bf16/f16 or 4 f32) when every
// operand's base and row stride allow it, else single elements. Operands may alias each other exactly (in-place).
// Outputs with a beta are read only when beta != 0, so a poisoned (NaN) output with beta = 0 stays clean.
#pragma once
#include <type_traits>
#include "common.cuh"

template <int N> using IC = std::integral_constant<int, N>;

// Runs f(IC<n>, r, c) over every n-element vector of a rows x cols matrix: n = V when vec, 1 otherwise or at the
// end of a row.
template <int V, typename F>
__device__ __forceinline__ void ew_loop(i64 rows, i64 cols, bool vec, F&& f) {
  if (vec) {
    for_each_vector<V>(rows, cols, [&](i64 r, i64 c) {
      if (c + V <= cols) f(IC<V>(), r, c);
      else
        for (i64 j = c; j < cols; j++) f(IC<1>(), r, j);
    });
  } else {
    for_each_vector<1>(rows, cols, [&](i64 r, i64 c) { f(IC<1>(), r, c); });
  }
}

// A matrix whose rows are contiguous in every operand can be walked as one long row: more vectors, fewer divisions.
__device__ __forceinline__ bool flat(i64 rows, i64 cols, std::initializer_list<i64> lds) {
  if (rows <= 1) return true;
  for (i64 ld : lds)
    if (ld != cols) return false;
  return true;
}

#define FLATTEN(...)                      \
  if (flat(rows, cols, {__VA_ARGS__})) {  \
    cols *= rows;                         \
    rows = 1;                             \
  }

// ------------------------------------------------------------------------------------------------ convert, fill

template <typename S, typename D>
__device__ void convert_impl(D* d, i64 ldd, const S* s, i64 lds, i64 rows, i64 cols) {
  if (flat(rows, cols, {ldd, lds})) { cols *= rows; rows = 1; ldd = lds = 0; }
  constexpr int V = 8;
  bool vec = vec_ok<D>(d, ldd, V) && vec_ok<S>(s, lds, V);
  ew_loop<V>(rows, cols, vec, [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float v[n];
    load_n<S, n>(v, s + r * lds + c);
    store_n<D, n>(d + r * ldd + c, v);
  });
}

#define CONVERT(S, sn, D, dn)                                                                                    \
  IMPASTO_KERNEL void impasto_convert_##sn##_##dn(D* d, i64 ldd, const S* s, i64 lds, i64 rows, i64 cols) { \
    convert_impl<S, D>(d, ldd, s, lds, rows, cols);                                                             \
  }
#define CONVERT_FROM(S, sn) CONVERT(S, sn, float, f32) CONVERT(S, sn, bf16, bf16) CONVERT(S, sn, f16, f16)
IMPASTO_FOR_TYPES(CONVERT_FROM)

template <typename T>
__device__ void fill_impl(T* p, i64 ld, i64 rows, i64 cols, float value) {
  if (flat(rows, cols, {ld})) { cols *= rows; rows = 1; ld = 0; }
  constexpr int V = Vec<T>::N;
  ew_loop<V>(rows, cols, vec_ok<T>(p, ld, V), [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float v[n];
#pragma unroll
    for (int i = 0; i < n; i++) v[i] = value;
    store_n<T, n>(p + r * ld + c, v);
  });
}

// ------------------------------------------------------------------------------------------------ binary / unary

// out = f(x, y) with out, x, y the same shape.
template <typename T, typename Op>
__device__ __forceinline__ void binary_impl(T* o, i64 ldo, const T* x, i64 ldx, const T* y, i64 ldy, i64 rows, i64 cols, Op op) {
  if (flat(rows, cols, {ldo, ldx, ldy})) { cols *= rows; rows = 1; ldo = ldx = ldy = 0; }
  constexpr int V = Vec<T>::N;
  bool vec = vec_ok<T>(o, ldo, V) && vec_ok<T>(x, ldx, V) && vec_ok<T>(y, ldy, V);
  ew_loop<V>(rows, cols, vec, [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float a[n], b[n];
    load_n<T, n>(a, x + r * ldx + c);
    load_n<T, n>(b, y + r * ldy + c);
#pragma unroll
    for (int i = 0; i < n; i++) a[i] = op(a[i], b[i]);
    store_n<T, n>(o + r * ldo + c, a);
  });
}

// out = f(x) + beta * out (out read only when beta != 0).
template <typename T, typename Op>
__device__ __forceinline__ void unary_impl(T* o, i64 ldo, const T* x, i64 ldx, i64 rows, i64 cols, float beta, Op op) {
  if (flat(rows, cols, {ldo, ldx})) { cols *= rows; rows = 1; ldo = ldx = 0; }
  constexpr int V = Vec<T>::N;
  bool vec = vec_ok<T>(o, ldo, V) && vec_ok<T>(x, ldx, V);
  ew_loop<V>(rows, cols, vec, [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float a[n];
    load_n<T, n>(a, x + r * ldx + c);
#pragma unroll
    for (int i = 0; i < n; i++) a[i] = op(a[i]);
    if (beta != 0.f) {
      float old[n];
      load_n<T, n>(old, o + r * ldo + c);
#pragma unroll
      for (int i = 0; i < n; i++) a[i] = fmaf(beta, old[i], a[i]);
    }
    store_n<T, n>(o + r * ldo + c, a);
  });
}

// dx = dy * f'(x) + beta * dx.
template <typename T, typename Op>
__device__ __forceinline__ void grad_impl(T* dx, i64 lddx, const T* dy, i64 lddy, const T* x, i64 ldx, i64 rows, i64 cols, float beta,
                                          Op op) {
  if (flat(rows, cols, {lddx, lddy, ldx})) { cols *= rows; rows = 1; lddx = lddy = ldx = 0; }
  constexpr int V = Vec<T>::N;
  bool vec = vec_ok<T>(dx, lddx, V) && vec_ok<T>(dy, lddy, V) && vec_ok<T>(x, ldx, V);
  ew_loop<V>(rows, cols, vec, [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float g[n], xv[n];
    load_n<T, n>(g, dy + r * lddy + c);
    load_n<T, n>(xv, x + r * ldx + c);
#pragma unroll
    for (int i = 0; i < n; i++) g[i] = g[i] * op(xv[i]);
    if (beta != 0.f) {
      float old[n];
      load_n<T, n>(old, dx + r * lddx + c);
#pragma unroll
      for (int i = 0; i < n; i++) g[i] = fmaf(beta, old[i], g[i]);
    }
    store_n<T, n>(dx + r * lddx + c, g);
  });
}

#define GELU_C 0.7978845608028654f  // sqrt(2 / pi)
#define GELU_A 0.044715f

// 0.5 x (1 + tanh(u)) = x sigmoid(2u): no cancellation for negative x (1 + tanh(u) would lose the digits).
__device__ __forceinline__ float gelu_f(float x) {
  float u = GELU_C * fmaf(GELU_A * x, x * x, x);
  return x / (1.f + expf(-2.f * u));
}

// d/dx: s + 2 x s (1 - s) C (1 + 3 A x^2) with s = sigmoid(2u) = 0.5 (1 + tanh u), 1 - s = sigmoid(-2u) (both computed
// directly so neither tail cancels; e = inf or 0 give s = 0 or 1 cleanly).
__device__ __forceinline__ float gelu_grad_f(float x) {
  float u = GELU_C * fmaf(GELU_A * x, x * x, x);
  float e = expf(-2.f * u);
  float s = 1.f / (1.f + e), oms = 1.f / (1.f + 1.f / e);
  return s + 2.f * x * s * oms * GELU_C * (1.f + 3.f * GELU_A * x * x);
}

__device__ __forceinline__ float sigmoid_f(float x) { return 1.f / (1.f + expf(-x)); }

struct AddOp { __device__ float operator()(float a, float b) const { return a + b; } };
struct MulOp { __device__ float operator()(float a, float b) const { return a * b; } };
struct GeluOp { __device__ float operator()(float x) const { return gelu_f(x); } };
struct GeluGradOp { __device__ float operator()(float x) const { return gelu_grad_f(x); } };
struct SiluOp { __device__ float operator()(float x) const { return x * sigmoid_f(x); } };
struct SiluGradOp {
  __device__ float operator()(float x) const {
    float s = sigmoid_f(x);
    return s + x * s * (1.f - s);
  }
};
struct ScaleOp {
  float a;
  __device__ float operator()(float x) const { return a * x; }
};

#define ELEMENTWISE(T, sfx)                                                                                              \
  IMPASTO_KERNEL void impasto_fill_##sfx(T* p, i64 ld, i64 rows, i64 cols, float value) {                               \
    fill_impl<T>(p, ld, rows, cols, value);                                                                              \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_add_##sfx(T* o, i64 ldo, const T* x, i64 ldx, const T* y, i64 ldy, i64 rows, i64 cols) {  \
    binary_impl<T>(o, ldo, x, ldx, y, ldy, rows, cols, AddOp());                                                         \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_mul_##sfx(T* o, i64 ldo, const T* x, i64 ldx, const T* y, i64 ldy, i64 rows, i64 cols) {  \
    binary_impl<T>(o, ldo, x, ldx, y, ldy, rows, cols, MulOp());                                                         \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_axpby_##sfx(T* y, i64 ldy, const T* x, i64 ldx, i64 rows, i64 cols, float alpha,          \
                                          float beta) {                                                                  \
    unary_impl<T>(y, ldy, x, ldx, rows, cols, beta, ScaleOp{alpha});                                                     \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_gelu_##sfx(T* o, i64 ldo, const T* x, i64 ldx, i64 rows, i64 cols) {                      \
    unary_impl<T>(o, ldo, x, ldx, rows, cols, 0.f, GeluOp());                                                            \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_silu_##sfx(T* o, i64 ldo, const T* x, i64 ldx, i64 rows, i64 cols) {                      \
    unary_impl<T>(o, ldo, x, ldx, rows, cols, 0.f, SiluOp());                                                            \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_gelu_bwd_##sfx(T* dx, i64 lddx, const T* dy, i64 lddy, const T* x, i64 ldx, i64 rows,     \
                                             i64 cols, float beta) {                                                     \
    grad_impl<T>(dx, lddx, dy, lddy, x, ldx, rows, cols, beta, GeluGradOp());                                            \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_silu_bwd_##sfx(T* dx, i64 lddx, const T* dy, i64 lddy, const T* x, i64 ldx, i64 rows,     \
                                             i64 cols, float beta) {                                                     \
    grad_impl<T>(dx, lddx, dy, lddy, x, ldx, rows, cols, beta, SiluGradOp());                                            \
  }
IMPASTO_FOR_TYPES(ELEMENTWISE)

// ------------------------------------------------------------------------------------------------ per-batch ops

// x += gate[r / per] * y.
template <typename T>
__device__ void gated_residual_impl(T* x, i64 ldx, const T* gate, i64 ldg, const T* y, i64 ldy, i64 rows, i64 cols, i64 per) {
  constexpr int V = Vec<T>::N;
  bool vec = vec_ok<T>(x, ldx, V) && vec_ok<T>(gate, ldg, V) && vec_ok<T>(y, ldy, V);
  ew_loop<V>(rows, cols, vec, [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float a[n], g[n], b[n];
    load_n<T, n>(a, x + r * ldx + c);
    load_n<T, n>(g, gate + (r / per) * ldg + c);
    load_n<T, n>(b, y + r * ldy + c);
#pragma unroll
    for (int i = 0; i < n; i++) a[i] = fmaf(g[i], b[i], a[i]);
    store_n<T, n>(x + r * ldx + c, a);
  });
}

// dy = gate[r / per] * dx + betaDy * dy.
template <typename T>
__device__ void gated_residual_bwd_impl(T* dy, i64 lddy, const T* dx, i64 lddx, const T* gate, i64 ldg, i64 rows, i64 cols, i64 per,
                                        float betaDy) {
  constexpr int V = Vec<T>::N;
  bool vec = vec_ok<T>(dy, lddy, V) && vec_ok<T>(gate, ldg, V) && vec_ok<T>(dx, lddx, V);
  ew_loop<V>(rows, cols, vec, [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float a[n], g[n];
    load_n<T, n>(a, dx + r * lddx + c);
    load_n<T, n>(g, gate + (r / per) * ldg + c);
#pragma unroll
    for (int i = 0; i < n; i++) a[i] *= g[i];
    if (betaDy != 0.f) {
      float old[n];
      load_n<T, n>(old, dy + r * lddy + c);
#pragma unroll
      for (int i = 0; i < n; i++) a[i] = fmaf(betaDy, old[i], a[i]);
    }
    store_n<T, n>(dy + r * lddy + c, a);
  });
}

// xt = (1 - t[b]) x0 + t[b] noise, target = noise - x0, b = r / per.
template <typename T>
__device__ void flow_mix_impl(T* xt, i64 ldxt, T* tg, i64 ldtg, const T* x0, i64 ldx0, const T* nz, i64 ldn, const float* t, i64 rows,
                              i64 cols, i64 per) {
  constexpr int V = Vec<T>::N;
  bool vec = vec_ok<T>(xt, ldxt, V) && vec_ok<T>(tg, ldtg, V) && vec_ok<T>(x0, ldx0, V) && vec_ok<T>(nz, ldn, V);
  ew_loop<V>(rows, cols, vec, [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float a[n], b[n], o[n];
    load_n<T, n>(a, x0 + r * ldx0 + c);
    load_n<T, n>(b, nz + r * ldn + c);
    float tb = t[r / per];
#pragma unroll
    for (int i = 0; i < n; i++) {
      o[i] = (1.f - tb) * a[i] + tb * b[i];
      a[i] = b[i] - a[i];
    }
    store_n<T, n>(xt + r * ldxt + c, o);
    store_n<T, n>(tg + r * ldtg + c, a);
  });
}

// Sequence concatenation: whole[B, La + Lb, D] <-> a[B, La, D], b[B, Lb, D] (gather = true: whole = cat(a, b)).
template <typename T, bool GATHER>
__device__ void seq_copy_impl(T* whole, i64 ldw, T* a, i64 lda, T* b, i64 ldb, i64 batch, i64 la, i64 lb, i64 cols) {
  constexpr int V = Vec<T>::N;
  bool vec = vec_ok<T>(whole, ldw, V) && vec_ok<T>(a, lda, V) && vec_ok<T>(b, ldb, V);
  i64 l = la + lb;
  ew_loop<V>(batch * l, cols, vec, [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    i64 bi = r / l, s = r - bi * l;
    T* part = s < la ? a + (bi * la + s) * lda : b + (bi * lb + (s - la)) * ldb;
    T* w = whole + r * ldw;
    float v[n];
    if (GATHER) {
      load_n<T, n>(v, part + c);
      store_n<T, n>(w + c, v);
    } else {
      load_n<T, n>(v, w + c);
      store_n<T, n>(part + c, v);
    }
  });
}

#define PER_BATCH(T, sfx)                                                                                                 \
  IMPASTO_KERNEL void impasto_gated_residual_##sfx(T* x, i64 ldx, const T* gate, i64 ldg, const T* y, i64 ldy, i64 rows, \
                                                   i64 cols, i64 per) {                                                   \
    gated_residual_impl<T>(x, ldx, gate, ldg, y, ldy, rows, cols, per);                                                   \
  }                                                                                                                       \
  IMPASTO_KERNEL void impasto_gated_residual_bwd_##sfx(T* dy, i64 lddy, const T* dx, i64 lddx, const T* gate, i64 ldg,   \
                                                       i64 rows, i64 cols, i64 per, float betaDy) {                       \
    gated_residual_bwd_impl<T>(dy, lddy, dx, lddx, gate, ldg, rows, cols, per, betaDy);                                   \
  }                                                                                                                       \
  IMPASTO_KERNEL void impasto_flow_mix_##sfx(T* xt, i64 ldxt, T* tg, i64 ldtg, const T* x0, i64 ldx0, const T* nz,       \
                                             i64 ldn, const float* t, i64 rows, i64 cols, i64 per) {                      \
    flow_mix_impl<T>(xt, ldxt, tg, ldtg, x0, ldx0, nz, ldn, t, rows, cols, per);                                          \
  }                                                                                                                       \
  IMPASTO_KERNEL void impasto_concat_seq_##sfx(T* whole, i64 ldw, T* a, i64 lda, T* b, i64 ldb, i64 batch, i64 la,       \
                                               i64 lb, i64 cols) {                                                        \
    seq_copy_impl<T, true>(whole, ldw, a, lda, b, ldb, batch, la, lb, cols);                                              \
  }                                                                                                                       \
  IMPASTO_KERNEL void impasto_split_seq_##sfx(T* whole, i64 ldw, T* a, i64 lda, T* b, i64 ldb, i64 batch, i64 la,        \
                                              i64 lb, i64 cols) {                                                         \
    seq_copy_impl<T, false>(whole, ldw, a, lda, b, ldb, batch, la, lb, cols);                                             \
  }
IMPASTO_FOR_TYPES(PER_BATCH)

// ------------------------------------------------------------------------------------------------ reductions

// loss[0] += sum((p - t)^2) / N (loss zeroed by the caller); grad = gradScale * 2 (p - t) / N when grad != null.
// Grid: at most 1024 blocks of 256; one atomicAdd per block.
template <typename T>
__device__ void mse_impl(float* loss, T* grad, i64 ldg, const T* p, i64 ldp, const T* t, i64 ldt, i64 rows, i64 cols, float gradScale) {
  double n = (double)rows * (double)cols;
  float inv = (float)(1.0 / n), g2 = (float)(2.0 * gradScale / n);
  if (flat(rows, cols, {ldp, ldt, grad ? ldg : cols})) { cols *= rows; rows = 1; ldg = ldp = ldt = 0; }
  constexpr int V = Vec<T>::N;
  bool vec = vec_ok<T>(p, ldp, V) && vec_ok<T>(t, ldt, V) && (grad == nullptr || vec_ok<T>(grad, ldg, V));
  float acc = 0.f;
  ew_loop<V>(rows, cols, vec, [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float a[n], b[n];
    load_n<T, n>(a, p + r * ldp + c);
    load_n<T, n>(b, t + r * ldt + c);
#pragma unroll
    for (int i = 0; i < n; i++) {
      a[i] -= b[i];
      acc = fmaf(a[i], a[i], acc);
      a[i] *= g2;
    }
    if (grad != nullptr) store_n<T, n>(grad + r * ldg + c, a);
  });
  float s = block_sum(acc);
  if (threadIdx.x == 0) atomicAdd(loss, s * inv);
}

// out[0] += sum(x^2) (out zeroed by the caller).
template <typename T>
__device__ void sum_squares_impl(float* out, const T* x, i64 ld, i64 rows, i64 cols) {
  if (flat(rows, cols, {ld})) { cols *= rows; rows = 1; ld = 0; }
  constexpr int V = Vec<T>::N;
  float acc = 0.f;
  ew_loop<V>(rows, cols, vec_ok<T>(x, ld, V), [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float a[n];
    load_n<T, n>(a, x + r * ld + c);
#pragma unroll
    for (int i = 0; i < n; i++) acc = fmaf(a[i], a[i], acc);
  });
  float s = block_sum(acc);
  if (threadIdx.x == 0 && s != 0.f) atomicAdd(out, s);
}

// flag[0] = 1 if any element is NaN or infinite (flag zeroed by the caller).
template <typename T>
__device__ void nonfinite_impl(int* flag, const T* x, i64 ld, i64 rows, i64 cols) {
  if (flat(rows, cols, {ld})) { cols *= rows; rows = 1; ld = 0; }
  constexpr int V = Vec<T>::N;
  bool bad = false;
  ew_loop<V>(rows, cols, vec_ok<T>(x, ld, V), [&](auto N, i64 r, i64 c) {
    constexpr int n = decltype(N)::value;
    float a[n];
    load_n<T, n>(a, x + r * ld + c);
#pragma unroll
    for (int i = 0; i < n; i++) bad |= !isfinite(a[i]);
  });
  if (__syncthreads_or(bad) && threadIdx.x == 0) atomicExch(flag, 1);
}

#define REDUCTIONS(T, sfx)                                                                                              \
  IMPASTO_KERNEL void impasto_mse_##sfx(float* loss, T* grad, i64 ldg, const T* p, i64 ldp, const T* t, i64 ldt,       \
                                        i64 rows, i64 cols, float gradScale) {                                          \
    mse_impl<T>(loss, grad, ldg, p, ldp, t, ldt, rows, cols, gradScale);                                                \
  }                                                                                                                     \
  IMPASTO_KERNEL void impasto_sum_squares_##sfx(float* out, const T* x, i64 ld, i64 rows, i64 cols) {                  \
    sum_squares_impl<T>(out, x, ld, rows, cols);                                                                        \
  }                                                                                                                     \
  IMPASTO_KERNEL void impasto_nonfinite_##sfx(int* flag, const T* x, i64 ld, i64 rows, i64 cols) {                     \
    nonfinite_impl<T>(flag, x, ld, rows, cols);                                                                         \
  }
IMPASTO_FOR_TYPES(REDUCTIONS)

// ------------------------------------------------------------------------------------------------ column sums

// Column sums per batch element, in two deterministic passes (no atomics, so the same inputs give the same bits):
//   pass 1 (the op's kernel): grid (ceil(cols / 32), batches, splits), block (32, 8). Block (x, b, s) sums its 32
//     columns over rows [s * chunk, (s + 1) * chunk) of batch element b (rows b * per + ...) and writes one partial
//     row: partial[(q * splits + s) * batches + b][col] for each quantity q it sums.
//   pass 2 (impasto_colsum_finish_<t>): out_q[b][col] = sum over s of the partials, in split order.
// The warps read 32 consecutive elements of a row per load (64 bytes for bf16: whole sectors); rows are unrolled
// by 4 so each thread has 8 loads in flight; splits give the grid enough blocks (CudaBackend aims at 4 per SM).

// Reduces the 8 row-lanes of a (32, 8) block: returns in threadIdx.y == 0 the column total.
__device__ __forceinline__ float colsum_block_reduce(float v, float (*sh)[33]) {
  sh[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  float s = 0.f;
  if (threadIdx.y == 0) {
#pragma unroll
    for (int i = 0; i < 8; i++) s += sh[i][threadIdx.x];
  }
  __syncthreads();
  return s;
}

// partial[(s * batches + b) * cols + c] = sum over b's rows in split s of dx * y.
template <typename T>
__device__ void colsum_product_impl(float* partial, const T* dx, i64 lddx, const T* y, i64 ldy, i64 cols, i64 per, i64 chunk) {
  __shared__ float sh[8][33];
  i64 c = (i64)blockIdx.x * 32 + threadIdx.x;
  i64 b = blockIdx.y, s = blockIdx.z, batches = gridDim.y;
  i64 r0 = s * chunk, r1 = min(per, r0 + chunk);
  float acc = 0.f;
  if (c < cols) {
    const T* px = dx + b * per * lddx + c;
    const T* py = y + b * per * ldy + c;
    i64 r = r0 + threadIdx.y;
    for (; r + 24 < r1; r += 32) {
      float a0 = to_f(px[r * lddx]), a1 = to_f(px[(r + 8) * lddx]), a2 = to_f(px[(r + 16) * lddx]), a3 = to_f(px[(r + 24) * lddx]);
      float b0 = to_f(py[r * ldy]), b1 = to_f(py[(r + 8) * ldy]), b2 = to_f(py[(r + 16) * ldy]), b3 = to_f(py[(r + 24) * ldy]);
      acc = fmaf(a0, b0, acc);
      acc = fmaf(a1, b1, acc);
      acc = fmaf(a2, b2, acc);
      acc = fmaf(a3, b3, acc);
    }
    for (; r < r1; r += 8) acc = fmaf(to_f(px[r * lddx]), to_f(py[r * ldy]), acc);
  }
  float tot = colsum_block_reduce(acc, sh);
  if (threadIdx.y == 0 && c < cols) partial[(s * batches + b) * cols + c] = tot;
}

// out0[b][c] = sum_s partial[(0 * splits + s) * batches + b][c]; out1 likewise from quantity 1 (when not null).
// Grid: ceil(batches * cols / 256) blocks of 256.
template <typename T>
__device__ void colsum_finish_impl(T* out0, i64 ld0, T* out1, i64 ld1, const float* partial, i64 splits, i64 batches, i64 cols) {
  for (i64 i = global_thread(); i < batches * cols; i += global_threads()) {
    i64 b = i / cols, c = i - b * cols;
    float s0 = 0.f, s1 = 0.f;
    for (i64 s = 0; s < splits; s++) {
      s0 += partial[(s * batches + b) * cols + c];
      if (out1 != nullptr) s1 += partial[((splits + s) * batches + b) * cols + c];
    }
    if (out0 != nullptr) out0[b * ld0 + c] = from_f<T>(s0);
    if (out1 != nullptr) out1[b * ld1 + c] = from_f<T>(s1);
  }
}

#define COLSUMS(T, sfx)                                                                                                  \
  IMPASTO_KERNEL void impasto_colsum_product_##sfx(float* partial, const T* dx, i64 lddx, const T* y, i64 ldy, i64 cols, \
                                                   i64 per, i64 chunk) {                                                 \
    colsum_product_impl<T>(partial, dx, lddx, y, ldy, cols, per, chunk);                                                 \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_colsum_finish_##sfx(T* out0, i64 ld0, T* out1, i64 ld1, const float* partial, i64 splits, \
                                                  i64 batches, i64 cols) {                                               \
    colsum_finish_impl<T>(out0, ld0, out1, ld1, partial, splits, batches, cols);                                         \
  }
IMPASTO_FOR_TYPES(COLSUMS)

// ------------------------------------------------------------------------------------------------ timestep embedding

// out[b] = [cos(t' f_i), sin(t' f_i)], t' = timeFactor * t[b] (fp32), f_i = fp32(exp(-ln(maxPeriod) i / half)),
// arg = t' * f_i in fp32, cos/sin in fp64 (as the CPU backend does). A zero last column when cols is odd.
// Grid: rows blocks (one per batch element) of 256.
template <typename T>
__device__ void timestep_embedding_impl(T* o, i64 ldo, const float* t, int rows, int cols, float timeFactor, float maxPeriod) {
  int b = blockIdx.x;
  if (b >= rows) return;
  int half = cols / 2;
  float tf = timeFactor * t[b];
  double lm = log((double)maxPeriod);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float freq = (float)exp(-lm * i / half);
    float arg = tf * freq;
    double s, c;
    sincos((double)arg, &s, &c);
    o[(i64)b * ldo + i] = from_f<T>((float)c);
    o[(i64)b * ldo + half + i] = from_f<T>((float)s);
  }
  if ((cols & 1) && threadIdx.x == 0) o[(i64)b * ldo + cols - 1] = from_f<T>(0.f);
}

#define TIMESTEP(T, sfx)                                                                                               \
  IMPASTO_KERNEL void impasto_timestep_embedding_##sfx(T* o, i64 ldo, const float* t, int rows, int cols, float tf,   \
                                                       float maxPeriod) {                                             \
    timestep_embedding_impl<T>(o, ldo, t, rows, cols, tf, maxPeriod);                                                 \
  }
IMPASTO_FOR_TYPES(TIMESTEP)

// ------------------------------------------------------------------------------------------------ AdamW

// torch.optim.AdamW on contiguous F32 p, g, m, v of n elements, in fp64 like the CPU backend (hyper-parameters come
// as doubles, so the arithmetic matches the CPU's up to the f32 rounding of the stored m, v and p):
//   clip = maxNorm / (norm + 1e-6) if norm > maxNorm else 1, norm = sqrt(gradNormSq[0]) * gradScale, read on the device
//          when gradNormSq != null and maxNorm > 0 (no host synchronisation);
//   g' = g * clip * gradScale; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2 (stored as f32, then used as stored);
//   p = p (1 - lr wd) - lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
// Grid: any number of 256-thread blocks (grid-stride).
__device__ __forceinline__ double adamw_grad_mul(const float* gradNormSq, double maxNorm, double gradScale) {
  double clip = 1.0;
  if (gradNormSq != nullptr && maxNorm > 0) {
    double norm = sqrt((double)*gradNormSq) * gradScale;
    if (norm > maxNorm) clip = maxNorm / (norm + 1e-6);
  }
  return clip * gradScale;
}

__device__ __forceinline__ void adamw_one(float* p, const float* g, float* m, float* v, i64 i, double gmul, double beta1, double beta2,
                                          double eps, double step, double sbc2, double decay) {
  double gv = (double)g[i] * gmul;
  float mv = (float)(beta1 * (double)m[i] + (1.0 - beta1) * gv);
  float vv = (float)(beta2 * (double)v[i] + (1.0 - beta2) * gv * gv);
  m[i] = mv;
  v[i] = vv;
  double pv = (double)p[i] * decay;
  pv -= step * (double)mv / (sqrt((double)vv) / sbc2 + eps);
  p[i] = (float)pv;
}

IMPASTO_KERNEL void impasto_adamw_f32(float* p, const float* g, float* m, float* v, i64 n, double lr, double beta1, double beta2,
                                      double eps, double wd, double bc1, double bc2, const float* gradNormSq, double maxNorm,
                                      double gradScale) {
  double gmul = adamw_grad_mul(gradNormSq, maxNorm, gradScale);
  double step = lr / bc1, sbc2 = sqrt(bc2), decay = 1.0 - lr * wd;
  for (i64 i = global_thread(); i < n; i += global_threads()) adamw_one(p, g, m, v, i, gmul, beta1, beta2, eps, step, sbc2, decay);
}

// Multi-tensor AdamW: every LoRA tensor of a step in ONE launch (a FLUX LoRA has ~600 of them). The host cuts the
// tensors into work items of at most a few ten thousand elements (AdamwWork, 48 bytes each, in device memory);
// block b takes items b, b + gridDim.x, ... Same arithmetic per element as impasto_adamw_f32.
struct AdamwWork {
  float* p;
  const float* g;
  float* m;
  float* v;
  i64 begin, end;
};

IMPASTO_KERNEL void impasto_adamw_multi_f32(const AdamwWork* work, int nwork, double lr, double beta1, double beta2, double eps,
                                            double wd, double bc1, double bc2, const float* gradNormSq, double maxNorm,
                                            double gradScale) {
  double gmul = adamw_grad_mul(gradNormSq, maxNorm, gradScale);
  double step = lr / bc1, sbc2 = sqrt(bc2), decay = 1.0 - lr * wd;
  for (int w = blockIdx.x; w < nwork; w += gridDim.x) {
    const AdamwWork wk = work[w];
    for (i64 i = wk.begin + threadIdx.x; i < wk.end; i += blockDim.x)
      adamw_one(wk.p, wk.g, wk.m, wk.v, i, gmul, beta1, beta2, eps, step, sbc2, decay);
  }
}
