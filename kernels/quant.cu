// Quantized weights: dequantization to a dense [N, K] tensor and dequantizing GEMV for a few rows of x.
//
// Layouts are exactly those of dev.impasto.quant (and of LinearWeight):
//   NF4 (bitsandbytes): element e of the row-major weight is nibble e of `packed` (HIGH nibble of byte e / 2 for even
//     e, LOW for odd e), value NF4_CODE[nibble] * absmax[e / blocksize]. Double-quantized: the per-block absmax is
//     nestedCode[codes[blk]] * nestedAbsmax[blk / nestedBlocksize] + nestedOffset.
//   int8: W[n, k] = q[n, k] * scale[n].
//   int4: byte n * ceil(K / 2) + k / 2 (HIGH nibble for even k), W = min[g] + q * scale[g], g = n * groups + k / groupSize.
//   GGUF Q8_0 (34 bytes / 32), Q4_0 (18 bytes / 32), Q4_K (144 bytes / 256) as ggml's dequantize_row_*; rows are whole
//     blocks, so the GEMV finds row n's blocks at n * (K / block elements) * block bytes.
// Every value is computed with the same fp32 operations, in the same order, as the CPU dequantizers (products and
// sums rounded separately: __fmul_rn / __fadd_rn keep the compiler from fusing them), so the result is bit-identical
// to WeightQuantizer.dequantize.
//
// Dequant geometry: 1-D grid of 256-thread blocks, grid-stride. The fast path (numel a multiple of 8, aligned
// pointers, and for int8 / int4 K a multiple of 8) gives each thread groups of 8 consecutive elements: one 4-byte
// (NF4, int4) or 8-byte (int8) load, one 16-byte store (bf16 / f16; two for f32), 4 groups in flight per thread.
// Otherwise one element per thread step. NF4, int8 and int4 take the destination's row stride ld (>= K): the weight may
// be written into the left K columns of a wider matrix ([W | s B] of a fused LoRA product, dev.impasto.model.Linear).
#pragma once
#include "common.cuh"

