// LayerNorm without affine (eps 1e-6, biased variance) fused with the adaLN modulation, and its backward.
//
// Geometry (ln_mod, ln_mod_bwd): one warp per row, 256-thread blocks (8 rows per block), grid-stride over rows;
// CudaBackend launches min(ceil(rows / 8), 65535 * 16) blocks. When every operand allows 16-byte vectors and the
// row fits (cols <= 32 lanes * 12 vectors * 8 = 3072 for bf16/f16, 1536 for f32) the row is read once into
// registers; otherwise the row is re-read from memory (L1/L2) for each pass, element by element.
#pragma once
#include "common.cuh"

#define LN_EPS 1e-6f
#define LN_MAXV 12  // 16-byte vectors per lane held in registers

// Raw 16-byte vector <-> floats.
template <typename T>
__device__ __forceinline__ void unpack_vec(const uint4& w, float (&v)[Vec<T>::N]) {
  load_n<T, Vec<T>::N>(v, reinterpret_cast<const T*>(&w));
}

template <typename T>
__device__ void ln_mod_impl(T* o, i64 ldo, float* mean, float* rstd, const T* x, i64 ldx, const T* shift, i64 ldsh, const T* scale,
                            i64 ldsc, i64 rows, i64 cols, i64 per) {
  constexpr int V = Vec<T>::N;
  const int lane = threadIdx.x & 31;
  const i64 warp0 = global_thread() >> 5, nwarps = global_threads() >> 5;
  const bool inreg = cols % V == 0 && cols <= 32 * V * LN_MAXV && vec_ok<T>(x, ldx, V) && vec_ok<T>(o, ldo, V) &&
                     (shift == nullptr || vec_ok<T>(shift, ldsh, V)) && (scale == nullptr || vec_ok<T>(scale, ldsc, V));
  const float inv = 1.f / (float)cols;
  for (i64 r = warp0; r < rows; r += nwarps) {
    const T* xr = x + r * ldx;
    T* orow = o + r * ldo;
    const i64 b = r / per;
    const T* sh = shift == nullptr ? nullptr : shift + b * ldsh;
    const T* sc = scale == nullptr ? nullptr : scale + b * ldsc;
    float mu, rs;
    if (inreg) {
      uint4 raw[LN_MAXV];
      float s = 0.f;
#pragma unroll
      for (int i = 0; i < LN_MAXV; i++) {
        i64 c = (i64)(i * 32 + lane) * V;
        if (c < cols) {
          raw[i] = *reinterpret_cast<const uint4*>(xr + c);
          float v[V];
          unpack_vec<T>(raw[i], v);
#pragma unroll
          for (int j = 0; j < V; j++) s += v[j];
        }
      }
      mu = warp_sum(s) * inv;
      float q = 0.f;
#pragma unroll
      for (int i = 0; i < LN_MAXV; i++) {
        i64 c = (i64)(i * 32 + lane) * V;
        if (c < cols) {
          float v[V];
          unpack_vec<T>(raw[i], v);
#pragma unroll
          for (int j = 0; j < V; j++) q = fmaf(v[j] - mu, v[j] - mu, q);
        }
      }
      rs = rsqrtf(warp_sum(q) * inv + LN_EPS);
#pragma unroll
      for (int i = 0; i < LN_MAXV; i++) {
        i64 c = (i64)(i * 32 + lane) * V;
        if (c < cols) {
          float v[V], a[V], m[V];
          unpack_vec<T>(raw[i], v);
          if (sc != nullptr) load_n<T, V>(a, sc + c);
          if (sh != nullptr) load_n<T, V>(m, sh + c);
#pragma unroll
          for (int j = 0; j < V; j++) {
            float n = (v[j] - mu) * rs;
            if (sc != nullptr) n = fmaf(1.f + a[j], n, sh != nullptr ? m[j] : 0.f);
            else if (sh != nullptr) n += m[j];
            v[j] = n;
          }
          store_n<T, V>(orow + c, v);
        }
      }
    } else {
      float s = 0.f;
      for (i64 c = lane; c < cols; c += 32) s += to_f(xr[c]);
      mu = warp_sum(s) * inv;
      float q = 0.f;
      for (i64 c = lane; c < cols; c += 32) {
        float d = to_f(xr[c]) - mu;
        q = fmaf(d, d, q);
      }
      rs = rsqrtf(warp_sum(q) * inv + LN_EPS);
      for (i64 c = lane; c < cols; c += 32) {
        float n = (to_f(xr[c]) - mu) * rs;
        if (sc != nullptr) n = fmaf(1.f + to_f(sc[c]), n, sh != nullptr ? to_f(sh[c]) : 0.f);
        else if (sh != nullptr) n += to_f(sh[c]);
        orow[c] = from_f<T>(n);
      }
    }
    if (lane == 0) {
      if (mean != nullptr) mean[r] = mu;
      if (rstd != nullptr) rstd[r] = rs;
    }
  }
}

