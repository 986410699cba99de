// impasto's own attention, the fallback when libtorch is absent: out = softmax(q k^T * scale) v per (batch, head), no
// mask, with the natural-log sum of exp of the scaled scores (lse, F32 [B, H, Lq]) saved for the backward.
// q, k, v, out (and the gradients) are [B, L, H * D] with their own row strides ld (column views allowed).
//
// Two implementations, chosen by OwnAttention.java:
//  - mma (bf16 / f16, D = 64 or 128, 16-byte aligned operands and row strides a multiple of 8): FlashAttention-2
//    style tiles on the tensor cores (mma.sync m16n8k16, fp32 accumulation), K/V tiles double-buffered in shared
//    memory with cp.async, XOR-swizzled rows so ldmatrix is conflict-free, online softmax in registers.
//      forward: block = 4 warps = 64 query rows (16 per warp), 64-key tiles.
//      backward: delta = rowsum(dout * out); dQ kernel (64 query rows per block, 32-key tiles) and dK/dV kernel (64 key
//      rows per block, 32-query tiles) recompute P from lse; no atomics, deterministic.
//  - generic (any type, D <= 256, any alignment): the same algorithm on CUDA cores with 16 x 16 tiles in shared
//    memory (fp32), one thread per (query, key) score.
#pragma once
#include "common.cuh"

#define LOG2E 1.4426950408889634f

// ------------------------------------------------------------------------------------------------ delta

// delta[(b * H + h) * L + i] = sum_d dout[b, i, h, d] * out[b, i, h, d]. One warp per (b, i, h); 256-thread blocks.
template <typename T>
__device__ void attn_delta_impl(float* delta, const T* dout, i64 lddo, const T* out, i64 ldo, i64 batch, i64 len, int heads, int d) {
  const int lane = threadIdx.x & 31;
  const i64 items = batch * len * heads;
  for (i64 it = global_thread() >> 5; it < items; it += global_threads() >> 5) {
    const i64 bi = it / heads;
    const int h = (int)(it - bi * heads);
    const i64 b = bi / len, i = bi - b * len;
    const T* g = dout + bi * lddo + (i64)h * d;
    const T* o = out + bi * ldo + (i64)h * d;
    float s = 0.f;
    for (int c = lane; c < d; c += 32) s = fmaf(to_f(g[c]), to_f(o[c]), s);
    s = warp_sum(s);
    if (lane == 0) delta[(b * heads + h) * len + i] = s;
  }
}

// ------------------------------------------------------------------------------------------------ generic path

// Shared-memory tiles of 16 rows x D floats, rows padded to D + 1 words (conflict-free column walks).
#define GT 16

template <typename T>
__device__ __forceinline__ void load_rows_f32(float* s, const T* g, i64 ld, i64 row0, i64 rows, int d) {
  const int dp = d + 1;
  for (int idx = threadIdx.x; idx < GT * d; idx += blockDim.x) {
    int r = idx / d, c = idx - r * d;
    s[r * dp + c] = row0 + r < rows ? to_f(g[(row0 + r) * ld + c]) : 0.f;
  }
}

// Forward. Grid (ceil(Lq / 16), H, B), block 256 = 16 query rows x 16 keys; dynamic shared (3 * 16 * (D + 1) + 16 * 17)
// floats. Thread (i, j) computes score (i, j); the 16 threads of row i share its running max and sum (half-warp
// shuffles) and accumulate out[i, j + 16 u].
template <typename T>
__device__ void attn_fwd_generic_impl(T* out, i64 ldo, float* lse, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv,
                                      int heads, i64 lq, i64 lk, int d, float scale) {
  IMPASTO_DYN_SMEM(float, sm);
  const int dp = d + 1;
  float* sQ = sm;
  float* sK = sQ + GT * dp;
  float* sV = sK + GT * dp;
  float* sP = sV + GT * dp;  // [16][17]
  const int i = threadIdx.x >> 4, j = threadIdx.x & 15;
  const i64 b = blockIdx.z, q0 = (i64)blockIdx.x * GT;
  const int h = blockIdx.y;
  const T* qg = q + b * lq * ldq + (i64)h * d;
  const T* kg = k + b * lk * ldk + (i64)h * d;
  const T* vg = v + b * lk * ldv + (i64)h * d;
  load_rows_f32(sQ, qg, ldq, q0, lq, d);
  float o[16];
#pragma unroll
  for (int u = 0; u < 16; u++) o[u] = 0.f;
  float m = -INFINITY, l = 0.f;
  for (i64 k0 = 0; k0 < lk; k0 += GT) {
    __syncthreads();  // previous tile consumed
    load_rows_f32(sK, kg, ldk, k0, lk, d);
    load_rows_f32(sV, vg, ldv, k0, lk, d);
    __syncthreads();
    float s = 0.f;
    for (int c = 0; c < d; c++) s = fmaf(sQ[i * dp + c], sK[j * dp + c], s);
    s = k0 + j < lk ? s * scale : -INFINITY;
    float mx = s;
#pragma unroll
    for (int o2 = 8; o2 > 0; o2 >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o2));
    mx = fmaxf(mx, m);
    float p = expf(s - mx);
    float ps = p;
#pragma unroll
    for (int o2 = 8; o2 > 0; o2 >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, o2);
    float alpha = expf(m - mx);
    l = l * alpha + ps;
    m = mx;
    sP[i * 17 + j] = p;
    __syncthreads();
#pragma unroll
    for (int u = 0; u < 16; u++) {
      int c = j + 16 * u;
      if (c < d) {
        float acc = o[u] * alpha;
        for (int jj = 0; jj < GT; jj++) acc = fmaf(sP[i * 17 + jj], sV[jj * dp + c], acc);
        o[u] = acc;
      }
    }
  }
  const i64 row = q0 + i;
  if (row < lq) {
    T* og = out + (b * lq + row) * ldo + (i64)h * d;
    float inv = 1.f / l;
#pragma unroll
    for (int u = 0; u < 16; u++) {
      int c = j + 16 * u;
      if (c < d) og[c] = from_f<T>(o[u] * inv);
    }
    if (j == 0 && lse != nullptr) lse[(b * heads + h) * lq + row] = m + logf(l);
  }
}

