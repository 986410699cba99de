// NF4 dequantization variants against the bandwidth ceiling, timed with CUDA events around batches of launches (so
// that host launch gaps do not count). Standalone: no Java, so that kernel layouts can be compared in one GPU call.
//   nvcc -O3 -std=c++17 -arch=sm_90a -o dequant_variants bench/cuda/dequant_variants.cu && ./dequant_variants
// Every variant's output is checked bit for bit against impasto_dequant_nf4_bf16 (kernels/quant.cu).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>
#include "../../kernels/common.cuh"
#include "../../kernels/quant.cu"

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); exit(1); } } while (0)

// VEC elements per thread group (8: one 4-byte load and one 16-byte store; 16: 8-byte load, two 16-byte stores),
// U groups in flight per thread, STREAM: evict-first stores (the output is not read again soon).
template <int VEC, int U, bool STREAM>
__global__ void __launch_bounds__(256) nf4_variant(bf16* out, const uint8_t* packed, const float* absmax, i64 numel) {
  __shared__ float code[16];
  nf4_table(code);
  const i64 groups = numel / VEC, tid = global_thread(), nt = global_threads();
  for (i64 g0 = tid; g0 < groups; g0 += U * nt) {
    uint32_t w[U][VEC / 8];
    float am[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      i64 g = g0 + u * nt;
      if (g < groups) {
        if constexpr (VEC == 8) w[u][0] = __ldg(reinterpret_cast<const uint32_t*>(packed) + g);
        else { uint2 t = __ldg(reinterpret_cast<const uint2*>(packed) + g); w[u][0] = t.x; w[u][1] = t.y; }
        am[u] = __ldg(absmax + ((g * VEC) >> 6));
      }
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      i64 g = g0 + u * nt;
      if (g < groups) {
#pragma unroll
        for (int h = 0; h < VEC / 8; h++) {
          float v[8];
          nf4_decode8(w[u][h], code, v);
          uint4 o;
          o.x = pack2<bf16>(__fmul_rn(v[0], am[u]), __fmul_rn(v[1], am[u]));
          o.y = pack2<bf16>(__fmul_rn(v[2], am[u]), __fmul_rn(v[3], am[u]));
          o.z = pack2<bf16>(__fmul_rn(v[4], am[u]), __fmul_rn(v[5], am[u]));
          o.w = pack2<bf16>(__fmul_rn(v[6], am[u]), __fmul_rn(v[7], am[u]));
          uint4* p = reinterpret_cast<uint4*>(out + g * VEC + 8 * h);
          if constexpr (STREAM) __stcs(p, o); else *p = o;
        }
      }
    }
  }
}

// Warp-step layout: each warp owns 64 * U consecutive 8-element groups per step; lane l takes groups l, l + 32, ...,
// so every load instruction of the warp reads 128 contiguous bytes and every store writes 512 contiguous bytes, and
// a warp's steps walk memory in order (the grid-stride kernels interleave warps across the whole tensor).
template <int U>
__global__ void __launch_bounds__(256) nf4_warp(bf16* out, const uint8_t* packed, const float* absmax, i64 numel) {
  __shared__ float code[16];
  nf4_table(code);
  const i64 groups = numel / 8;                     // 8-element groups
  const i64 warp = global_thread() / 32, nw = global_threads() / 32;
  const int lane = threadIdx.x & 31;
  for (i64 s = warp; s * 64 * U < groups; s += nw) { // a warp step covers 32 * 2 * U groups
    uint32_t w[2 * U];
    float am[2 * U];
#pragma unroll
    for (int u = 0; u < 2 * U; u++) {
      i64 g = s * 64 * U + u * 32 + lane;
      if (g < groups) { w[u] = __ldg(reinterpret_cast<const uint32_t*>(packed) + g); am[u] = __ldg(absmax + (g >> 3)); }
    }
#pragma unroll
    for (int u = 0; u < 2 * U; u++) {
      i64 g = s * 64 * U + u * 32 + lane;
      if (g < groups) {
        float v[8];
        nf4_decode8(w[u], code, v);
        uint4 o;
        o.x = pack2<bf16>(__fmul_rn(v[0], am[u]), __fmul_rn(v[1], am[u]));
        o.y = pack2<bf16>(__fmul_rn(v[2], am[u]), __fmul_rn(v[3], am[u]));
        o.z = pack2<bf16>(__fmul_rn(v[4], am[u]), __fmul_rn(v[5], am[u]));
        o.w = pack2<bf16>(__fmul_rn(v[6], am[u]), __fmul_rn(v[7], am[u]));
        __stcs(reinterpret_cast<uint4*>(out + g * 8), o);
      }
    }
  }
}