__constant__ float NF4_CODE[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f, -0.18477343022823334f,
    -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

#define DQ_UNROLL 4

// The NF4 code table in shared memory (a warp's 16-entry lookups hit 16 distinct banks: no conflicts). Call from all
// threads before any early exit.
__device__ __forceinline__ void nf4_table(float* code) {
  if (threadIdx.x < 16) code[threadIdx.x] = NF4_CODE[threadIdx.x];
  __syncthreads();
}

struct Nf4Scales {
  const float* absmax;        // plain form (nested == nullptr)
  const uint8_t* codes;       // nested form: u8 per block
  const float* nested;        // nested absmax, per nestedBlocksize codes
  const float* nestedCode;    // 256-entry map
  float offset;
  int blockShift;             // log2(blocksize)
  int nestedBlocksize;

  __device__ __forceinline__ float block(i64 blk) const {
    if (nested == nullptr) return absmax[blk];
    return __fadd_rn(__fmul_rn(nestedCode[codes[blk]], nested[blk / nestedBlocksize]), offset);
  }
  __device__ __forceinline__ float at(i64 e) const { return block(e >> blockShift); }
};

__device__ __forceinline__ Nf4Scales nf4_scales(const void* absmax, const float* nested, const float* nestedCode, float offset, int blocksize,
                                                int nestedBlocksize) {
  Nf4Scales s;
  s.absmax = (const float*)absmax;
  s.codes = (const uint8_t*)absmax;
  s.nested = nested;
  s.nestedCode = nestedCode;
  s.offset = offset;
  s.blockShift = __ffs(blocksize) - 1;
  s.nestedBlocksize = nestedBlocksize;
  return s;
}

// 8 NF4 code values from one little-endian packed word (byte j holds elements 2j (high nibble) and 2j + 1 (low)).
__device__ __forceinline__ void nf4_decode8(uint32_t w, const float* code, float (&v)[8]) {
#pragma unroll
  for (int j = 0; j < 4; j++) {
    v[2 * j] = code[(w >> (8 * j + 4)) & 15];
    v[2 * j + 1] = code[(w >> (8 * j)) & 15];
  }
}

// ------------------------------------------------------------------------------------------------ dequantization

// Output position of element e of the [n, k] weight in a destination whose rows lie ld elements apart (ld >= k; ld > k
// when the weight is written into the left part of a wider matrix, e.g. [W | LoRA B] for a fused LoRA product).
__device__ __forceinline__ i64 dq_out(i64 e, i64 k, i64 ld) {
  if (ld == k) return e;
  i64 r = e / k;
  return r * ld + (e - r * k);
}

template <typename T>
__device__ void dequant_nf4_impl(T* out, const uint8_t* packed, const void* absmax, const float* nested, const float* nestedCode, float offset,
                                 int blocksize, int nestedBlocksize, i64 numel, i64 k, i64 ld) {
  __shared__ float code[16];
  nf4_table(code);
  const Nf4Scales sc = nf4_scales(absmax, nested, nestedCode, offset, blocksize, nestedBlocksize);
  const i64 tid = global_thread(), nt = global_threads();
  const bool fast = numel % 8 == 0 && (uintptr_t)packed % 4 == 0 && (uintptr_t)out % 16 == 0 && (ld == k || (k % 8 == 0 && ld % 8 == 0));
  if (fast) {
    const i64 groups = numel / 8;
    for (i64 g0 = tid; g0 < groups; g0 += DQ_UNROLL * nt) {
      uint32_t w[DQ_UNROLL];
      float am[DQ_UNROLL];
#pragma unroll
      for (int u = 0; u < DQ_UNROLL; u++) {
        i64 g = g0 + u * nt;
        if (g < groups) {
          w[u] = reinterpret_cast<const uint32_t*>(packed)[g];
          am[u] = sc.at(g * 8);
        }
      }
#pragma unroll
      for (int u = 0; u < DQ_UNROLL; u++) {
        i64 g = g0 + u * nt;
        if (g < groups) {
          float v[8];
          nf4_decode8(w[u], code, v);
#pragma unroll
          for (int j = 0; j < 8; j++) v[j] = __fmul_rn(v[j], am[u]);
          store_n<T, 8>(out + dq_out(g * 8, k, ld), v);
        }
      }
    }
  } else {
    for (i64 e = tid; e < numel; e += nt) {
      int b = packed[e >> 1];
      int nib = (e & 1) ? (b & 15) : (b >> 4);
      out[dq_out(e, k, ld)] = from_f<T>(__fmul_rn(code[nib], sc.at(e)));
    }
  }
}

template <typename T>
__device__ void dequant_int8_impl(T* out, const int8_t* q, const float* scale, i64 n, i64 k, i64 ld) {
  const i64 numel = n * k, tid = global_thread(), nt = global_threads();
  const bool fast = k % 8 == 0 && ld % 8 == 0 && (uintptr_t)q % 8 == 0 && (uintptr_t)out % 16 == 0;
  if (fast) {
    const i64 groups = numel / 8;
    for (i64 g0 = tid; g0 < groups; g0 += DQ_UNROLL * nt) {
      uint2 w[DQ_UNROLL];
      float s[DQ_UNROLL];
#pragma unroll
      for (int u = 0; u < DQ_UNROLL; u++) {
        i64 g = g0 + u * nt;
        if (g < groups) {
          w[u] = reinterpret_cast<const uint2*>(q)[g];
          s[u] = scale[(g * 8) / k];
        }
      }
#pragma unroll
      for (int u = 0; u < DQ_UNROLL; u++) {
        i64 g = g0 + u * nt;
        if (g < groups) {
          float v[8];
#pragma unroll
          for (int j = 0; j < 4; j++) {
            v[j] = __fmul_rn((float)(int8_t)(w[u].x >> (8 * j)), s[u]);
            v[4 + j] = __fmul_rn((float)(int8_t)(w[u].y >> (8 * j)), s[u]);
          }
          store_n<T, 8>(out + dq_out(g * 8, k, ld), v);
        }
      }
    }
  } else {
    for (i64 e = tid; e < numel; e += nt) out[dq_out(e, k, ld)] = from_f<T>(__fmul_rn((float)q[e], scale[e / k]));
  }
}

template <typename T>
__device__ void dequant_int4_impl(T* out, const uint8_t* packed, const float* scale, const float* mn, int groupSize, i64 n, i64 k, i64 ld) {
  const i64 numel = n * k, tid = global_thread(), nt = global_threads();
  const i64 rowBytes = (k + 1) / 2, gpr = (k + groupSize - 1) / groupSize;
  const bool fast = k % 8 == 0 && ld % 8 == 0 && groupSize % 8 == 0 && (uintptr_t)packed % 4 == 0 && (uintptr_t)out % 16 == 0;
  if (fast) {
    // rows are whole words (rowBytes = k / 2, a multiple of 4): group g of 8 is word g of the packed array
    const i64 groups = numel / 8;
    for (i64 g0 = tid; g0 < groups; g0 += DQ_UNROLL * nt) {
      uint32_t w[DQ_UNROLL];
      float s[DQ_UNROLL], m[DQ_UNROLL];
#pragma unroll
      for (int u = 0; u < DQ_UNROLL; u++) {
        i64 g = g0 + u * nt;
        if (g < groups) {
          i64 e = g * 8, r = e / k, c = e - r * k;
          i64 gi = r * gpr + c / groupSize;
          w[u] = reinterpret_cast<const uint32_t*>(packed)[g];
          s[u] = scale[gi];
          m[u] = mn[gi];
        }
      }
#pragma unroll
      for (int u = 0; u < DQ_UNROLL; u++) {
        i64 g = g0 + u * nt;
        if (g < groups) {
          float v[8];
#pragma unroll
          for (int j = 0; j < 4; j++) {
            v[2 * j] = __fadd_rn(m[u], __fmul_rn((float)((w[u] >> (8 * j + 4)) & 15), s[u]));
            v[2 * j + 1] = __fadd_rn(m[u], __fmul_rn((float)((w[u] >> (8 * j)) & 15), s[u]));
          }
          store_n<T, 8>(out + dq_out(g * 8, k, ld), v);
        }
      }
    }
  } else {
    for (i64 e = tid; e < numel; e += nt) {
      i64 r = e / k, c = e - r * k;
      int b = packed[r * rowBytes + (c >> 1)];
      int qv = (c & 1) ? (b & 15) : (b >> 4);
      i64 gi = r * gpr + c / groupSize;
      out[r * ld + c] = from_f<T>(__fadd_rn(mn[gi], __fmul_rn((float)qv, scale[gi])));
    }
  }
}

__device__ __forceinline__ float f16_at(const uint8_t* p) {
  return __half2float(__ushort_as_half((unsigned short)(p[0] | (p[1] << 8))));
}

// GGUF blocks, one group of 8 outputs per thread step (numel is a whole number of blocks, so of groups).

// 8 values of a group to out: one vector store when the output is 16-byte aligned, else element by element.
template <typename T>
__device__ __forceinline__ void store8(T* out, const float (&v)[8], bool vec) {
  if (vec) store_n<T, 8>(out, v);
  else
    for (int j = 0; j < 8; j++) out[j] = from_f<T>(v[j]);
}

// Q8_0: y[j] = qs[j] * d.
template <typename T>
__device__ void dequant_q8_0_impl(T* out, const uint8_t* blocks, i64 numel) {
  const i64 groups = numel / 8;
  const bool vec = (uintptr_t)out % 16 == 0;
  for (i64 g = global_thread(); g < groups; g += global_threads()) {
    i64 b = g >> 2;
    int j0 = (int)(g & 3) * 8;
    const uint8_t* blk = blocks + b * 34;
    float d = f16_at(blk);
    float v[8];
#pragma unroll
    for (int j = 0; j < 8; j++) v[j] = __fmul_rn((float)(int8_t)blk[2 + j0 + j], d);
    store8(out + g * 8, v, vec);
  }
}

// Q4_0: y[j] = ((qs[j] & 15) - 8) * d, y[j + 16] = ((qs[j] >> 4) - 8) * d.
template <typename T>
__device__ void dequant_q4_0_impl(T* out, const uint8_t* blocks, i64 numel) {
  const i64 groups = numel / 8;
  const bool vec = (uintptr_t)out % 16 == 0;
  for (i64 g = global_thread(); g < groups; g += global_threads()) {
    i64 b = g >> 2;
    int j0 = (int)(g & 3) * 8;
    const uint8_t* blk = blocks + b * 18;
    float d = f16_at(blk);
    const uint8_t* qs = blk + 2 + (j0 & 15);
    bool high = j0 >= 16;
    float v[8];
#pragma unroll
    for (int j = 0; j < 8; j++) {
      int q = high ? (qs[j] >> 4) : (qs[j] & 15);
      v[j] = __fmul_rn((float)(q - 8), d);
    }
    store8(out + g * 8, v, vec);
  }
}

// Q4_K sub-block s (of 8, 32 elements each) of the super-block at blk: its scale d1 = d * sc and its offset
// m1 = dmin * m, from the 6-bit (sc, m) pairs packed in the 12 scale bytes (ggml's get_scale_min_k4).
__device__ __forceinline__ void q4k_sub_block(const uint8_t* blk, int s, float& d1, float& m1) {
  const uint8_t* scales = blk + 4;
  int sc, m;
  if (s < 4) {
    sc = scales[s] & 63;
    m = scales[s + 4] & 63;
  } else {
    int bb = scales[s + 4];
    sc = (bb & 15) | ((scales[s - 4] >> 6) << 4);
    m = (bb >> 4) | ((scales[s] >> 6) << 4);
  }
  d1 = __fmul_rn(f16_at(blk), (float)sc);
  m1 = __fmul_rn(f16_at(blk + 2), (float)m);
}

// Q4_K: super-block of 256 = 4 chunks of 64; chunk c uses bytes q[32 c .. 32 c + 31]: low nibbles for its first 32
// elements (sub-block 2c), high nibbles for the next 32 (sub-block 2c + 1). y = (d * sc) * q - dmin * m.
template <typename T>
__device__ void dequant_q4_k_impl(T* out, const uint8_t* blocks, i64 numel) {
  const i64 groups = numel / 8;
  const bool vec = (uintptr_t)out % 16 == 0;
  for (i64 g = global_thread(); g < groups; g += global_threads()) {
    i64 b = g >> 5;
    int j0 = (int)(g & 31) * 8;      // element within the super-block
    const uint8_t* blk = blocks + b * 144;
    int c = j0 >> 6, l = j0 & 63;
    float d1, m1;
    q4k_sub_block(blk, 2 * c + (l >= 32), d1, m1);
    const uint8_t* q = blk + 16 + 32 * c + (l & 31);
    bool high = l >= 32;
    float v[8];
#pragma unroll
    for (int j = 0; j < 8; j++) {
      int qv = high ? (q[j] >> 4) : (q[j] & 15);
      v[j] = __fsub_rn(__fmul_rn(d1, (float)qv), m1);
    }
    store8(out + g * 8, v, vec);
  }
}


#define DEQUANT(T, sfx)                                                                                                  \
  IMPASTO_KERNEL void impasto_dequant_nf4_##sfx(T* out, const uint8_t* packed, const void* absmax, const float* nested,  \
                                                const float* nestedCode, float offset, int blocksize,                    \
                                                int nestedBlocksize, i64 numel, i64 k, i64 ld) {                         \
    dequant_nf4_impl<T>(out, packed, absmax, nested, nestedCode, offset, blocksize, nestedBlocksize, numel, k, ld);     \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_dequant_int8_##sfx(T* out, const int8_t* q, const float* scale, i64 n, i64 k, i64 ld) {    \
    dequant_int8_impl<T>(out, q, scale, n, k, ld);                                                                       \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_dequant_int4_##sfx(T* out, const uint8_t* packed, const float* scale, const float* mn,     \
                                                 int groupSize, i64 n, i64 k, i64 ld) {                                  \
    dequant_int4_impl<T>(out, packed, scale, mn, groupSize, n, k, ld);                                                   \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_dequant_q8_0_##sfx(T* out, const uint8_t* blocks, i64 numel) {                            \
    dequant_q8_0_impl<T>(out, blocks, numel);                                                                            \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_dequant_q4_0_##sfx(T* out, const uint8_t* blocks, i64 numel) {                            \
    dequant_q4_0_impl<T>(out, blocks, numel);                                                                            \
  }                                                                                                                      \
  IMPASTO_KERNEL void impasto_dequant_q4_k_##sfx(T* out, const uint8_t* blocks, i64 numel) {                            \
    dequant_q4_k_impl<T>(out, blocks, numel);                                                                            \
  }
