#!/usr/bin/env bash
# Builds the kernels for the host emulator (cuda_emu.h) and runs emu_test.cpp: impasto's CUDA kernels executed on the
# CPU against fp64 references. Needs g++ 12+ and the CUDA headers (for cuda_bf16.h / cuda_fp16.h), no GPU.
#   kernels/emu/run.sh [elementwise|random|misc|layernorm|rope|quant|attention]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
inc=${CUDA_HOME:-/usr/local/cuda}/include
out=$(mktemp "${TMPDIR:-/tmp}/impasto_emu.XXXXXX")
trap 'rm -f "$out"' EXIT
g++ -std=c++20 -O1 -pthread -w -I"$inc" -o "$out" "$here/emu_test.cpp"
"$out" "$@"