// dQ. Grid (ceil(Lq / 16), H, B), block 256 = 16 queries x 16 keys; dynamic shared (4 * 16 * (D + 1) + 16 * 17) floats.
template <typename T>
__device__ void attn_bwd_dq_generic_impl(T* dq, i64 lddq, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv, const T* dout,
                                         i64 lddo, const float* lse, const float* delta, int heads, i64 lq, i64 lk, int d, float scale) {
  IMPASTO_DYN_SMEM(float, sm);
  const int dp = d + 1;
  float* sQ = sm;
  float* sG = sQ + GT * dp;
  float* sK = sG + GT * dp;
  float* sV = sK + GT * dp;
  float* sS = sV + GT * dp;  // [16][17]
  const int i = threadIdx.x >> 4, j = threadIdx.x & 15;
  const i64 b = blockIdx.z, q0 = (i64)blockIdx.x * GT;
  const int h = blockIdx.y;
  load_rows_f32(sQ, q + b * lq * ldq + (i64)h * d, ldq, q0, lq, d);
  load_rows_f32(sG, dout + b * lq * lddo + (i64)h * d, lddo, q0, lq, d);
  const T* kg = k + b * lk * ldk + (i64)h * d;
  const T* vg = v + b * lk * ldv + (i64)h * d;
  const i64 row = q0 + i;
  const float lrow = row < lq ? lse[(b * heads + h) * lq + row] : 0.f;
  const float drow = row < lq ? delta[(b * heads + h) * lq + row] : 0.f;
  float acc[16];
#pragma unroll
  for (int u = 0; u < 16; u++) acc[u] = 0.f;
  for (i64 k0 = 0; k0 < lk; k0 += GT) {
    __syncthreads();
    load_rows_f32(sK, kg, ldk, k0, lk, d);
    load_rows_f32(sV, vg, ldv, k0, lk, d);
    __syncthreads();
    float s = 0.f, g = 0.f;
    for (int c = 0; c < d; c++) {
      s = fmaf(sQ[i * dp + c], sK[j * dp + c], s);
      g = fmaf(sG[i * dp + c], sV[j * dp + c], g);
    }
    float p = (k0 + j < lk && row < lq) ? expf(s * scale - lrow) : 0.f;
    sS[i * 17 + j] = p * (g - drow) * scale;
    __syncthreads();
#pragma unroll
    for (int u = 0; u < 16; u++) {
      int c = j + 16 * u;
      if (c < d) {
        float a = acc[u];
        for (int jj = 0; jj < GT; jj++) a = fmaf(sS[i * 17 + jj], sK[jj * dp + c], a);
        acc[u] = a;
      }
    }
  }
  if (row < lq) {
    T* og = dq + (b * lq + row) * lddq + (i64)h * d;
#pragma unroll
    for (int u = 0; u < 16; u++) {
      int c = j + 16 * u;
      if (c < d) og[c] = from_f<T>(acc[u]);
    }
  }
}