IMPASTO_FOR_TYPES(DEQUANT)

// ------------------------------------------------------------------------------------------------ GEMV

// out[m, n] = sum_k x[m, k] W[n, k] + bias[n] + beta * out[m, n] for m < rows <= M (M a compile-time bucket: 1, 2 or
// 4), fp32 accumulation. Memory-bound on W, which is read once, quantized, straight from memory.
//
// Geometry: 256-thread blocks, grid-stride over groups of 8 warps * GEMV_R rows: each warp owns GEMV_R = 4
// consecutive output rows; lane l covers k = 8 l + 256 s for steps s (K a multiple of 8 in the fast path), so a warp
// reads 128 contiguous bytes of NF4 / int4 (256 of int8) per row per step and x (from L1/L2) once per step for its 4
// rows. The 4 * M partial sums are reduced across the warp at the end; lane r * M + m writes (m, n0 + r).
// Slow path (K not a multiple of 8 or unaligned x): one warp per row, element by element.
// bias: biasType 0 = none, 1 = f32, 2 = bf16, 3 = f16.
#define GEMV_R 4

__device__ __forceinline__ float bias_at(const void* bias, int type, i64 n) {
  switch (type) {
    case 1: return ((const float*)bias)[n];
    case 2: return __bfloat162float(((const bf16*)bias)[n]);
    case 3: return __half2float(((const f16*)bias)[n]);
    default: return 0.f;
  }
}

