// Shared helpers for impasto's kernels: element types, vector loads/stores, reductions, index loops.
//
// Every kernel computes in fp32 and converts on load and store. Element types are float, __nv_bfloat16 and __half;
// kernels exist per type with a name suffix (_f32, _bf16, _f16) instantiated by the IMPASTO_FOR_TYPES macro.
//
// Aliasing: many ops run in place (silu(h, h), dropout(d, d), axpby(w, a, w, 0)), so elementwise kernels take no
// __restrict__ pointers and use plain (coherent) loads: each element is read and written by the same thread.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#define IMPASTO_KERNEL extern "C" __global__

// Dynamic shared memory of a kernel (the host emulator in kernels/emu defines its own).
#ifndef IMPASTO_DYN_SMEM
#define IMPASTO_DYN_SMEM(T, name) extern __shared__ __align__(128) T name[]
#endif

typedef long long i64;
typedef unsigned long long u64;
typedef __nv_bfloat16 bf16;
typedef __half f16;

// Instantiates MACRO(T, suffix) for the three activation types.
#define IMPASTO_FOR_TYPES(MACRO) MACRO(float, f32) MACRO(bf16, bf16) MACRO(f16, f16)

// ------------------------------------------------------------------------------------------------ conversions

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(f16 v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ f16 from_f<f16>(float v) { return __float2half_rn(v); }

// Two floats -> one 32-bit word holding two 16-bit values (a in the low half: the element at the lower address).
template <typename T> __device__ __forceinline__ uint32_t pack2(float a, float b);
template <> __device__ __forceinline__ uint32_t pack2<bf16>(float a, float b) {
  __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <> __device__ __forceinline__ uint32_t pack2<f16>(float a, float b) {
  __half2 h = __floats2half2_rn(a, b);
  return *reinterpret_cast<uint32_t*>(&h);
}

template <typename T> __device__ __forceinline__ void unpack2(uint32_t w, float& a, float& b);
template <> __device__ __forceinline__ void unpack2<bf16>(uint32_t w, float& a, float& b) {
  a = __uint_as_float(w << 16);
  b = __uint_as_float(w & 0xffff0000u);
}
template <> __device__ __forceinline__ void unpack2<f16>(uint32_t w, float& a, float& b) {
  __half2 h = *reinterpret_cast<__half2*>(&w);
  float2 f = __half22float2(h);
  a = f.x;
  b = f.y;
}

// ------------------------------------------------------------------------------------------------ vector access

// Elements per 16-byte vector.
template <typename T> struct Vec { static constexpr int N = 16 / sizeof(T); };

// Loads N consecutive elements at p (aligned to min(16, N * sizeof(T)) bytes) as floats. N = 1 is a scalar load.
template <typename T, int N>
__device__ __forceinline__ void load_n(float (&v)[N], const T* p) {
  if constexpr (N == 1) {
    v[0] = to_f(*p);
  } else if constexpr (sizeof(T) == 4) {
    static_assert(N % 4 == 0 || N == 2, "float vectors of 2 or 4k");
    if constexpr (N == 2) {
      float2 a = *reinterpret_cast<const float2*>(p);
      v[0] = a.x; v[1] = a.y;
    } else {
#pragma unroll
      for (int i = 0; i < N / 4; i++) {
        float4 a = reinterpret_cast<const float4*>(p)[i];
        v[4 * i] = a.x; v[4 * i + 1] = a.y; v[4 * i + 2] = a.z; v[4 * i + 3] = a.w;
      }
    }
  } else {
    static_assert(N % 8 == 0 || N == 2 || N == 4, "16-bit vectors of 2, 4 or 8k");
    if constexpr (N == 2) {
      uint32_t w = *reinterpret_cast<const uint32_t*>(p);
      unpack2<T>(w, v[0], v[1]);
    } else if constexpr (N == 4) {
      uint2 w = *reinterpret_cast<const uint2*>(p);
      unpack2<T>(w.x, v[0], v[1]);
      unpack2<T>(w.y, v[2], v[3]);
    } else {
#pragma unroll
      for (int i = 0; i < N / 8; i++) {
        uint4 w = reinterpret_cast<const uint4*>(p)[i];
        unpack2<T>(w.x, v[8 * i], v[8 * i + 1]);
        unpack2<T>(w.y, v[8 * i + 2], v[8 * i + 3]);
        unpack2<T>(w.z, v[8 * i + 4], v[8 * i + 5]);
        unpack2<T>(w.w, v[8 * i + 6], v[8 * i + 7]);
      }
    }
  }
}

// Stores N floats as consecutive elements at p (same alignment rule as load_n), rounding to nearest even.
template <typename T, int N>
__device__ __forceinline__ void store_n(T* p, const float (&v)[N]) {
  if constexpr (N == 1) {
    *p = from_f<T>(v[0]);
  } else if constexpr (sizeof(T) == 4) {
    if constexpr (N == 2) {
      *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]);
    } else {
#pragma unroll
      for (int i = 0; i < N / 4; i++)
        reinterpret_cast<float4*>(p)[i] = make_float4(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
    }
  } else {
    if constexpr (N == 2) {
      *reinterpret_cast<uint32_t*>(p) = pack2<T>(v[0], v[1]);
    } else if constexpr (N == 4) {
      *reinterpret_cast<uint2*>(p) = make_uint2(pack2<T>(v[0], v[1]), pack2<T>(v[2], v[3]));
    } else {
#pragma unroll
      for (int i = 0; i < N / 8; i++)
        reinterpret_cast<uint4*>(p)[i] = make_uint4(pack2<T>(v[8 * i], v[8 * i + 1]), pack2<T>(v[8 * i + 2], v[8 * i + 3]),
                                                    pack2<T>(v[8 * i + 4], v[8 * i + 5]), pack2<T>(v[8 * i + 6], v[8 * i + 7]));
    }
  }
}

// Whether a matrix (base p, row stride ld elements) allows N-element vector access at every (row, col % N == 0):
// the base and the row stride are multiples of the vector width in bytes (16 at most). A null pointer passes.
template <typename T>
__device__ __forceinline__ bool vec_ok(const void* p, i64 ld, int n) {
  unsigned a = (unsigned)(n * sizeof(T));
  if (a > 16) a = 16;
  return ((uintptr_t)p % a == 0) && ((u64)(ld * (i64)sizeof(T)) % a == 0);
}

// ------------------------------------------------------------------------------------------------ reductions

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the whole block; blockDim.x * blockDim.y * blockDim.z must be a multiple of 32 and <= 1024. Every thread
// gets the result. Contains __syncthreads: call it from all threads.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  __shared__ float total;
  int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  int nthreads = blockDim.x * blockDim.y * blockDim.z;
  int lane = tid & 31, warp = tid >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < (nthreads >> 5) ? partial[lane] : 0.f;
    s = warp_sum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  return total;
}