// dK and dV. Grid (ceil(Lk / 16), H, B), block 256 = 16 keys x 16 queries; dynamic shared (4 * 16 * (D + 1) + 2 * 16 * 17)
// floats.
template <typename T>
__device__ void attn_bwd_dkdv_generic_impl(T* dk, i64 lddk, T* dv, i64 lddv, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv,
                                           const T* dout, i64 lddo, const float* lse, const float* delta, int heads, i64 lq, i64 lk, int d,
                                           float scale) {
  IMPASTO_DYN_SMEM(float, sm);
  const int dp = d + 1;
  float* sK = sm;
  float* sV = sK + GT * dp;
  float* sQ = sV + GT * dp;
  float* sG = sQ + GT * dp;
  float* sP = sG + GT * dp;  // [16 keys][17]
  float* sS = sP + GT * 17;
  const int jk = threadIdx.x >> 4, iq = threadIdx.x & 15;
  const i64 b = blockIdx.z, k0 = (i64)blockIdx.x * GT;
  const int h = blockIdx.y;
  load_rows_f32(sK, k + b * lk * ldk + (i64)h * d, ldk, k0, lk, d);
  load_rows_f32(sV, v + b * lk * ldv + (i64)h * d, ldv, k0, lk, d);
  const T* qg = q + b * lq * ldq + (i64)h * d;
  const T* gg = dout + b * lq * lddo + (i64)h * d;
  const float* lrow = lse + (b * heads + h) * lq;
  const float* drow = delta + (b * heads + h) * lq;
  float aK[16], aV[16];
#pragma unroll
  for (int u = 0; u < 16; u++) aK[u] = aV[u] = 0.f;
  for (i64 q0 = 0; q0 < lq; q0 += GT) {
    __syncthreads();
    load_rows_f32(sQ, qg, ldq, q0, lq, d);
    load_rows_f32(sG, gg, lddo, q0, lq, d);
    __syncthreads();
    float s = 0.f, g = 0.f;
    for (int c = 0; c < d; c++) {
      s = fmaf(sK[jk * dp + c], sQ[iq * dp + c], s);
      g = fmaf(sV[jk * dp + c], sG[iq * dp + c], g);
    }
    const i64 qi = q0 + iq;
    float p = (qi < lq && k0 + jk < lk) ? expf(s * scale - lrow[qi]) : 0.f;
    sP[jk * 17 + iq] = p;
    sS[jk * 17 + iq] = qi < lq ? p * (g - drow[qi]) * scale : 0.f;
    __syncthreads();
#pragma unroll
    for (int u = 0; u < 16; u++) {
      int c = iq + 16 * u;
      if (c < d) {
        float a = aK[u], e = aV[u];
        for (int ii = 0; ii < GT; ii++) {
          a = fmaf(sS[jk * 17 + ii], sQ[ii * dp + c], a);
          e = fmaf(sP[jk * 17 + ii], sG[ii * dp + c], e);
        }
        aK[u] = a;
        aV[u] = e;
      }
    }
  }
  const i64 row = k0 + jk;
  if (row < lk) {
    T* kgo = dk + (b * lk + row) * lddk + (i64)h * d;
    T* vgo = dv + (b * lk + row) * lddv + (i64)h * d;
#pragma unroll
    for (int u = 0; u < 16; u++) {
      int c = iq + 16 * u;
      if (c < d) {
        kgo[c] = from_f<T>(aK[u]);
        vgo[c] = from_f<T>(aV[u]);
      }
    }
  }
}

#define ATTN_GENERIC(T, sfx)                                                                                             \
  IMPASTO_KERNEL void impasto_attn_delta_##sfx(float* delta, const T* dout, i64 lddo, const T* out, i64 ldo, i64 batch, \
                                               i64 len, int heads, int d) {                                              \
    attn_delta_impl<T>(delta, dout, lddo, out, ldo, batch, len, heads, d);                                               \
  }                                                                                                                      \
  IMPASTO_KERNEL void __launch_bounds__(256) impasto_attn_fwd_generic_##sfx(                                             \
      T* out, i64 ldo, float* lse, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv, int heads, i64 lq,    \
      i64 lk, int d, float scale) {                                                                                      \
    attn_fwd_generic_impl<T>(out, ldo, lse, q, ldq, k, ldk, v, ldv, heads, lq, lk, d, scale);                            \
  }                                                                                                                      \
  IMPASTO_KERNEL void __launch_bounds__(256) impasto_attn_bwd_dq_generic_##sfx(                                          \
      T* dq, i64 lddq, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv, const T* dout, i64 lddo,           \
      const float* lse, const float* delta, int heads, i64 lq, i64 lk, int d, float scale) {                             \
    attn_bwd_dq_generic_impl<T>(dq, lddq, q, ldq, k, ldk, v, ldv, dout, lddo, lse, delta, heads, lq, lk, d, scale);      \
  }                                                                                                                      \
  IMPASTO_KERNEL void __launch_bounds__(256) impasto_attn_bwd_dkdv_generic_##sfx(                                        \
      T* dk, i64 lddk, T* dv, i64 lddv, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv, const T* dout,    \
      i64 lddo, const float* lse, const float* delta, int heads, i64 lq, i64 lk, int d, float scale) {                   \
    attn_bwd_dkdv_generic_impl<T>(dk, lddk, dv, lddv, q, ldq, k, ldk, v, ldv, dout, lddo, lse, delta, heads, lq, lk, d,  \
                                  scale);                                                                                \
  }
