// QK RMSNorm + RoPE on a fused projection, and its backward.
//
// qkv [B, L, 3 H Dh] (row stride ldqkv: it may be a column view of a wider projection) -> q, k, v contiguous
// [B, Ltot, H Dh] at sequence rows [seqOffset, seqOffset + L). For q and k of each head: RMSNorm over Dh in fp32
// (eps 1e-6), times the learned scale [Dh], then the pairs (2j, 2j+1) rotated by pe[seqOffset + l, j] = (cos, sin)
// (pe: F32 [Ltot, Dh / 2, 2]): out_2j = cos y_2j - sin y_2j+1, out_2j+1 = sin y_2j + cos y_2j+1. v is copied.
// rstd (F32 [B, H, L], may be null) receives 1 / sqrt(mean(x^2) + eps) of q and k.
//
// Geometry: one warp per (batch, token, head) doing q, k and v of that head; lane owns pairs j = lane + 32 t,
// so a warp reads 32 consecutive pairs (128 bytes in bf16) per load. 256-thread blocks, grid-stride; CudaBackend
// launches min(ceil(B L H / 8), 65535 * 16) blocks. Dh must be even and at most 512 (checked on the host).
#pragma once
#include "common.cuh"

#define RMS_EPS 1e-6f
#define ROPE_MAXP 8  // pairs per lane: Dh <= 2 * 32 * 8

template <typename T>
__device__ void qk_norm_rope_impl(T* q, T* k, T* v, float* qRstd, float* kRstd, const T* qkv, i64 ldqkv, const T* qScale, const T* kScale,
                                  const float* pe, i64 batch, i64 len, i64 ltot, int heads, int dh, i64 seqOffset) {
  const int lane = threadIdx.x & 31;
  const int half = dh >> 1;
  const i64 hd = (i64)heads * dh;
  const i64 items = batch * len * heads;
  const float invDh = 1.f / (float)dh;
  for (i64 it = global_thread() >> 5; it < items; it += global_threads() >> 5) {
    const i64 bl = it / heads;
    const int h = (int)(it - bl * heads);
    const i64 b = bl / len, l = bl - b * len;
    const i64 pos = seqOffset + l;
    const T* in = qkv + bl * ldqkv + (i64)h * dh;
    const i64 outOff = (b * ltot + pos) * hd + (i64)h * dh;
    const float* pr = pe + pos * half * 2;
#pragma unroll
    for (int part = 0; part < 2; part++) {
      const T* src = in + part * hd;
      const T* scale = part == 0 ? qScale : kScale;
      T* dst = (part == 0 ? q : k) + outOff;
      float x0[ROPE_MAXP], x1[ROPE_MAXP];
      float ss = 0.f;
#pragma unroll
      for (int t = 0; t < ROPE_MAXP; t++) {
        int j = lane + 32 * t;
        x0[t] = x1[t] = 0.f;
        if (j < half) {
          x0[t] = to_f(src[2 * j]);
          x1[t] = to_f(src[2 * j + 1]);
          ss = fmaf(x0[t], x0[t], ss);
          ss = fmaf(x1[t], x1[t], ss);
        }
      }
      const float rs = rsqrtf(warp_sum(ss) * invDh + RMS_EPS);
      float* rstd = part == 0 ? qRstd : kRstd;
      if (rstd != nullptr && lane == 0) rstd[((b * heads + h) * len) + l] = rs;
#pragma unroll
      for (int t = 0; t < ROPE_MAXP; t++) {
        int j = lane + 32 * t;
        if (j < half) {
          float y0 = x0[t] * rs * to_f(scale[2 * j]), y1 = x1[t] * rs * to_f(scale[2 * j + 1]);
          float2 cs = *reinterpret_cast<const float2*>(pr + 2 * j);
          dst[2 * j] = from_f<T>(cs.x * y0 - cs.y * y1);
          dst[2 * j + 1] = from_f<T>(cs.y * y0 + cs.x * y1);
        }
      }
    }
    const T* srcv = in + 2 * hd;
    T* dstv = v + outOff;
    for (int d = lane; d < dh; d += 32) dstv[d] = srcv[d];
  }
}