// Weight formats for the GEMV skeleton: fetch() loads what a lane needs for 8 weights of row n at k0 (k0 % 8 == 0),
// decode() turns it into 8 values and a factor the 8-term dot product is multiplied by, rowScale() multiplies the
// finished row sum; element(n, k) is the slow path's single weight.
struct Nf4Gemv {
  const uint8_t* packed;
  Nf4Scales sc;
  const float* code;  // shared
  i64 k;
  struct Frag { uint32_t w; float am; };
  __device__ __forceinline__ void fetch(i64 n, i64 k0, Frag& f) const {
    i64 e = n * k + k0;
    f.w = *reinterpret_cast<const uint32_t*>(packed + (e >> 1));
    f.am = sc.at(e);
  }
  __device__ __forceinline__ float decode(const Frag& f, float (&v)[8]) const {
    nf4_decode8(f.w, code, v);
    return f.am;
  }
  __device__ __forceinline__ float rowScale(i64) const { return 1.f; }
  __device__ __forceinline__ float element(i64 n, i64 c) const {
    i64 e = n * k + c;
    int b = packed[e >> 1];
    return __fmul_rn(code[(e & 1) ? (b & 15) : (b >> 4)], sc.at(e));
  }
  __device__ __forceinline__ bool aligned() const { return k % 8 == 0 && (uintptr_t)packed % 4 == 0; }
};