IMPASTO_FOR_TYPES(ATTN_GENERIC)

// ------------------------------------------------------------------------------------------------ tensor-core path

// The PTX wrappers; kernels/emu/cuda_emu.h gives host versions of the same functions (IMPASTO_EMU).
#ifndef IMPASTO_EMU
__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// 16-byte global -> shared copy; valid == false writes zeros (src-size 0, nothing read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a (16 x 16, row) * b (16 x 8, col), fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<bf16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<f16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

// Shared tiles are [rows][D] 16-bit elements, row r's 16-byte chunk c stored at chunk c ^ (r & 7): the 8 rows an
// ldmatrix reads at one logical chunk land in 8 different bank groups.
template <int D>
__device__ __forceinline__ uint32_t swz(uint32_t base, int row, int chunk) {
  return base + row * (D * 2) + ((chunk ^ (row & 7)) << 4);
}

// Rows [row0, row0 + ROWS) of a [L, ld] operand (g points at row 0, column h * D) into a swizzled tile; rows >= L are
// zero. All threads of the block take part; the copies complete at the next cp_async_wait.
template <int D, int ROWS, int THREADS, typename T>
__device__ __forceinline__ void tile_async(uint32_t sbase, const T* g, i64 ld, i64 row0, i64 len) {
  constexpr int C = D / 8;
#pragma unroll
  for (int idx = threadIdx.x; idx < ROWS * C; idx += THREADS) {
    int r = idx / C, c = idx % C;
    bool valid = row0 + r < len;
    const T* src = valid ? g + (row0 + r) * ld + c * 8 : g;
    cp_async16(swz<D>(sbase, r, c), src, valid);
  }
}

// A fragment (16 x 16, rows row0.., k columns 16 ks..) of a swizzled tile.
template <int D>
__device__ __forceinline__ void frag_a(uint32_t (&a)[4], uint32_t base, int row0, int ks, int lane) {
  int row = row0 + (lane & 15), chunk = 2 * ks + (lane >> 4);
  ldsm_x4(a, swz<D>(base, row, chunk));
}

// B fragments of two n-tiles (n rows n0..n0+15 of a tile stored [n][k]), k columns 16 ks..: b[0..1] for n0..n0+7,
// b[2..3] for n0+8..n0+15.
template <int D>
__device__ __forceinline__ void frag_b_nk(uint32_t (&b)[4], uint32_t base, int n0, int ks, int lane) {
  int row = n0 + (lane & 7) + ((lane >> 4) << 3), chunk = 2 * ks + ((lane >> 3) & 1);
  ldsm_x4(b, swz<D>(base, row, chunk));
}

// B fragments of two n-tiles from a tile stored [k][n] (k rows k0..k0+15, n columns 16 np..16 np+15).
template <int D>
__device__ __forceinline__ void frag_b_kn(uint32_t (&b)[4], uint32_t base, int k0, int np, int lane) {
  int row = k0 + (lane & 7) + (((lane >> 3) & 1) << 3), chunk = 2 * np + (lane >> 4);
  ldsm_x4_t(b, swz<D>(base, row, chunk));
}

// The A fragment (16 x 16) made of two accumulator tiles (16 x 8 each, columns 16 kk.. and 16 kk + 8..).
template <typename T>
__device__ __forceinline__ void acc_to_a(uint32_t (&a)[4], const float (&c0)[4], const float (&c1)[4]) {
  a[0] = pack2<T>(c0[0], c0[1]);
  a[1] = pack2<T>(c0[2], c0[3]);
  a[2] = pack2<T>(c1[0], c1[1]);
  a[3] = pack2<T>(c1[2], c1[3]);
}

// Stores a warp's 16 x D accumulator tile (rows row0.., scaled by mul0 / mul1 for its upper / lower 8 rows).
template <typename T, int D>
__device__ __forceinline__ void store_acc(T* g, i64 ld, i64 len, i64 row0, const float (&acc)[D / 8][4], float mul0, float mul1, int lane) {
  const i64 r0 = row0 + (lane >> 2), r1 = r0 + 8;
  const int c = 2 * (lane & 3);
#pragma unroll
  for (int dt = 0; dt < D / 8; dt++) {
    if (r0 < len) *reinterpret_cast<uint32_t*>(g + r0 * ld + dt * 8 + c) = pack2<T>(acc[dt][0] * mul0, acc[dt][1] * mul0);
    if (r1 < len) *reinterpret_cast<uint32_t*>(g + r1 * ld + dt * 8 + c) = pack2<T>(acc[dt][2] * mul1, acc[dt][3] * mul1);
  }
}

