// Kernels of the text encoders and the autoencoder (inference only): embedding gather, RMSNorm, LayerNorm, quick
// GELU, the softmax of the GEMM-based attention (fp32 scores, additive bias, causal mask), GroupNorm (+SiLU), nearest
// 2x upsampling, zero padding, batched transpose, im2col and per-channel bias for the fallback convolution.
// Launch geometry and argument order are set by dev.impasto.tensor.cuda.CudaEncoderOps; every kernel loops with a
// grid stride, so any grid size is correct. Helpers live in namespace impasto_enc to stay clear of other files.
#include "common.cuh"

namespace impasto_enc {

// to_f/from_f, warp_sum/warp_max and block_sum come from common.cuh

__device__ float block_max(float v) {
  __shared__ float part[32];
  __shared__ float total;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < (int)(blockDim.x >> 5) ? part[lane] : -INFINITY;
    s = warp_max(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  return total;
}

__device__ __forceinline__ long long gtid() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ long long gstride() { return (long long)gridDim.x * blockDim.x; }

// out[r, :] = table[ids[r], :] (zeros for an id outside [0, vocab): the host checks ids first)
template <typename T>
__device__ void embedding(T* out, long long ldo, const int* ids, const T* table, long long ldt, long long n, long long d, long long vocab) {
  for (long long i = gtid(); i < n * d; i += gstride()) {
    long long r = i / d, c = i % d;
    int id = ids[r];
    out[r * ldo + c] = (id >= 0 && id < vocab) ? table[(long long)id * ldt + c] : from_f<T>(0.f);
  }
}

// one block per row (grid-stride over rows)
template <typename T>
__device__ void rmsnorm(T* out, long long ldo, const T* x, long long ldx, const T* w, long long rows, long long cols, float eps) {
  for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * ldx;
    float ss = 0.f;
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) { float v = to_f(xr[c]); ss += v * v; }
    float rs = rsqrtf(block_sum(ss) / (float)cols + eps);
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) out[r * ldo + c] = from_f<T>(to_f(w[c]) * (to_f(xr[c]) * rs));
  }
}

template <typename T>
__device__ void layernorm(T* out, long long ldo, const T* x, long long ldx, const T* w, const T* b, long long rows, long long cols, float eps) {
  for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * ldx;
    float s = 0.f;
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) s += to_f(xr[c]);
    float mean = block_sum(s) / (float)cols;
    float sq = 0.f;
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) { float d = to_f(xr[c]) - mean; sq += d * d; }
    float rs = rsqrtf(block_sum(sq) / (float)cols + eps);
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
      float v = (to_f(xr[c]) - mean) * rs * to_f(w[c]) + (b ? to_f(b[c]) : 0.f);
      out[r * ldo + c] = from_f<T>(v);
    }
  }
}

template <typename T>
__device__ void quick_gelu(T* out, long long ldo, const T* x, long long ldx, long long rows, long long cols) {
  for (long long i = gtid(); i < rows * cols; i += gstride()) {
    long long r = i / cols, c = i % cols;
    float v = to_f(x[r * ldx + c]);
    out[r * ldo + c] = from_f<T>(v / (1.f + __expf(-1.702f * v)));
  }
}

// P = softmax over each row of S (already scaled) + bias[h, i, :], keys j > i masked when causal.
// S, P: [H * chunk, lk] contiguous; row r is head r / chunk, query q0 + r % chunk; bias F32 [H, lq, lk] or null.
template <typename T>
__device__ void softmax_rows(T* p, const float* s, const float* bias, long long rows, long long lk, long long chunk, long long q0, long long lq,
                             int causal) {
  for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
    long long h = r / chunk, i = q0 + r % chunk;
    const float* sr = s + r * lk;
    const float* br = bias ? bias + (h * lq + i) * lk : nullptr;
    long long kmax = causal ? (i + 1 < lk ? i + 1 : lk) : lk;
    float m = -INFINITY;
    for (long long j = threadIdx.x; j < kmax; j += blockDim.x) m = fmaxf(m, sr[j] + (br ? br[j] : 0.f));
    m = block_max(m);
    float sum = 0.f;
    for (long long j = threadIdx.x; j < kmax; j += blockDim.x) sum += __expf(sr[j] + (br ? br[j] : 0.f) - m);
    float inv = 1.f / block_sum(sum);
    for (long long j = threadIdx.x; j < lk; j += blockDim.x)
      p[r * lk + j] = from_f<T>(j < kmax ? __expf(sr[j] + (br ? br[j] : 0.f) - m) * inv : 0.f);
  }
}