struct Int8Gemv {
  const int8_t* q;
  const float* scale;
  i64 k;
  struct Frag { uint2 w; };
  __device__ __forceinline__ void fetch(i64 n, i64 k0, Frag& f) const { f.w = *reinterpret_cast<const uint2*>(q + n * k + k0); }
  __device__ __forceinline__ float decode(const Frag& f, float (&v)[8]) const {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      v[j] = (float)(int8_t)(f.w.x >> (8 * j));
      v[4 + j] = (float)(int8_t)(f.w.y >> (8 * j));
    }
    return 1.f;
  }
  __device__ __forceinline__ float rowScale(i64 n) const { return scale[n]; }
  __device__ __forceinline__ float element(i64 n, i64 c) const { return __fmul_rn((float)q[n * k + c], scale[n]); }
  __device__ __forceinline__ bool aligned() const { return k % 8 == 0 && (uintptr_t)q % 8 == 0; }
};

struct Int4Gemv {
  const uint8_t* packed;
  const float* scale;
  const float* mn;
  int groupSize;
  i64 k, gpr, rowBytes;
  struct Frag { uint32_t w; float s, m; };
  __device__ __forceinline__ void fetch(i64 n, i64 k0, Frag& f) const {
    f.w = *reinterpret_cast<const uint32_t*>(packed + n * rowBytes + (k0 >> 1));
    i64 g = n * gpr + k0 / groupSize;
    f.s = scale[g];
    f.m = mn[g];
  }
  __device__ __forceinline__ float decode(const Frag& f, float (&v)[8]) const {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      v[2 * j] = __fadd_rn(f.m, __fmul_rn((float)((f.w >> (8 * j + 4)) & 15), f.s));
      v[2 * j + 1] = __fadd_rn(f.m, __fmul_rn((float)((f.w >> (8 * j)) & 15), f.s));
    }
    return 1.f;
  }
  __device__ __forceinline__ float rowScale(i64) const { return 1.f; }
  __device__ __forceinline__ float element(i64 n, i64 c) const {
    int b = packed[n * rowBytes + (c >> 1)];
    int qv = (c & 1) ? (b & 15) : (b >> 4);
    i64 g = n * gpr + c / groupSize;
    return __fadd_rn(mn[g], __fmul_rn((float)qv, scale[g]));
  }
  __device__ __forceinline__ bool aligned() const {
    return k % 8 == 0 && groupSize % 8 == 0 && (uintptr_t)packed % 4 == 0;
  }
};

// ------------------------------------------------------------------------------------------------ NF4 quantization

// Quantize-on-load on the GPU: a dense weight (bf16 / f16 / f32, flattened) to NF4 codes and per-64 absmax, exactly as
// dev.impasto.quant.Nf4.quantize does on the host (bitsandbytes' dQuantizeNF4): absmax = max |w| of the block,
// x = w * (1 / absmax) (both IEEE-rounded), code = number of thresholds strictly below x (NaN, from an all-zero block,
// gives 0), high nibble first; a missing last element of an odd-sized weight is quantized as 0 * (1 / absmax). One warp
// per block of 64, a byte per lane. Non-finite weights cannot be held: the lowest such element index goes to *firstBad
// (initialised to ~0 by the caller), and the host reports it.
__device__ __forceinline__ int nf4_code(float x) {
  const float t[15] = {-0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
                       -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
                       0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
                       0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f};
  int c = 0;
#pragma unroll
  for (int i = 0; i < 15; i++) c += x > t[i] ? 1 : 0;
  return c;
}