#define MMA_FWD_BQ 64
#define MMA_FWD_BK 64

// Forward. Grid (ceil(Lq / 64), H, B), block 128; dynamic shared (64 + 2 * 64 + 2 * 64) * D * 2 bytes (80 KiB at
// D = 128). Warp w owns query rows 16 w .. 16 w + 15 of the block's tile; thread holds rows lane / 4 and lane / 4 + 8.
template <typename T, int D>
__device__ void attn_fwd_mma_impl(T* out, i64 ldo, float* lse, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv, int heads,
                                  i64 lq, i64 lk, float scale) {
  constexpr int BQ = MMA_FWD_BQ, BK = MMA_FWD_BK, KS = D / 16, DT = D / 8;
  IMPASTO_DYN_SMEM(uint8_t, smem);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const i64 b = blockIdx.z, q0 = (i64)blockIdx.x * BQ;
  const int h = blockIdx.y;
  const T* qg = q + b * lq * ldq + (i64)h * D;
  const T* kg = k + b * lk * ldk + (i64)h * D;
  const T* vg = v + b * lk * ldv + (i64)h * D;
  const uint32_t sQ = smem_u32(smem), sK = sQ + BQ * D * 2, sV = sK + 2 * BK * D * 2;
  constexpr uint32_t KV_STRIDE = BK * D * 2;

  tile_async<D, BQ, 128>(sQ, qg, ldq, q0, lq);
  tile_async<D, BK, 128>(sK, kg, ldk, 0, lk);
  tile_async<D, BK, 128>(sV, vg, ldv, 0, lk);
  cp_async_commit();

  uint32_t qf[KS][4];
  float o[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; dt++) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  const float sl2 = scale * LOG2E;
  const int ntiles = (int)((lk + BK - 1) / BK);

  for (int t = 0; t < ntiles; t++) {
    if (t + 1 < ntiles) {
      tile_async<D, BK, 128>(sK + ((t + 1) & 1) * KV_STRIDE, kg, ldk, (i64)(t + 1) * BK, lk);
      tile_async<D, BK, 128>(sV + ((t + 1) & 1) * KV_STRIDE, vg, ldv, (i64)(t + 1) * BK, lk);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (t == 0) {
#pragma unroll
      for (int ks = 0; ks < KS; ks++) frag_a<D>(qf[ks], sQ, warp * 16, ks, lane);
    }
    const uint32_t kb = sK + (t & 1) * KV_STRIDE, vb = sV + (t & 1) * KV_STRIDE;

    float s[BK / 8][4];
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < KS; ks++) {
#pragma unroll
      for (int p = 0; p < BK / 16; p++) {
        uint32_t bf[4];
        frag_b_nk<D>(bf, kb, 16 * p, ks, lane);
        mma16816<T>(s[2 * p], qf[ks], bf[0], bf[1]);
        mma16816<T>(s[2 * p + 1], qf[ks], bf[2], bf[3]);
      }
    }
    const i64 kbase = (i64)t * BK;
    if (kbase + BK > lk) {
#pragma unroll
      for (int nt = 0; nt < BK / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++)
          if (kbase + nt * 8 + 2 * (lane & 3) + (e & 1) >= lk) s[nt][e] = -INFINITY;
    }
    float mx0 = m0, mx1 = m1;
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++) {
      mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
      mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float a0 = exp2f((m0 - mx0) * sl2), a1 = exp2f((m1 - mx1) * sl2);
    m0 = mx0;
    m1 = mx1;
    const float o0 = mx0 * sl2, o1 = mx1 * sl2;
    l0 *= a0;
    l1 *= a1;
#pragma unroll
    for (int dt = 0; dt < DT; dt++) {
      o[dt][0] *= a0; o[dt][1] *= a0;
      o[dt][2] *= a1; o[dt][3] *= a1;
    }
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++) {
      s[nt][0] = exp2f(fmaf(s[nt][0], sl2, -o0));
      s[nt][1] = exp2f(fmaf(s[nt][1], sl2, -o0));
      s[nt][2] = exp2f(fmaf(s[nt][2], sl2, -o1));
      s[nt][3] = exp2f(fmaf(s[nt][3], sl2, -o1));
      l0 += s[nt][0] + s[nt][1];
      l1 += s[nt][2] + s[nt][3];
    }
#pragma unroll
    for (int kk = 0; kk < BK / 16; kk++) {
      uint32_t a[4];
      acc_to_a<T>(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int p = 0; p < D / 16; p++) {
        uint32_t bf[4];
        frag_b_kn<D>(bf, vb, 16 * kk, p, lane);
        mma16816<T>(o[2 * p], a, bf[0], bf[1]);
        mma16816<T>(o[2 * p + 1], a, bf[2], bf[3]);
      }
    }
    __syncthreads();  // this buffer is refilled two iterations on
  }
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const i64 row0 = q0 + warp * 16;
  store_acc<T, D>(out + b * lq * ldo + (i64)h * D, ldo, lq, row0, o, 1.f / l0, 1.f / l1, lane);
  if (lse != nullptr && (lane & 3) == 0) {
    const i64 r0 = row0 + (lane >> 2), r1 = r0 + 8;
    float* lp = lse + (b * heads + h) * lq;
    if (r0 < lq) lp[r0] = m0 * scale + logf(l0);
    if (r1 < lq) lp[r1] = m1 * scale + logf(l1);
  }
}