// GroupNorm statistics: grid (chunks, B * groups); stats[2 g] += sum, stats[2 g + 1] += sum of squares (doubles)
template <typename T>
__device__ void group_stats(double* stats, const T* x, long long group_size, long long chunk) {
  long long g = blockIdx.y;
  const T* xg = x + g * group_size;
  long long start = (long long)blockIdx.x * chunk, end = start + chunk < group_size ? start + chunk : group_size;
  float s = 0.f, sq = 0.f;
  for (long long i = start + threadIdx.x; i < end; i += blockDim.x) { float v = to_f(xg[i]); s += v; sq += v * v; }
  s = block_sum(s);
  sq = block_sum(sq);
  if (threadIdx.x == 0) {
    atomicAdd(&stats[2 * g], (double)s);
    atomicAdd(&stats[2 * g + 1], (double)sq);
  }
}

template <typename T>
__device__ void group_apply(T* out, const T* x, const double* stats, const T* w, const T* b, long long total, long long spatial, long long channels,
                            long long group_size, float eps, int silu) {
  for (long long i = gtid(); i < total; i += gstride()) {
    long long g = i / group_size, c = (i / spatial) % channels;
    double mean = stats[2 * g] / (double)group_size;
    double var = stats[2 * g + 1] / (double)group_size - mean * mean;
    float rs = rsqrtf((float)(var > 0 ? var : 0) + eps);
    float v = (to_f(x[i]) - (float)mean) * rs * to_f(w[c]) + (b ? to_f(b[c]) : 0.f);
    if (silu) v = v / (1.f + __expf(-v));
    out[i] = from_f<T>(v);
  }
}

template <typename T>
__device__ void upsample2x(T* out, const T* x, long long planes, long long h, long long w) {
  long long total = planes * 4 * h * w;
  for (long long i = gtid(); i < total; i += gstride()) {
    long long ox = i % (2 * w), oy = (i / (2 * w)) % (2 * h), p = i / (4 * h * w);
    out[i] = x[(p * h + oy / 2) * w + ox / 2];
  }
}

template <typename T>
__device__ void pad2d(T* out, const T* x, long long planes, long long h, long long w, long long ho, long long wo, long long top, long long left) {
  long long total = planes * ho * wo;
  for (long long i = gtid(); i < total; i += gstride()) {
    long long ox = i % wo, oy = (i / wo) % ho, p = i / (ho * wo);
    long long iy = oy - top, ix = ox - left;
    out[i] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[(p * h + iy) * w + ix] : from_f<T>(0.f);
  }
}

// out[b] = x[b]^T for x [B, m, n]; blocks of 32x8 threads over 32x32 tiles, grid (n tiles, m tiles, B)
template <typename T>
__device__ void transpose(T* out, const T* x, long long m, long long n) {
  __shared__ T tile[32][33];
  long long b = blockIdx.z;
  const T* xb = x + b * m * n;
  T* ob = out + b * m * n;
  long long c0 = (long long)blockIdx.x * 32, r0 = (long long)blockIdx.y * 32;
  for (int dy = threadIdx.y; dy < 32; dy += blockDim.y) {
    long long r = r0 + dy, c = c0 + threadIdx.x;
    if (r < m && c < n) tile[dy][threadIdx.x] = xb[r * n + c];
  }
  __syncthreads();
  for (int dy = threadIdx.y; dy < 32; dy += blockDim.y) {
    long long c = c0 + dy, r = r0 + threadIdx.x;  // out row c, column r
    if (c < n && r < m) ob[c * m + r] = tile[threadIdx.x][dy];
  }
}