template <typename T>
__device__ void quant_nf4_impl(uint8_t* packed, float* absmax, u64* firstBad, const T* w, i64 n) {
  const int lane = threadIdx.x & 31;
  const i64 blocks = (n + 63) / 64;
  for (i64 b = global_thread() >> 5; b < blocks; b += global_threads() >> 5) {
    const i64 e = b * 64 + 2 * lane;
    const bool has0 = e < n, has1 = e + 1 < n;
    const float v0 = has0 ? to_f(w[e]) : 0.f, v1 = has1 ? to_f(w[e + 1]) : 0.f;
    if (has0 && !isfinite(v0)) atomicMin(firstBad, (u64)e);
    if (has1 && !isfinite(v1)) atomicMin(firstBad, (u64)(e + 1));
    const float m = warp_max(fmaxf(fabsf(v0), fabsf(v1)));
    const float inv = __fdiv_rn(1.f, m);
    const int c0 = nf4_code(__fmul_rn(v0, inv)), c1 = nf4_code(__fmul_rn(v1, inv));  // v1 = 0 past the end
    if (has0) packed[e >> 1] = (uint8_t)((c0 << 4) | c1);
    if (lane == 0) absmax[b] = m;
  }
}

#define QUANT_NF4(T, sfx)                                                                                                 \
  IMPASTO_KERNEL void impasto_quant_nf4_##sfx(uint8_t* packed, float* absmax, u64* firstBad, const T* w, i64 n) {         \
    quant_nf4_impl<T>(packed, absmax, firstBad, w, n);                                                                    \
  }
IMPASTO_FOR_TYPES(QUANT_NF4)

// GGUF rows are whole blocks (the loader checks K), so row n starts at n * (K / blockElements) * blockBytes and 8
// weights at k0 (k0 % 8 == 0) never straddle a block. The block layouts are those of the dequantizers above.
__device__ __forceinline__ uint32_t load_u32_2aligned(const uint8_t* p) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
  return (uint32_t)h[0] | ((uint32_t)h[1] << 16);
}

// Q8_0: 34-byte blocks, so the 8 codes of a group are only 2-byte aligned: four 16-bit loads.
struct Q8_0Gemv {
  const uint8_t* blocks;
  i64 k, rowBytes;
  struct Frag { uint32_t lo, hi; float d; };
  __device__ __forceinline__ void fetch(i64 n, i64 k0, Frag& f) const {
    const uint8_t* blk = blocks + n * rowBytes + (k0 >> 5) * 34;
    f.d = f16_at(blk);
    const uint8_t* q = blk + 2 + (k0 & 31);
    f.lo = load_u32_2aligned(q);
    f.hi = load_u32_2aligned(q + 4);
  }
  __device__ __forceinline__ float decode(const Frag& f, float (&v)[8]) const {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      v[j] = (float)(int8_t)(f.lo >> (8 * j));
      v[4 + j] = (float)(int8_t)(f.hi >> (8 * j));
    }
    return f.d;
  }
  __device__ __forceinline__ float rowScale(i64) const { return 1.f; }
  __device__ __forceinline__ float element(i64 n, i64 c) const {
    const uint8_t* blk = blocks + n * rowBytes + (c >> 5) * 34;
    return __fmul_rn((float)(int8_t)blk[2 + (c & 31)], f16_at(blk));
  }
  __device__ __forceinline__ bool aligned() const { return k % 32 == 0 && (uintptr_t)blocks % 2 == 0; }
};

// Q4_0: 18-byte blocks; elements j and j + 16 share byte j (low, high nibble).
struct Q4_0Gemv {
  const uint8_t* blocks;
  i64 k, rowBytes;
  struct Frag { uint32_t lo, hi; float d; bool high; };
  __device__ __forceinline__ void fetch(i64 n, i64 k0, Frag& f) const {
    const uint8_t* blk = blocks + n * rowBytes + (k0 >> 5) * 18;
    f.d = f16_at(blk);
    int j0 = (int)(k0 & 31);
    const uint8_t* q = blk + 2 + (j0 & 15);
    f.lo = load_u32_2aligned(q);
    f.hi = load_u32_2aligned(q + 4);
    f.high = j0 >= 16;
  }
  __device__ __forceinline__ float decode(const Frag& f, float (&v)[8]) const {
    const int sh = f.high ? 4 : 0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      v[j] = (float)((int)((f.lo >> (8 * j + sh)) & 15) - 8);
      v[4 + j] = (float)((int)((f.hi >> (8 * j + sh)) & 15) - 8);
    }
    return f.d;
  }
  __device__ __forceinline__ float rowScale(i64) const { return 1.f; }
  __device__ __forceinline__ float element(i64 n, i64 c) const {
    const uint8_t* blk = blocks + n * rowBytes + (c >> 5) * 18;
    int j = (int)(c & 31), b = blk[2 + (j & 15)];
    return __fmul_rn((float)((j >= 16 ? b >> 4 : b & 15) - 8), f16_at(blk));
  }
  __device__ __forceinline__ bool aligned() const { return k % 32 == 0 && (uintptr_t)blocks % 2 == 0; }
};