#define MMA_DQ_BQ 64
#define MMA_DQ_BK 32

// dQ. Grid (ceil(Lq / 64), H, B), block 128; dynamic shared (2 * 64 + 4 * 32) * D * 2 bytes (64 KiB at D = 128).
// Q and dO tiles are staged once and kept as A fragments; K/V tiles of 32 keys are double-buffered.
template <typename T, int D>
__device__ void attn_bwd_dq_mma_impl(T* dq, i64 lddq, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv, const T* dout, i64 lddo,
                                     const float* lse, const float* delta, int heads, i64 lq, i64 lk, float scale) {
  constexpr int BQ = MMA_DQ_BQ, BK = MMA_DQ_BK, KS = D / 16, DT = D / 8;
  IMPASTO_DYN_SMEM(uint8_t, smem);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const i64 b = blockIdx.z, q0 = (i64)blockIdx.x * BQ;
  const int h = blockIdx.y;
  const T* kg = k + b * lk * ldk + (i64)h * D;
  const T* vg = v + b * lk * ldv + (i64)h * D;
  const uint32_t sQ = smem_u32(smem), sG = sQ + BQ * D * 2, sK = sG + BQ * D * 2, sV = sK + 2 * BK * D * 2;
  constexpr uint32_t KV_STRIDE = BK * D * 2;

  tile_async<D, BQ, 128>(sQ, q + b * lq * ldq + (i64)h * D, ldq, q0, lq);
  tile_async<D, BQ, 128>(sG, dout + b * lq * lddo + (i64)h * D, lddo, q0, lq);
  tile_async<D, BK, 128>(sK, kg, ldk, 0, lk);
  tile_async<D, BK, 128>(sV, vg, ldv, 0, lk);
  cp_async_commit();

  const i64 r0 = q0 + warp * 16 + (lane >> 2), r1 = r0 + 8;
  const float* lrow = lse + (b * heads + h) * lq;
  const float* drow = delta + (b * heads + h) * lq;
  const float ls0 = r0 < lq ? lrow[r0] * LOG2E : 0.f, ls1 = r1 < lq ? lrow[r1] * LOG2E : 0.f;
  const float dl0 = r0 < lq ? drow[r0] : 0.f, dl1 = r1 < lq ? drow[r1] : 0.f;
  const float sl2 = scale * LOG2E;

  uint32_t qf[KS][4], gf[KS][4];
  float acc[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; dt++) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.f;
  const int ntiles = (int)((lk + BK - 1) / BK);
  for (int t = 0; t < ntiles; t++) {
    if (t + 1 < ntiles) {
      tile_async<D, BK, 128>(sK + ((t + 1) & 1) * KV_STRIDE, kg, ldk, (i64)(t + 1) * BK, lk);
      tile_async<D, BK, 128>(sV + ((t + 1) & 1) * KV_STRIDE, vg, ldv, (i64)(t + 1) * BK, lk);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (t == 0) {
#pragma unroll
      for (int ks = 0; ks < KS; ks++) {
        frag_a<D>(qf[ks], sQ, warp * 16, ks, lane);
        frag_a<D>(gf[ks], sG, warp * 16, ks, lane);
      }
    }
    const uint32_t kb = sK + (t & 1) * KV_STRIDE, vb = sV + (t & 1) * KV_STRIDE;
    float s[BK / 8][4], dp[BK / 8][4];
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[nt][e] = dp[nt][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < KS; ks++) {
#pragma unroll
      for (int p = 0; p < BK / 16; p++) {
        uint32_t bf[4];
        frag_b_nk<D>(bf, kb, 16 * p, ks, lane);
        mma16816<T>(s[2 * p], qf[ks], bf[0], bf[1]);
        mma16816<T>(s[2 * p + 1], qf[ks], bf[2], bf[3]);
        frag_b_nk<D>(bf, vb, 16 * p, ks, lane);
        mma16816<T>(dp[2 * p], gf[ks], bf[0], bf[1]);
        mma16816<T>(dp[2 * p + 1], gf[ks], bf[2], bf[3]);
      }
    }
    const i64 kbase = (i64)t * BK;
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const bool valid = kbase + nt * 8 + 2 * (lane & 3) + (e & 1) < lk;
        const float pv = valid ? exp2f(fmaf(s[nt][e], sl2, -(e < 2 ? ls0 : ls1))) : 0.f;
        s[nt][e] = pv * (dp[nt][e] - (e < 2 ? dl0 : dl1));
      }
    }
#pragma unroll
    for (int kk = 0; kk < BK / 16; kk++) {
      uint32_t a[4];
      acc_to_a<T>(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int p = 0; p < D / 16; p++) {
        uint32_t bf[4];
        frag_b_kn<D>(bf, kb, 16 * kk, p, lane);
        mma16816<T>(acc[2 * p], a, bf[0], bf[1]);
        mma16816<T>(acc[2 * p + 1], a, bf[2], bf[3]);
      }
    }
    __syncthreads();
  }
  store_acc<T, D>(dq + b * lq * lddq + (i64)h * D, lddq, lq, q0 + warp * 16, acc, scale, scale, lane);
}