// dx = rstd * (g - mean(g) - n * mean(g n)) + beta * dx, g = dy * (1 + scale[b]) (scale null: g = dy),
// n = (x - mean[r]) * rstd[r] from the forward's saved statistics.
template <typename T>
__device__ void ln_mod_bwd_impl(T* dx, i64 lddx, const T* dy, i64 lddy, const T* x, i64 ldx, const float* mean, const float* rstd,
                                const T* scale, i64 ldsc, i64 rows, i64 cols, i64 per, float beta) {
  constexpr int V = Vec<T>::N;
  const int lane = threadIdx.x & 31;
  const i64 warp0 = global_thread() >> 5, nwarps = global_threads() >> 5;
  const bool inreg = cols % V == 0 && cols <= 32 * V * LN_MAXV && vec_ok<T>(x, ldx, V) && vec_ok<T>(dx, lddx, V) &&
                     vec_ok<T>(dy, lddy, V) && (scale == nullptr || vec_ok<T>(scale, ldsc, V));
  const float inv = 1.f / (float)cols;
  for (i64 r = warp0; r < rows; r += nwarps) {
    const T* xr = x + r * ldx;
    const T* gr = dy + r * lddy;
    T* dr = dx + r * lddx;
    const T* sc = scale == nullptr ? nullptr : scale + (r / per) * ldsc;
    const float mu = mean[r], rs = rstd[r];
    if (inreg) {
      uint4 rawx[LN_MAXV], rawg[LN_MAXV];
      float sg = 0.f, sgn = 0.f;
#pragma unroll
      for (int i = 0; i < LN_MAXV; i++) {
        i64 c = (i64)(i * 32 + lane) * V;
        if (c < cols) {
          rawx[i] = *reinterpret_cast<const uint4*>(xr + c);
          rawg[i] = *reinterpret_cast<const uint4*>(gr + c);
        }
      }
#pragma unroll
      for (int i = 0; i < LN_MAXV; i++) {
        i64 c = (i64)(i * 32 + lane) * V;
        if (c < cols) {
          float xv[V], g[V], a[V];
          unpack_vec<T>(rawx[i], xv);
          unpack_vec<T>(rawg[i], g);
          if (sc != nullptr) load_n<T, V>(a, sc + c);
#pragma unroll
          for (int j = 0; j < V; j++) {
            float gs = sc != nullptr ? g[j] * (1.f + a[j]) : g[j];
            sg += gs;
            sgn = fmaf(gs, (xv[j] - mu) * rs, sgn);
          }
        }
      }
      const float mg = warp_sum(sg) * inv, mgn = warp_sum(sgn) * inv;
#pragma unroll
      for (int i = 0; i < LN_MAXV; i++) {
        i64 c = (i64)(i * 32 + lane) * V;
        if (c < cols) {
          float xv[V], g[V], a[V], old[V];
          unpack_vec<T>(rawx[i], xv);
          unpack_vec<T>(rawg[i], g);
          if (sc != nullptr) load_n<T, V>(a, sc + c);
          if (beta != 0.f) load_n<T, V>(old, dr + c);
#pragma unroll
          for (int j = 0; j < V; j++) {
            float gs = sc != nullptr ? g[j] * (1.f + a[j]) : g[j];
            float n = (xv[j] - mu) * rs;
            float v = rs * (gs - mg - n * mgn);
            if (beta != 0.f) v = fmaf(beta, old[j], v);
            xv[j] = v;
          }
          store_n<T, V>(dr + c, xv);
        }
      }
    } else {
      float sg = 0.f, sgn = 0.f;
      for (i64 c = lane; c < cols; c += 32) {
        float gs = to_f(gr[c]);
        if (sc != nullptr) gs *= 1.f + to_f(sc[c]);
        sg += gs;
        sgn = fmaf(gs, (to_f(xr[c]) - mu) * rs, sgn);
      }
      const float mg = warp_sum(sg) * inv, mgn = warp_sum(sgn) * inv;
      for (i64 c = lane; c < cols; c += 32) {
        float gs = to_f(gr[c]);
        if (sc != nullptr) gs *= 1.f + to_f(sc[c]);
        float n = (to_f(xr[c]) - mu) * rs;
        float v = rs * (gs - mg - n * mgn);
        if (beta != 0.f) v = fmaf(beta, to_f(dr[c]), v);
        dr[c] = from_f<T>(v);
      }
    }
  }
}