// cols [cin kh kw, rows_out wo] for output rows [oy0, oy0 + rows_out) of one image x [cin, h, w]
template <typename T>
__device__ void im2col(T* cols, const T* x, long long cin, long long h, long long w, int kh, int kw, int stride, int pad, long long wo, long long oy0,
                       long long rows_out) {
  long long npos = rows_out * wo, total = cin * kh * kw * npos;
  for (long long i = gtid(); i < total; i += gstride()) {
    long long k = i / npos, pidx = i % npos;
    long long oy = oy0 + pidx / wo, ox = pidx % wo;
    long long ci = k / (kh * kw), ky = (k / kw) % kh, kx = k % kw;
    long long iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
    cols[i] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[(ci * h + iy) * w + ix] : from_f<T>(0.f);
  }
}

template <typename T>
__device__ void channel_bias(T* out, const T* bias, long long total, long long spatial, long long channels) {
  for (long long i = gtid(); i < total; i += gstride()) out[i] = from_f<T>(to_f(out[i]) + to_f(bias[(i / spatial) % channels]));
}

}  // namespace impasto_enc

#define IMPASTO_ENC_KERNELS(S, T)                                                                                                       \
  extern "C" __global__ void impasto_enc_embedding_##S(T* out, long long ldo, const int* ids, const T* table, long long ldt, long long n,  \
                                                       long long d, long long vocab) {                                                  \
    impasto_enc::embedding<T>(out, ldo, ids, table, ldt, n, d, vocab);                                                                  \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_rmsnorm_##S(T* out, long long ldo, const T* x, long long ldx, const T* w, long long rows,        \
                                                     long long cols, float eps) {                                                       \
    impasto_enc::rmsnorm<T>(out, ldo, x, ldx, w, rows, cols, eps);                                                                      \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_layernorm_##S(T* out, long long ldo, const T* x, long long ldx, const T* w, const T* b,          \
                                                       long long rows, long long cols, float eps) {                                     \
    impasto_enc::layernorm<T>(out, ldo, x, ldx, w, b, rows, cols, eps);                                                                 \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_quick_gelu_##S(T* out, long long ldo, const T* x, long long ldx, long long rows, long long cols) { \
    impasto_enc::quick_gelu<T>(out, ldo, x, ldx, rows, cols);                                                                           \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_softmax_##S(T* p, const float* s, const float* bias, long long rows, long long lk,              \
                                                     long long chunk, long long q0, long long lq, int causal) {                         \
    impasto_enc::softmax_rows<T>(p, s, bias, rows, lk, chunk, q0, lq, causal);                                                          \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_group_stats_##S(double* stats, const T* x, long long group_size, long long chunk) {             \
    impasto_enc::group_stats<T>(stats, x, group_size, chunk);                                                                           \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_group_apply_##S(T* out, const T* x, const double* stats, const T* w, const T* b,               \
                                                         long long total, long long spatial, long long channels, long long group_size,  \
                                                         float eps, int silu) {                                                         \
    impasto_enc::group_apply<T>(out, x, stats, w, b, total, spatial, channels, group_size, eps, silu);                                  \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_upsample2x_##S(T* out, const T* x, long long planes, long long h, long long w) {                 \
    impasto_enc::upsample2x<T>(out, x, planes, h, w);                                                                                   \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_pad2d_##S(T* out, const T* x, long long planes, long long h, long long w, long long ho,          \
                                                   long long wo, long long top, long long left) {                                       \
    impasto_enc::pad2d<T>(out, x, planes, h, w, ho, wo, top, left);                                                                     \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_transpose_##S(T* out, const T* x, long long m, long long n) {                                   \
    impasto_enc::transpose<T>(out, x, m, n);                                                                                            \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_im2col_##S(T* cols, const T* x, long long cin, long long h, long long w, int kh, int kw,         \
                                                    int stride, int pad, long long wo, long long oy0, long long rows_out) {             \
    impasto_enc::im2col<T>(cols, x, cin, h, w, kh, kw, stride, pad, wo, oy0, rows_out);                                                 \
  }                                                                                                                                     \
  extern "C" __global__ void impasto_enc_channel_bias_##S(T* out, const T* bias, long long total, long long spatial, long long channels) { \
    impasto_enc::channel_bias<T>(out, bias, total, spatial, channels);                                                                  \
  }

IMPASTO_ENC_KERNELS(f32, float)
IMPASTO_ENC_KERNELS(bf16, __nv_bfloat16)
IMPASTO_ENC_KERNELS(f16, __half)
