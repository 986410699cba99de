// A host emulation of the parts of the CUDA execution model impasto's kernels use, so the kernels can be executed
// and checked on a machine without a GPU (kernels/emu/run.sh). Not fast and not a simulator of timing: every CUDA
// thread of a block is one std::thread; __syncthreads is a block barrier; warp collectives (shuffles, ldmatrix,
// mma.sync) exchange values through per-warp buffers between two warp barriers; cp.async copies synchronously.
// Blocks run one after another, so "static" stands in for __shared__.
//
// What it proves: indexing, fragment layouts, predication, reductions and the arithmetic. What it cannot: races that
// depend on real concurrency between blocks, memory-model subtleties, performance.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <vector_types.h>
#include <vector_functions.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define IMPASTO_EMU 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__
#define __align__(n) alignas(n)

using std::max;
using std::min;

struct EmuDim {
  unsigned x = 1, y = 1, z = 1;
};

inline thread_local EmuDim threadIdx, blockIdx;
inline EmuDim blockDim, gridDim;

struct EmuWarp {
  std::barrier<> bar{32};
  float f[32];
  uint32_t u[32][6];
};

struct EmuBlock {
  explicit EmuBlock(int threads, size_t smemBytes) : bar(threads), warps((threads + 31) / 32), smem(smemBytes + 128) {}
  std::barrier<> bar;
  std::vector<EmuWarp> warps;
  std::vector<uint8_t> smem;
  std::atomic<int> flag{0};
  uint8_t* dyn() { return smem.data() + (128 - (reinterpret_cast<uintptr_t>(smem.data()) & 127)) % 128; }
};

inline thread_local EmuBlock* emuBlock;
inline thread_local EmuWarp* emuWarp;
inline thread_local int emuLane;

#define IMPASTO_DYN_SMEM(T, name) T* name = reinterpret_cast<T*>(emuBlock->dyn())

inline void __syncthreads() { emuBlock->bar.arrive_and_wait(); }

inline int __syncthreads_or(int p) {
  emuBlock->bar.arrive_and_wait();
  if (p) emuBlock->flag.store(1);
  emuBlock->bar.arrive_and_wait();
  int r = emuBlock->flag.load();
  emuBlock->bar.arrive_and_wait();
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) emuBlock->flag.store(0);
  emuBlock->bar.arrive_and_wait();
  return r;
}

inline float __shfl_xor_sync(unsigned, float v, int o) {
  EmuWarp& w = *emuWarp;
  w.f[emuLane] = v;
  w.bar.arrive_and_wait();
  float r = w.f[emuLane ^ o];
  w.bar.arrive_and_wait();
  return r;
}

inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline double atomicAdd(double* p, double v) { return std::atomic_ref<double>(*p).fetch_add(v); }
inline int atomicExch(int* p, int v) { return std::atomic_ref<int>(*p).exchange(v); }
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) {
  std::atomic_ref<unsigned long long> a(*p);
  unsigned long long cur = a.load();
  while (v < cur && !a.compare_exchange_weak(cur, v)) {}
  return cur;
}
inline float __uint_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t __umulhi(uint32_t a, uint32_t b) { return (uint32_t)(((uint64_t)a * b) >> 32); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline void sincospif(float x, float* s, float* c) {
  double a = M_PI * (double)x;
  *s = (float)std::sin(a);
  *c = (float)std::cos(a);
}
inline int __ffs(int x) { return __builtin_ffs(x); }
using std::isfinite;

// ---------------------------------------------------------------- tensor-core and async-copy stand-ins

inline uint32_t smem_u32(const void* p) { return (uint32_t)(reinterpret_cast<const uint8_t*>(p) - emuBlock->dyn()); }
inline void cp_async16(uint32_t dst, const void* src, bool valid) {
  if (valid) std::memcpy(emuBlock->dyn() + dst, src, 16);
  else std::memset(emuBlock->dyn() + dst, 0, 16);
}
inline void cp_async_commit() {}
template <int N>
inline void cp_async_wait() {}

// ldmatrix .x4: lanes 8j..8j+7 give the row addresses of matrix j; lane i receives row i/4, columns 2(i%4), +1.
inline void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  EmuWarp& w = *emuWarp;
  w.u[emuLane][0] = addr;
  w.bar.arrive_and_wait();
  const uint8_t* base = emuBlock->dyn();
  for (int j = 0; j < 4; j++) std::memcpy(&r[j], base + w.u[8 * j + emuLane / 4][0] + 4 * (emuLane % 4), 4);
  w.bar.arrive_and_wait();
}

