// Counter-based random numbers, bit-identical in their uniforms to dev.impasto.tensor.Philox (Philox4x32-10):
// element i (row-major over the logical [rows, cols] matrix) takes lane i % 4 of the block for counter
// (i / 4 low, i / 4 high, stream, 0) under key (seed low, seed high); uniforms are the top 24 bits times 2^-24.
//
// Geometry: a 1-D grid of 256-thread blocks, each thread one Philox block (4 elements) per grid-stride step;
// CudaBackend launches min(ceil(n / 4 / 256), 65535 * 32) blocks.
#pragma once
#include "common.cuh"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define STREAM_NORMAL 0u
#define STREAM_UNIFORM 1u

__device__ __forceinline__ uint4 philox4x32_10(u64 counter, uint32_t stream, u64 seed) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = stream, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma unroll
  for (int round = 0; round < 10; round++) {
    uint32_t lo0 = PHILOX_M0 * c0, hi0 = __umulhi(PHILOX_M0, c0);
    uint32_t lo1 = PHILOX_M1 * c2, hi1 = __umulhi(PHILOX_M1, c2);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  return make_uint4(c0, c1, c2, c3);
}

// The top 24 bits as a float in [0, 1): exact.
__device__ __forceinline__ float philox_uniform(uint32_t bits) { return (float)(bits >> 8) * 0x1p-24f; }

// Box-Muller on lanes (a, b): r = sqrt(-2 ln(1 - u_a)), z_a = r cos(2 pi u_b), z_b = r sin(2 pi u_b). 1 - u_a is exact
// in fp32 and sincospi takes 2 u_b (exact) without a rounded 2 pi, so the result is within a few fp32 ulps of the
// CPU's fp64 value (|z| < 5.8).
__device__ __forceinline__ void box_muller(uint32_t a, uint32_t b, float& za, float& zb) {
  float ua = philox_uniform(a), ub = philox_uniform(b);
  float r = sqrtf(-2.f * logf(1.f - ua));
  float s, c;
  sincospif(2.f * ub, &s, &c);
  za = r * c;
  zb = r * s;
}

// Writes the 4 values of Philox block q (elements 4q .. 4q + 3, clipped to n) into the rows x cols matrix.
template <typename T>
__device__ __forceinline__ void store_block(T* p, i64 ld, i64 cols, i64 n, i64 q, const float (&v)[4]) {
  i64 e = q * 4;
  i64 r = e / cols, c = e - r * cols;
#pragma unroll
  for (int j = 0; j < 4; j++) {
    if (e + j < n) p[r * ld + c] = from_f<T>(v[j]);
    if (++c == cols) { c = 0; r++; }
  }
}

template <typename T, bool NORMAL>
__device__ void random_impl(T* p, i64 ld, i64 rows, i64 cols, u64 seed) {
  i64 n = rows * cols;
  i64 blocks = (n + 3) / 4;
  for (i64 q = global_thread(); q < blocks; q += global_threads()) {
    uint4 x = philox4x32_10((u64)q, NORMAL ? STREAM_NORMAL : STREAM_UNIFORM, seed);
    float v[4];
    if (NORMAL) {
      box_muller(x.x, x.y, v[0], v[1]);
      box_muller(x.z, x.w, v[2], v[3]);
    } else {
      v[0] = philox_uniform(x.x); v[1] = philox_uniform(x.y); v[2] = philox_uniform(x.z); v[3] = philox_uniform(x.w);
    }
    store_block<T>(p, ld, cols, n, q, v);
  }
}

// Inverted dropout with the uniforms of rand(seed): out = x * scale where (uniform bits >> 8) >= threshold, else 0.
// threshold = ceil(p * 2^24) (computed on the host in fp64, so u >= p is decided exactly), scale = 1 / (1 - p).
template <typename T>
__device__ void dropout_impl(T* o, i64 ldo, const T* x, i64 ldx, i64 rows, i64 cols, int threshold, float scale, u64 seed) {
  i64 n = rows * cols;
  i64 blocks = (n + 3) / 4;
  for (i64 q = global_thread(); q < blocks; q += global_threads()) {
    uint4 u = philox4x32_10((u64)q, STREAM_UNIFORM, seed);
    uint32_t bits[4] = {u.x, u.y, u.z, u.w};
    i64 e = q * 4;
    i64 r = e / cols, c = e - r * cols;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      if (e + j < n) {
        float xv = to_f(x[r * ldx + c]);
        o[r * ldo + c] = from_f<T>((int)(bits[j] >> 8) >= threshold ? xv * scale : 0.f);
      }
      if (++c == cols) { c = 0; r++; }
    }
  }
}

#define RANDOM(T, sfx)                                                                                                 \
  IMPASTO_KERNEL void impasto_randn_##sfx(T* p, i64 ld, i64 rows, i64 cols, i64 seed) {                               \
    random_impl<T, true>(p, ld, rows, cols, (u64)seed);                                                                \
  }                                                                                                                    \
  IMPASTO_KERNEL void impasto_rand_##sfx(T* p, i64 ld, i64 rows, i64 cols, i64 seed) {                                \
    random_impl<T, false>(p, ld, rows, cols, (u64)seed);                                                               \
  }                                                                                                                    \
  IMPASTO_KERNEL void impasto_dropout_##sfx(T* o, i64 ldo, const T* x, i64 ldx, i64 rows, i64 cols, int threshold,    \
                                            float scale, i64 seed) {                                                   \
    dropout_impl<T>(o, ldo, x, ldx, rows, cols, threshold, scale, (u64)seed);                                          \
  }
IMPASTO_FOR_TYPES(RANDOM)