__global__ void copy_kernel(uint4* dst, const uint4* src, i64 n) {
  for (i64 i = global_thread(); i < n; i += global_threads()) dst[i] = __ldg(src + i);
}
__global__ void write_kernel(uint4* dst, i64 n) {
  for (i64 i = global_thread(); i < n; i += global_threads()) __stcs(dst + i, make_uint4(1, 2, 3, (unsigned)i));
}

template <typename F>
static float time_ms(F launch, int batch = 20, int reps = 25) {
  for (int i = 0; i < 5; i++) launch();
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int r = 0; r < reps; r++) {
    CK(cudaEventRecord(a));
    for (int i = 0; i < batch; i++) launch();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms; CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms / batch);
  }
  CK(cudaGetLastError());
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main() {
  const i64 N = 21504, K = 3072, numel = N * K;
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  int sms = prop.multiProcessorCount;
  printf("%s, %d SMs\n", prop.name, sms);
  std::vector<uint8_t> hp(numel / 2);
  std::vector<float> ha(numel / 64);
  srand(7);
  for (auto& x : hp) x = (uint8_t)(rand() & 255);
  for (auto& x : ha) x = 0.01f + (rand() % 1000) / 1000.0f;
  uint8_t* packed; float* absmax; bf16 *ref, *out; void *cs, *cd;
  CK(cudaMalloc(&packed, hp.size())); CK(cudaMalloc(&absmax, ha.size() * 4));
  CK(cudaMalloc(&ref, numel * 2)); CK(cudaMalloc(&out, numel * 2));
  const i64 copyBytes = 256ll << 20;
  CK(cudaMalloc(&cs, copyBytes)); CK(cudaMalloc(&cd, copyBytes));
  CK(cudaMemcpy(packed, hp.data(), hp.size(), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(absmax, ha.data(), ha.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemset(cs, 1, copyBytes));

  const double bytes = numel / 2.0 + numel / 64 * 4.0 + numel * 2.0;
  float tc = time_ms([&] { CK(cudaMemcpyAsync(cd, cs, copyBytes, cudaMemcpyDeviceToDevice)); });
  double copyGBs = 2.0 * copyBytes / (tc * 1e-3) / 1e9;
  printf("%-58s %8.4f ms %7.0f GB/s\n", "cudaMemcpy D2D 256 MiB (ceiling)", tc, copyGBs);
  float tk = time_ms([&] { copy_kernel<<<sms * 16, 256>>>((uint4*)cd, (const uint4*)cs, copyBytes / 16); });
  printf("%-58s %8.4f ms %7.0f GB/s\n", "copy kernel 16 B/thread 256 MiB", tk, 2.0 * copyBytes / (tk * 1e-3) / 1e9);
  float tw = time_ms([&] { write_kernel<<<sms * 16, 256>>>((uint4*)out, numel * 2 / 16); });
  printf("%-58s %8.4f ms %7.0f GB/s\n", "write-only kernel, dequant output size", tw, numel * 2.0 / (tw * 1e-3) / 1e9);
  float tk2 = time_ms([&] { copy_kernel<<<sms * 16, 256>>>((uint4*)out, (const uint4*)cs, (numel / 2 + numel * 2) / 32); });
  printf("%-58s %8.4f ms %7.0f GB/s\n", "copy kernel, dequant traffic size (85 MB + 85 MB)", tk2,
         (numel / 2.0 + numel * 2.0) / (tk2 * 1e-3) / 1e9);

  int gridJava = (int)std::max<i64>(1, std::min<i64>((numel / 8 + 4 * 256 - 1) / (4 * 256), 65535ll * 32));
  auto report = [&](const char* name, float t) {
    CK(cudaDeviceSynchronize());
    std::vector<uint16_t> a(numel), b(numel);
    CK(cudaMemcpy(a.data(), ref, numel * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(b.data(), out, numel * 2, cudaMemcpyDeviceToHost));
    bool same = memcmp(a.data(), b.data(), numel * 2) == 0;
    double gbs = bytes / (t * 1e-3) / 1e9;
    printf("%-58s %8.4f ms %7.0f GB/s %5.1f%% of copy %s\n", name, t, gbs, 100 * gbs / copyGBs, same ? "bit-identical" : "MISMATCH");
  };
  float t0 = time_ms([&] { impasto_dequant_nf4_bf16<<<gridJava, 256>>>(ref, packed, absmax, nullptr, nullptr, 0.f, 64, 1, numel, K, K); });
  CK(cudaMemcpy(out, ref, numel * 2, cudaMemcpyDeviceToDevice));
  report("impasto_dequant_nf4_bf16 (kernels/quant.cu), batched", t0);
  float t1 = time_ms([&] { impasto_dequant_nf4_bf16<<<gridJava, 256>>>(ref, packed, absmax, nullptr, nullptr, 0.f, 64, 1, numel, K, K); }, 1, 50);
  report("impasto_dequant_nf4_bf16, one launch per event pair", t1);
  for (int per : {4, 8, 16, 32}) {
    char name[128]; snprintf(name, sizeof name, "impasto_dequant_nf4_bf16, grid %d x SMs", per);
    CK(cudaMemset(out, 0xff, numel * 2));
    float t = time_ms([&] { impasto_dequant_nf4_bf16<<<sms * per, 256>>>(out, packed, absmax, nullptr, nullptr, 0.f, 64, 1, numel, K, K); });
    report(name, t);
  }
#define V(VEC, U, ST, GRID, LABEL)                                                                                      \
  {                                                                                                                    \
    CK(cudaMemset(out, 0xff, numel * 2));                                                                              \
    int grid = GRID;                                                                                                   \
    float t = time_ms([&] { nf4_variant<VEC, U, ST><<<grid, 256>>>(out, packed, absmax, numel); });                   \
    report(LABEL, t);                                                                                                  \
  }
  V(8, 4, false, gridJava, "variant 8/thread U4 ldg");
  V(8, 4, true, gridJava, "variant 8/thread U4 ldg + stcs");
  V(8, 8, true, (int)((numel / 8 + 8 * 256 - 1) / (8 * 256)), "variant 8/thread U8 stcs");
  V(8, 2, true, (int)((numel / 8 + 2 * 256 - 1) / (2 * 256)), "variant 8/thread U2 stcs");
  V(8, 1, true, (int)((numel / 8 + 255) / 256), "variant 8/thread U1 stcs (one group per thread)");
  V(16, 2, true, (int)((numel / 16 + 2 * 256 - 1) / (2 * 256)), "variant 16/thread U2 stcs");
  V(16, 1, true, (int)((numel / 16 + 255) / 256), "variant 16/thread U1 stcs");
  V(8, 4, true, sms * 8, "variant 8/thread U4 stcs, grid 8 x SMs");
  for (int U : {1, 2}) {
    CK(cudaMemset(out, 0xff, numel * 2));
    int grid = (int)((numel / 8 + 64 * U * 8 - 1) / (64 * U * 8));
    float t = U == 1 ? time_ms([&] { nf4_warp<1><<<grid, 256>>>(out, packed, absmax, numel); })
                     : time_ms([&] { nf4_warp<2><<<grid, 256>>>(out, packed, absmax, numel); });
    char name[128]; snprintf(name, sizeof name, "warp-step variant U%d", U);
    report(name, t);
  }
  return 0;
}