#define MMA_KV_BK 64
#define MMA_KV_BQ 32

// dK, dV. Grid (ceil(Lk / 64), H, B), block 128; dynamic shared (2 * 64 + 4 * 32) * D * 2 + 4 * 32 * 4 bytes.
// Warp w owns key rows 16 w.. of the block's 64; it computes S^T = K Q^T and dP^T = V dO^T for 32-query tiles (Q, dO,
// lse and delta double-buffered), then dV += P^T dO and dK += dS^T Q.
template <typename T, int D>
__device__ void attn_bwd_dkdv_mma_impl(T* dk, i64 lddk, T* dv, i64 lddv, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv,
                                       const T* dout, i64 lddo, const float* lse, const float* delta, int heads, i64 lq, i64 lk, float scale) {
  constexpr int BK = MMA_KV_BK, BQ = MMA_KV_BQ, KS = D / 16, DT = D / 8;
  IMPASTO_DYN_SMEM(uint8_t, smem);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const i64 b = blockIdx.z, k0 = (i64)blockIdx.x * BK;
  const int h = blockIdx.y;
  const T* qg = q + b * lq * ldq + (i64)h * D;
  const T* gg = dout + b * lq * lddo + (i64)h * D;
  const float* lrow = lse + (b * heads + h) * lq;
  const float* drow = delta + (b * heads + h) * lq;
  const uint32_t sK = smem_u32(smem), sV = sK + BK * D * 2, sQ = sV + BK * D * 2, sG = sQ + 2 * BQ * D * 2;
  float* sL = reinterpret_cast<float*>(smem + (2 * BK + 4 * BQ) * D * 2);  // [2][BQ] lse * log2(e)
  float* sD = sL + 2 * BQ;                                                  // [2][BQ] delta
  constexpr uint32_t QG_STRIDE = BQ * D * 2;

  tile_async<D, BK, 128>(sK, k + b * lk * ldk + (i64)h * D, ldk, k0, lk);
  tile_async<D, BK, 128>(sV, v + b * lk * ldv + (i64)h * D, ldv, k0, lk);
  tile_async<D, BQ, 128>(sQ, qg, ldq, 0, lq);
  tile_async<D, BQ, 128>(sG, gg, lddo, 0, lq);
  cp_async_commit();
  if (threadIdx.x < BQ) {
    const int i = threadIdx.x;
    sL[i] = i < lq ? lrow[i] * LOG2E : 0.f;
    sD[i] = i < lq ? drow[i] : 0.f;
  }
  const float sl2 = scale * LOG2E;

  float ak[DT][4], av[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; dt++)
#pragma unroll
    for (int e = 0; e < 4; e++) ak[dt][e] = av[dt][e] = 0.f;
  const int ntiles = (int)((lq + BQ - 1) / BQ);
  for (int t = 0; t < ntiles; t++) {
    const int buf = t & 1;
    if (t + 1 < ntiles) {
      const i64 n0 = (i64)(t + 1) * BQ;
      tile_async<D, BQ, 128>(sQ + (buf ^ 1) * QG_STRIDE, qg, ldq, n0, lq);
      tile_async<D, BQ, 128>(sG + (buf ^ 1) * QG_STRIDE, gg, lddo, n0, lq);
      if (threadIdx.x < BQ) {
        const i64 i = n0 + threadIdx.x;
        sL[(buf ^ 1) * BQ + threadIdx.x] = i < lq ? lrow[i] * LOG2E : 0.f;
        sD[(buf ^ 1) * BQ + threadIdx.x] = i < lq ? drow[i] : 0.f;
      }
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const uint32_t qb = sQ + buf * QG_STRIDE, gb = sG + buf * QG_STRIDE;
    float st[BQ / 8][4], dpt[BQ / 8][4];
#pragma unroll
    for (int nt = 0; nt < BQ / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) st[nt][e] = dpt[nt][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < KS; ks++) {
      uint32_t ka[4], va[4];
      frag_a<D>(ka, sK, warp * 16, ks, lane);
      frag_a<D>(va, sV, warp * 16, ks, lane);
#pragma unroll
      for (int p = 0; p < BQ / 16; p++) {
        uint32_t bf[4];
        frag_b_nk<D>(bf, qb, 16 * p, ks, lane);
        mma16816<T>(st[2 * p], ka, bf[0], bf[1]);
        mma16816<T>(st[2 * p + 1], ka, bf[2], bf[3]);
        frag_b_nk<D>(bf, gb, 16 * p, ks, lane);
        mma16816<T>(dpt[2 * p], va, bf[0], bf[1]);
        mma16816<T>(dpt[2 * p + 1], va, bf[2], bf[3]);
      }
    }
    const i64 qbase = (i64)t * BQ;
#pragma unroll
    for (int nt = 0; nt < BQ / 8; nt++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int col = nt * 8 + 2 * (lane & 3) + (e & 1);
        const bool valid = qbase + col < lq;
        const float pv = valid ? exp2f(fmaf(st[nt][e], sl2, -sL[buf * BQ + col])) : 0.f;
        st[nt][e] = pv;
        dpt[nt][e] = pv * (dpt[nt][e] - sD[buf * BQ + col]);
      }
    }
#pragma unroll
    for (int kk = 0; kk < BQ / 16; kk++) {
      uint32_t pa[4], sa[4];
      acc_to_a<T>(pa, st[2 * kk], st[2 * kk + 1]);
      acc_to_a<T>(sa, dpt[2 * kk], dpt[2 * kk + 1]);
#pragma unroll
      for (int p = 0; p < D / 16; p++) {
        uint32_t bf[4];
        frag_b_kn<D>(bf, gb, 16 * kk, p, lane);
        mma16816<T>(av[2 * p], pa, bf[0], bf[1]);
        mma16816<T>(av[2 * p + 1], pa, bf[2], bf[3]);
        frag_b_kn<D>(bf, qb, 16 * kk, p, lane);
        mma16816<T>(ak[2 * p], sa, bf[0], bf[1]);
        mma16816<T>(ak[2 * p + 1], sa, bf[2], bf[3]);
      }
    }
    __syncthreads();
  }
  const i64 row0 = k0 + warp * 16;
  store_acc<T, D>(dk + b * lk * lddk + (i64)h * D, lddk, lk, row0, ak, scale, scale, lane);
  store_acc<T, D>(dv + b * lk * lddv + (i64)h * D, lddv, lk, row0, av, 1.f, 1.f, lane);
}

