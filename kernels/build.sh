#!/usr/bin/env bash
# Builds every CUDA kernel of impasto into ONE fatbin that the jar carries as a resource and the runtime loads
# with cuModuleLoadData. kernels/impasto.cu includes the other kernels/*.cu (a unity build: nvcc -fatbin takes
# one translation unit), so adding a file means adding one #include there.
#
# Targets: SASS for sm_80 (A100), sm_86 (RTX 30xx/A6000), sm_89 (RTX 40xx/L40), sm_90a (H100/H200, wgmma), plus
# compute_90 PTX so that a newer GPU can JIT it.
#
#   kernels/build.sh OUT_DIR CPU_ONLY [NVCC] [ARCHS]
# CPU_ONLY=true skips nvcc and leaves a CPU_ONLY marker that the runtime reports ("this jar has no CUDA kernels").
# ARCHS "all" (default) or a space/comma list of the targets above, e.g. "sm_90a" for a build that only runs on
# Hopper (Maven: -Dimpasto.cudaArchs=sm_90a): smaller and faster to build.
set -euo pipefail
out=$1; cpu_only=${2:-false}; nvcc=${3:-nvcc}; want=${4:-all}
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
archs="sm_80 sm_86 sm_89 sm_90a compute_90"
[ "$want" != "all" ] && archs=$(echo "$want" | tr ',' ' ')
newer=""
[ -f "$fatbin" ] && newer=$(find "$here" \( -name '*.cu' -o -name '*.cuh' -o -name build.sh \) -newer "$fatbin" | head -1)
if [ -f "$fatbin" ] && [ -z "$newer" ] && [ "$(cat "$fatbin.archs" 2>/dev/null)" = "$archs" ]; then echo "[kernels] up to date"; exit 0; fi
gencode=()
for a in $archs; do
  case "$a" in
    sm_80|sm_86|sm_89) gencode+=(-gencode "arch=compute_${a#sm_},code=$a") ;;
    sm_90a) gencode+=(-gencode arch=compute_90a,code=sm_90a) ;;
    compute_90) gencode+=(-gencode arch=compute_90,code=compute_90) ;;
    *) echo "[kernels] ERROR: unknown target $a (use sm_80 sm_86 sm_89 sm_90a compute_90)" >&2; exit 1 ;;
  esac
done
echo "[kernels] nvcc $($nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') -> $fatbin ($archs)"
"$nvcc" -fatbin -O3 -std=c++17 --threads 0 -lineinfo "${gencode[@]}" -o "$fatbin.tmp" "$here/impasto.cu"
mv "$fatbin.tmp" "$fatbin"
echo "$archs" > "$fatbin.archs"