// Q4_K: 144-byte super-blocks of 256; a group of 8 lies in one 32-element sub-block with one (scale, min) pair, and
// its 8 code bytes are 8-byte aligned. decode returns the weights d1 * q - m1 themselves (multiplier 1), rounded as the
// dequantizer rounds them.
struct Q4_KGemv {
  const uint8_t* blocks;
  i64 k, rowBytes;
  struct Frag { uint2 q; float d1, m1; bool high; };
  __device__ __forceinline__ void fetch(i64 n, i64 k0, Frag& f) const {
    const uint8_t* blk = blocks + n * rowBytes + (k0 >> 8) * 144;
    int j0 = (int)(k0 & 255), c = j0 >> 6, l = j0 & 63;
    q4k_sub_block(blk, 2 * c + (l >= 32), f.d1, f.m1);
    f.q = *reinterpret_cast<const uint2*>(blk + 16 + 32 * c + (l & 31));
    f.high = l >= 32;
  }
  __device__ __forceinline__ float decode(const Frag& f, float (&v)[8]) const {
    const int sh = f.high ? 4 : 0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      v[j] = __fsub_rn(__fmul_rn(f.d1, (float)((f.q.x >> (8 * j + sh)) & 15)), f.m1);
      v[4 + j] = __fsub_rn(__fmul_rn(f.d1, (float)((f.q.y >> (8 * j + sh)) & 15)), f.m1);
    }
    return 1.f;
  }
  __device__ __forceinline__ float rowScale(i64) const { return 1.f; }
  __device__ __forceinline__ float element(i64 n, i64 c) const {
    const uint8_t* blk = blocks + n * rowBytes + (c >> 8) * 144;
    int j = (int)(c & 255), ch = j >> 6, l = j & 63;
    float d1, m1;
    q4k_sub_block(blk, 2 * ch + (l >= 32), d1, m1);
    int b = blk[16 + 32 * ch + (l & 31)];
    return __fsub_rn(__fmul_rn(d1, (float)(l >= 32 ? b >> 4 : b & 15)), m1);
  }
  __device__ __forceinline__ bool aligned() const { return k % 256 == 0 && (uintptr_t)blocks % 8 == 0; }
};

template <typename T, int M>
__device__ __forceinline__ void gemv_store(T* out, i64 ldo, int rows, i64 n, int m, float v, const void* bias, int biasType, float beta) {
  if (m >= rows) return;
  if (bias != nullptr) v += bias_at(bias, biasType, n);
  T* p = out + (i64)m * ldo + n;
  if (beta != 0.f) v = fmaf(beta, to_f(*p), v);
  *p = from_f<T>(v);
}

template <typename T, int M, typename W>
__device__ void gemv_impl(const W& wt, T* out, i64 ldo, const T* x, i64 ldx, int rows, i64 n, i64 k, const void* bias, int biasType,
                          float beta) {
  constexpr int U = M <= 2 ? 2 : 1;  // k-steps in flight per iteration
  const int lane = threadIdx.x & 31;
  const i64 warp0 = global_thread() >> 5, nwarps = global_threads() >> 5;
  const bool fast = wt.aligned() && vec_ok<T>(x, ldx, 8);
  if (fast) {
    for (i64 n0 = warp0 * GEMV_R; n0 < n; n0 += nwarps * GEMV_R) {
      float acc[GEMV_R][M];
#pragma unroll
      for (int r = 0; r < GEMV_R; r++)
#pragma unroll
        for (int m = 0; m < M; m++) acc[r][m] = 0.f;
      for (i64 kb = 0; kb < k; kb += 256 * U) {
        typename W::Frag f[U][GEMV_R];
        float xv[U][M][8];
#pragma unroll
        for (int u = 0; u < U; u++) {
          i64 k0 = kb + 256 * u + 8 * lane;
#pragma unroll
          for (int r = 0; r < GEMV_R; r++)
            if (k0 < k && n0 + r < n) wt.fetch(n0 + r, k0, f[u][r]);
#pragma unroll
          for (int m = 0; m < M; m++) {
            if (k0 < k && m < rows) load_n<T, 8>(xv[u][m], x + (i64)m * ldx + k0);
            else
#pragma unroll
              for (int j = 0; j < 8; j++) xv[u][m][j] = 0.f;
          }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
          i64 k0 = kb + 256 * u + 8 * lane;
#pragma unroll
          for (int r = 0; r < GEMV_R; r++) {
            if (k0 < k && n0 + r < n) {
              float w[8];
              float mul = wt.decode(f[u][r], w);
#pragma unroll
              for (int m = 0; m < M; m++) {
                float s = 0.f;
#pragma unroll
                for (int j = 0; j < 8; j++) s = fmaf(xv[u][m][j], w[j], s);
                acc[r][m] = fmaf(mul, s, acc[r][m]);
              }
            }
          }
        }
      }
      // every lane gets every total; lane r * M + m keeps (r, m) and one store site serves them all
      float mine = 0.f;
#pragma unroll
      for (int r = 0; r < GEMV_R; r++)
#pragma unroll
        for (int m = 0; m < M; m++) {
          float v = warp_sum(acc[r][m]);
          if (lane == r * M + m) mine = v;
        }
      const int myR = lane / M, myM = lane % M;
      if (myR < GEMV_R && n0 + myR < n)
        gemv_store<T, M>(out, ldo, rows, n0 + myR, myM, mine * wt.rowScale(n0 + myR), bias, biasType, beta);
    }
  } else {
    for (i64 row = warp0; row < n; row += nwarps) {
      float acc[M];
#pragma unroll
      for (int m = 0; m < M; m++) acc[m] = 0.f;
      for (i64 c = lane; c < k; c += 32) {
        float w = wt.element(row, c);
#pragma unroll
        for (int m = 0; m < M; m++)
          if (m < rows) acc[m] = fmaf(to_f(x[(i64)m * ldx + c]), w, acc[m]);
      }
      float mine = 0.f;
#pragma unroll
      for (int m = 0; m < M; m++) {
        float v = warp_sum(acc[m]);
        if (lane == m) mine = v;
      }
      if (lane < M) gemv_store<T, M>(out, ldo, rows, row, lane, mine, bias, biasType, beta);
    }
  }
}