// Column sums for the modulation gradients, pass 1 of the scheme in elementwise.cu (grid (ceil(cols / 32), batches,
// splits), block (32, 8)): quantity 0 = sum of dy (dshift), quantity 1 = sum of dy * n (dscale).
template <typename T>
__device__ void ln_mod_bwd_params_impl(float* partial, const T* dy, i64 lddy, const T* x, i64 ldx, const float* mean, const float* rstd,
                                       i64 cols, i64 per, i64 chunk) {
  __shared__ float sh[8][33];
  const i64 c = (i64)blockIdx.x * 32 + threadIdx.x;
  const i64 b = blockIdx.y, s = blockIdx.z, batches = gridDim.y, splits = gridDim.z;
  const i64 r0 = s * chunk, r1 = min(per, r0 + chunk);
  float a0 = 0.f, a1 = 0.f;
  if (c < cols) {
    const i64 base = b * per;
    i64 r = r0 + threadIdx.y;
    for (; r + 8 < r1; r += 16) {
      i64 ra = base + r, rb = ra + 8;
      float ga = to_f(dy[ra * lddy + c]), gb = to_f(dy[rb * lddy + c]);
      float xa = to_f(x[ra * ldx + c]), xb = to_f(x[rb * ldx + c]);
      float ma = mean[ra], mb = mean[rb], sa = rstd[ra], sb = rstd[rb];
      a0 += ga + gb;
      a1 = fmaf(ga, (xa - ma) * sa, a1);
      a1 = fmaf(gb, (xb - mb) * sb, a1);
    }
    for (; r < r1; r += 8) {
      i64 ra = base + r;
      float ga = to_f(dy[ra * lddy + c]);
      a0 += ga;
      a1 = fmaf(ga, (to_f(x[ra * ldx + c]) - mean[ra]) * rstd[ra], a1);
    }
  }
  float t0 = colsum_block_reduce(a0, sh);
  float t1 = colsum_block_reduce(a1, sh);
  if (threadIdx.y == 0 && c < cols) {
    partial[(s * batches + b) * cols + c] = t0;
    partial[((splits + s) * batches + b) * cols + c] = t1;
  }
}

#define LAYERNORM(T, sfx)                                                                                               \
  IMPASTO_KERNEL void impasto_ln_mod_##sfx(T* o, i64 ldo, float* mean, float* rstd, const T* x, i64 ldx, const T* shift, \
                                           i64 ldsh, const T* scale, i64 ldsc, i64 rows, i64 cols, i64 per) {            \
    ln_mod_impl<T>(o, ldo, mean, rstd, x, ldx, shift, ldsh, scale, ldsc, rows, cols, per);                               \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_ln_mod_bwd_##sfx(T* dx, i64 lddx, const T* dy, i64 lddy, const T* x, i64 ldx,              \
                                               const float* mean, const float* rstd, const T* scale, i64 ldsc, i64 rows, \
                                               i64 cols, i64 per, float beta) {                                          \
    ln_mod_bwd_impl<T>(dx, lddx, dy, lddy, x, ldx, mean, rstd, scale, ldsc, rows, cols, per, beta);                      \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_ln_mod_bwd_params_##sfx(float* partial, const T* dy, i64 lddy, const T* x, i64 ldx,        \
                                                      const float* mean, const float* rstd, i64 cols, i64 per,           \
                                                      i64 chunk) {                                                       \
    ln_mod_bwd_params_impl<T>(partial, dy, lddy, x, ldx, mean, rstd, cols, per, chunk);                                  \
  }
IMPASTO_FOR_TYPES(LAYERNORM)