// .trans: lane i receives elements [2(i%4)][i/4] and [2(i%4)+1][i/4] of matrix j.
inline void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
  EmuWarp& w = *emuWarp;
  w.u[emuLane][0] = addr;
  w.bar.arrive_and_wait();
  const uint8_t* base = emuBlock->dyn();
  for (int j = 0; j < 4; j++) {
    uint16_t lo, hi;
    std::memcpy(&lo, base + w.u[8 * j + 2 * (emuLane % 4)][0] + 2 * (emuLane / 4), 2);
    std::memcpy(&hi, base + w.u[8 * j + 2 * (emuLane % 4) + 1][0] + 2 * (emuLane / 4), 2);
    r[j] = (uint32_t)lo | ((uint32_t)hi << 16);
  }
  w.bar.arrive_and_wait();
}

template <typename T>
inline float emu_half_value(uint16_t bits);
template <>
inline float emu_half_value<__nv_bfloat16>(uint16_t bits) {
  return __uint_as_float((uint32_t)bits << 16);
}
template <>
inline float emu_half_value<__half>(uint16_t bits) {
  return __half2float(__ushort_as_half(bits));
}

// mma.sync m16n8k16 row.col, fp32 accumulators, with the PTX fragment layouts:
//   A: reg q of lane (g, t): row g + 8 (q & 1), columns 2t + 8 (q >> 1) + {0, 1};  B: reg q: k 2t + 8 q + {0, 1}, n g;
//   C: c0, c1 row g, columns 2t, 2t+1; c2, c3 row g + 8.
template <typename T>
inline void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  EmuWarp& w = *emuWarp;
  for (int q = 0; q < 4; q++) w.u[emuLane][q] = a[q];
  w.u[emuLane][4] = b0;
  w.u[emuLane][5] = b1;
  w.bar.arrive_and_wait();
  auto A = [&](int row, int k) {
    int lane = (row % 8) * 4 + (k % 8) / 2, q = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
    uint32_t v = w.u[lane][q];
    return emu_half_value<T>((uint16_t)(k % 2 ? v >> 16 : v & 0xffff));
  };
  auto B = [&](int k, int n) {
    int lane = n * 4 + (k % 8) / 2;
    uint32_t v = w.u[lane][4 + (k >= 8 ? 1 : 0)];
    return emu_half_value<T>((uint16_t)(k % 2 ? v >> 16 : v & 0xffff));
  };
  int g = emuLane / 4, t = emuLane % 4;
  for (int e = 0; e < 4; e++) {
    int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e & 1);
    float acc = d[e];
    for (int k = 0; k < 16; k++) acc += A(row, k) * B(k, col);
    d[e] = acc;
  }
  w.bar.arrive_and_wait();
}

// ---------------------------------------------------------------- launch

inline EmuDim dim(unsigned x, unsigned y = 1, unsigned z = 1) { return EmuDim{x, y, z}; }

// Runs kernel(args...) over the grid, block by block, each block's threads as std::threads.
template <typename... P, typename... A>
void emu_launch(void (*kernel)(P...), EmuDim grid, EmuDim block, size_t smem, A... args) {
  gridDim = grid;
  blockDim = block;
  const int threads = (int)(block.x * block.y * block.z);
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        EmuBlock blk(threads, smem);
        std::vector<std::thread> ts;
        ts.reserve(threads);
        for (int t = 0; t < threads; t++) {
          ts.emplace_back([&, t] {
            threadIdx = EmuDim{(unsigned)(t % block.x), (unsigned)((t / block.x) % block.y), (unsigned)(t / (block.x * block.y))};
            blockIdx = EmuDim{bx, by, bz};
            emuBlock = &blk;
            emuWarp = &blk.warps[t / 32];
            emuLane = t % 32;
            kernel(((P)args)...);
            blk.bar.arrive_and_drop();
            emuWarp->bar.arrive_and_drop();
          });
        }
        for (auto& th : ts) th.join();
      }
}
