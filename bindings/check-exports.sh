#!/usr/bin/env bash
# Checks that every native symbol the generated bindings look up is exported by the given libraries.
#   bindings/check-exports.sh cuda     /usr/lib/x86_64-linux-gnu/libcuda.so.1
#   bindings/check-exports.sh cublaslt /usr/local/cuda/lib64/libcublasLt.so.13
#   bindings/check-exports.sh torch    <torch>/lib/libtorch_cpu.so <torch>/lib/libtorch_cuda.so
# Prints the missing names and exits 1 if any is missing. Needs nm (binutils).
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,6p' "$0"; exit 2; }
pkg=$1; shift
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/src/dev/impasto/bindings/$pkg
[[ -d $dir ]] || { echo "no generated package $pkg under bindings/src" >&2; exit 2; }
for lib in "$@"; do [[ -f $lib ]] || { echo "$lib: not a file" >&2; exit 2; }; done
export LC_ALL=C
bound=$(grep -ohE 'findOrThrow\("[A-Za-z0-9_]+"\)' "$dir"/*.java | sed -E 's/findOrThrow\("(.*)"\)/\1/' | sort -u)
exported=$(for lib in "$@"; do nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//'; done | sort -u)
missing=$(comm -23 <(echo "$bound") <(echo "$exported"))
echo "$pkg: $(echo "$bound" | wc -l) symbols bound, $(echo -n "$missing" | grep -c . || true) missing from $*"
[[ -z $missing ]] || { echo "$missing"; exit 1; }