#define GEMV_GGUF(T, sfx, M, name, W, elems, bytes)                                                                       \
  IMPASTO_KERNEL void __launch_bounds__(256, 1) impasto_gemv_##name##_m##M##_##sfx(                                         \
      T* out, i64 ldo, const T* x, i64 ldx, int rows, i64 n, i64 k, const uint8_t* blocks, const void* bias, int biasType, \
      float beta) {                                                                                                        \
    W w{blocks, k, k / elems * bytes};                                                                                     \
    gemv_impl<T, M>(w, out, ldo, x, ldx, rows, n, k, bias, biasType, beta);                                                \
  }
#define GEMV_M(T, sfx, M)                                                                                                  \
  IMPASTO_KERNEL void __launch_bounds__(256, 1) impasto_gemv_nf4_m##M##_##sfx(                                                \
      T* out, i64 ldo, const T* x, i64 ldx, int rows, i64 n, i64 k, const uint8_t* packed, const void* absmax,            \
      const float* nested, const float* nestedCode, float offset, int blocksize, int nestedBlocksize, const void* bias,   \
      int biasType, float beta) {                                                                                          \
    __shared__ float code[16];                                                                                             \
    nf4_table(code);                                                                                                       \
    Nf4Gemv w{packed, nf4_scales(absmax, nested, nestedCode, offset, blocksize, nestedBlocksize), code, k};               \
    gemv_impl<T, M>(w, out, ldo, x, ldx, rows, n, k, bias, biasType, beta);                                                \
  }                                                                                                                        \
  IMPASTO_KERNEL void __launch_bounds__(256, 1) impasto_gemv_int8_m##M##_##sfx(                                               \
      T* out, i64 ldo, const T* x, i64 ldx, int rows, i64 n, i64 k, const int8_t* q, const float* scale,                  \
      const void* bias, int biasType, float beta) {                                                                        \
    Int8Gemv w{q, scale, k};                                                                                               \
    gemv_impl<T, M>(w, out, ldo, x, ldx, rows, n, k, bias, biasType, beta);                                                \
  }                                                                                                                        \
  IMPASTO_KERNEL void __launch_bounds__(256, 1) impasto_gemv_int4_m##M##_##sfx(                                               \
      T* out, i64 ldo, const T* x, i64 ldx, int rows, i64 n, i64 k, const uint8_t* packed, const float* scale,            \
      const float* mn, int groupSize, const void* bias, int biasType, float beta) {                                        \
    Int4Gemv w{packed, scale, mn, groupSize, k, (k + groupSize - 1) / groupSize, (k + 1) / 2};                             \
    gemv_impl<T, M>(w, out, ldo, x, ldx, rows, n, k, bias, biasType, beta);                                                \
  }                                                                                                                        \
  GEMV_GGUF(T, sfx, M, q8_0, Q8_0Gemv, 32, 34)                                                                             \
  GEMV_GGUF(T, sfx, M, q4_0, Q4_0Gemv, 32, 18)                                                                             \
  GEMV_GGUF(T, sfx, M, q4_k, Q4_KGemv, 256, 144)
// Buckets 1, 2, 4 for f32 and bf16 (rows 5..8 take two launches of the 4-row kernel; f16 activations use dequant +
// GEMM): the fully unrolled 8-row and f16 variants tripled the build time for a case FLUX training does not hit.
#define GEMV(T, sfx) GEMV_M(T, sfx, 1) GEMV_M(T, sfx, 2) GEMV_M(T, sfx, 4)
GEMV(float, f32)
GEMV(bf16, bf16)
