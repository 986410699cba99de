#!/usr/bin/env bash
# Builds every CUDA kernel of impasto into ONE fatbin that the jar carries as a resource and the runtime loads
# with cuModuleLoadData. kernels/impasto.cu includes the other kernels/*.cu (a unity build: nvcc -fatbin takes
# one translation unit), so adding a file means adding one #include there.
#
# Targets: SASS for sm_80 (A100), sm_86 (RTX 30xx/A6000), sm_89 (RTX 40xx/L40), sm_90a (H100/H200, wgmma), plus
# compute_90 PTX so that a newer GPU can JIT it.
#
#   kernels/build.sh OUT_DIR CPU_ONLY [NVCC]
# CPU_ONLY=true skips nvcc and leaves a CPU_ONLY marker that the runtime reports ("this jar has no CUDA kernels").
set -euo pipefail
out=$1; cpu_only=${2:-false}; nvcc=${3:-nvcc}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
if [ "$cpu_only" = "true" ]; then
  rm -f "$out/impasto.fatbin" "$out/impasto.fatbin.archs"
  echo "built with -Dimpasto.cpuOnly=true: no CUDA kernels in this jar" > "$out/CPU_ONLY"
  echo "[kernels] CPU-only build: CUDA kernels skipped"
  exit 0
fi
rm -f "$out/CPU_ONLY"
if ! command -v "$nvcc" >/dev/null 2>&1; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc; else
    cat >&2 <<MSG
[kernels] ERROR: nvcc (the CUDA compiler) was not found on PATH nor at /usr/local/cuda/bin/nvcc.
  impasto compiles its CUDA kernels (kernels/*.cu) at build time. Either
  - install the CUDA Toolkit 12.8+ (13.0 tested) and put nvcc on PATH, or pass -Dnvcc=/path/to/nvcc, or
  - build a CPU-only jar (runs the CPU backend only, says so at run time): mvn -Dimpasto.cpuOnly=true package
MSG
    exit 1
  fi
fi
fatbin="$out/impasto.fatbin"
newer=""
[ -f "$fatbin" ] && newer=$(find "$here" \( -name '*.cu' -o -name '*.cuh' -o -name build.sh \) -newer "$fatbin" | head -1)
if [ -f "$fatbin" ] && [ -z "$newer" ]; then echo "[kernels] up to date"; exit 0; fi
archs="sm_80 sm_86 sm_89 sm_90a compute_90"
echo "[kernels] nvcc $($nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') -> $fatbin ($archs)"
"$nvcc" -fatbin -O3 -std=c++17 --threads 0 -lineinfo \
  -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_86,code=sm_86 \
  -gencode arch=compute_89,code=sm_89 \
  -gencode arch=compute_90a,code=sm_90a \
  -gencode arch=compute_90,code=compute_90 \
  -o "$fatbin.tmp" "$here/impasto.cu"
mv "$fatbin.tmp" "$fatbin"
echo "$archs" > "$fatbin.archs"