#define ATTN_MMA_D(T, sfx, D)                                                                                           \
  IMPASTO_KERNEL void __launch_bounds__(128, 2) impasto_attn_fwd_mma_d##D##_##sfx(                                          \
      T* out, i64 ldo, float* lse, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv, int heads, i64 lq,    \
      i64 lk, float scale) {                                                                                             \
    attn_fwd_mma_impl<T, D>(out, ldo, lse, q, ldq, k, ldk, v, ldv, heads, lq, lk, scale);                                \
  }                                                                                                                      \
  IMPASTO_KERNEL void __launch_bounds__(128, 2) impasto_attn_bwd_dq_mma_d##D##_##sfx(                                       \
      T* dq, i64 lddq, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv, const T* dout, i64 lddo,           \
      const float* lse, const float* delta, int heads, i64 lq, i64 lk, float scale) {                                    \
    attn_bwd_dq_mma_impl<T, D>(dq, lddq, q, ldq, k, ldk, v, ldv, dout, lddo, lse, delta, heads, lq, lk, scale);          \
  }                                                                                                                      \
  IMPASTO_KERNEL void __launch_bounds__(128, 2) impasto_attn_bwd_dkdv_mma_d##D##_##sfx(                                     \
      T* dk, i64 lddk, T* dv, i64 lddv, const T* q, i64 ldq, const T* k, i64 ldk, const T* v, i64 ldv, const T* dout,    \
      i64 lddo, const float* lse, const float* delta, int heads, i64 lq, i64 lk, float scale) {                          \
    attn_bwd_dkdv_mma_impl<T, D>(dk, lddk, dv, lddv, q, ldq, k, ldk, v, ldv, dout, lddo, lse, delta, heads, lq, lk,      \
                                 scale);                                                                                 \
  }
#define ATTN_MMA(T, sfx) ATTN_MMA_D(T, sfx, 64) ATTN_MMA_D(T, sfx, 128)
ATTN_MMA(bf16, bf16)
ATTN_MMA(f16, f16)