// dqkv (row stride lddqkv) from dq, dk, dv [B, Ltot, H Dh] at the same rows: for q and k, gn = scale * R^T g (the
// rotation undone), then dx = rs gn - rs^3 x (gn . x) / Dh with rs recomputed from x; dv copied.
template <typename T>
__device__ void qk_norm_rope_bwd_impl(T* dqkv, i64 lddqkv, const T* dq, const T* dk, const T* dv, const T* qkv, i64 ldqkv, const T* qScale,
                                      const T* kScale, const float* pe, i64 batch, i64 len, i64 ltot, int heads, int dh, i64 seqOffset) {
  const int lane = threadIdx.x & 31;
  const int half = dh >> 1;
  const i64 hd = (i64)heads * dh;
  const i64 items = batch * len * heads;
  const float invDh = 1.f / (float)dh;
  for (i64 it = global_thread() >> 5; it < items; it += global_threads() >> 5) {
    const i64 bl = it / heads;
    const int h = (int)(it - bl * heads);
    const i64 b = bl / len, l = bl - b * len;
    const i64 pos = seqOffset + l;
    const T* in = qkv + bl * ldqkv + (i64)h * dh;
    T* out = dqkv + bl * lddqkv + (i64)h * dh;
    const i64 gOff = (b * ltot + pos) * hd + (i64)h * dh;
    const float* pr = pe + pos * half * 2;
#pragma unroll
    for (int part = 0; part < 2; part++) {
      const T* src = in + part * hd;
      const T* scale = part == 0 ? qScale : kScale;
      const T* g = (part == 0 ? dq : dk) + gOff;
      float x0[ROPE_MAXP], x1[ROPE_MAXP], g0[ROPE_MAXP], g1[ROPE_MAXP];
      float ss = 0.f, dot = 0.f;
#pragma unroll
      for (int t = 0; t < ROPE_MAXP; t++) {
        int j = lane + 32 * t;
        x0[t] = x1[t] = g0[t] = g1[t] = 0.f;
        if (j < half) {
          x0[t] = to_f(src[2 * j]);
          x1[t] = to_f(src[2 * j + 1]);
          float a = to_f(g[2 * j]), c = to_f(g[2 * j + 1]);
          float2 cs = *reinterpret_cast<const float2*>(pr + 2 * j);
          g0[t] = (cs.x * a + cs.y * c) * to_f(scale[2 * j]);
          g1[t] = (cs.x * c - cs.y * a) * to_f(scale[2 * j + 1]);
          ss = fmaf(x0[t], x0[t], ss);
          ss = fmaf(x1[t], x1[t], ss);
          dot = fmaf(g0[t], x0[t], dot);
          dot = fmaf(g1[t], x1[t], dot);
        }
      }
      const float rs = rsqrtf(warp_sum(ss) * invDh + RMS_EPS);
      const float k3 = rs * rs * rs * warp_sum(dot) * invDh;
      T* dst = out + part * hd;
#pragma unroll
      for (int t = 0; t < ROPE_MAXP; t++) {
        int j = lane + 32 * t;
        if (j < half) {
          dst[2 * j] = from_f<T>(rs * g0[t] - k3 * x0[t]);
          dst[2 * j + 1] = from_f<T>(rs * g1[t] - k3 * x1[t]);
        }
      }
    }
    const T* gv = dv + gOff;
    T* dstv = out + 2 * hd;
    for (int d = lane; d < dh; d += 32) dstv[d] = gv[d];
  }
}

#define ROPE(T, sfx)                                                                                                   \
  IMPASTO_KERNEL void impasto_qk_norm_rope_##sfx(T* q, T* k, T* v, float* qRstd, float* kRstd, const T* qkv, i64 ldqkv, \
                                                 const T* qScale, const T* kScale, const float* pe, i64 batch, i64 len, \
                                                 i64 ltot, int heads, int dh, i64 seqOffset) {                          \
    qk_norm_rope_impl<T>(q, k, v, qRstd, kRstd, qkv, ldqkv, qScale, kScale, pe, batch, len, ltot, heads, dh, seqOffset); \
  }                                                                                                                     \
  IMPASTO_KERNEL void impasto_qk_norm_rope_bwd_##sfx(T* dqkv, i64 lddqkv, const T* dq, const T* dk, const T* dv,        \
                                                     const T* qkv, i64 ldqkv, const T* qScale, const T* kScale,         \
                                                     const float* pe, i64 batch, i64 len, i64 ltot, int heads, int dh,  \
                                                     i64 seqOffset) {                                                   \
    qk_norm_rope_bwd_impl<T>(dqkv, lddqkv, dq, dk, dv, qkv, ldqkv, qScale, kScale, pe, batch, len, ltot, heads, dh,     \
                             seqOffset);                                                                                \
  }
IMPASTO_FOR_TYPES(ROPE)