// ------------------------------------------------------------------------------------------------ index loops

__device__ __forceinline__ i64 global_thread() { return (i64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ i64 global_threads() { return (i64)gridDim.x * blockDim.x; }

// Calls f(r, c, n) for every vector of a rows x cols matrix: n = VEC consecutive columns starting at c, or a shorter
// tail n < VEC at the end of a row (handled as scalars by the caller through run<1>). Each thread takes vectors
// i, i + threads, ...; the row/column split uses 32-bit division when the vector count allows.
template <int VEC, typename F>
__device__ __forceinline__ void for_each_vector(i64 rows, i64 cols, F&& f) {
  i64 cv = (cols + VEC - 1) / VEC;
  i64 total = rows * cv;
  if (total <= 0x7fffffffLL) {
    unsigned cv32 = (unsigned)cv, total32 = (unsigned)total;
    for (unsigned i = (unsigned)global_thread(); i < total32; i += (unsigned)global_threads()) {
      unsigned r = i / cv32;
      unsigned c = (i - r * cv32) * VEC;
      f((i64)r, (i64)c);
    }
  } else {
    for (i64 i = global_thread(); i < total; i += global_threads()) {
      i64 r = i / cv;
      i64 c = (i - r * cv) * VEC;
      f(r, c);
    }
  }
}
