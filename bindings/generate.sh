#!/usr/bin/env bash
# Regenerates the committed java.lang.foreign bindings under bindings/src with jextract (taken from PATH):
#   dev.impasto.bindings.cuda      cuda_h          CUDA driver API      ($CUDA_INCLUDE/cuda.h)
#   dev.impasto.bindings.cublaslt  cublasLt_h      cuBLASLt             ($CUBLAS_INCLUDE/cublasLt.h)
#   dev.impasto.bindings.torch     torch_shim_h    libtorch C shim ABI  ($TORCH_INCLUDE, via bindings/torch_abi.h)
#   dev.impasto.bindings.nccl      nccl_h          NCCL                 ($NCCL_INCLUDE/nccl.h)
# What is bound is listed in bindings/*.symbols. No -l/--library is passed on purpose: the generated classes find
# symbols through SymbolLookup.loaderLookup() (then Linker.defaultLookup()), i.e. in the libraries that impasto's
# runtime has loaded with System.load(absolute path) from the same class loader (see bindings/README.md).
# Header locations (override by environment):
#   CUDA_INCLUDE    default /usr/local/cuda/include
#   CUBLAS_INCLUDE  default $CUDA_INCLUDE (cublasLt.h, cublas_api.h; library_types.h etc. also come from CUDA_INCLUDE)
#   TORCH_INCLUDE   default <site-packages>/torch/include of `python3 -c 'import torch'`
#   NCCL_INCLUDE    default /usr/include (NCCL 2.28.3 was used: the GPU machines' system NCCL)
# Writes bindings/src/dev/impasto/bindings/{cuda,cublaslt,torch,nccl}, bindings/torch_abi.h and bindings/generated-from.txt
# (jextract and header versions used). Nothing is replaced unless all four generations succeed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_ROOT=$HERE/src
PKG_DIR=dev/impasto/bindings

die() { echo "generate.sh: $*" >&2; exit 1; }

JEXTRACT=$(command -v jextract) || die "jextract is not on PATH (build it from https://github.com/openjdk/jextract; see bindings/README.md)"
command -v python3 >/dev/null || die "python3 is needed (bindings/jextract_filter.py)"

CUDA_INCLUDE=${CUDA_INCLUDE:-/usr/local/cuda/include}
CUBLAS_INCLUDE=${CUBLAS_INCLUDE:-$CUDA_INCLUDE}
if [[ -z "${TORCH_INCLUDE:-}" ]]; then
  TORCH_INCLUDE=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))' 2>/dev/null) \
    || die "TORCH_INCLUDE is not set and python3 cannot import torch; set TORCH_INCLUDE to a PyTorch 'include' folder"
fi
[[ -f $CUDA_INCLUDE/cuda.h ]] || die "$CUDA_INCLUDE/cuda.h not found (set CUDA_INCLUDE)"
[[ -f $CUBLAS_INCLUDE/cublasLt.h ]] || die "$CUBLAS_INCLUDE/cublasLt.h not found (set CUBLAS_INCLUDE)"
NCCL_INCLUDE=${NCCL_INCLUDE:-/usr/include}
[[ -f $NCCL_INCLUDE/nccl.h ]] || die "$NCCL_INCLUDE/nccl.h not found (set NCCL_INCLUDE)"
[[ -f $TORCH_INCLUDE/torch/csrc/inductor/aoti_torch/c/shim.h ]] || die "$TORCH_INCLUDE/torch/csrc/inductor/aoti_torch/c/shim.h not found (set TORCH_INCLUDE)"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# jextract reads clang flags from ./compile_flags.txt: run from an empty folder so none leak in
cd "$WORK"

declare -a COMMANDS=()

# generate NAME PACKAGE HEADER_CLASS HEADER SYMBOLS [-I dir ...]
generate() {
  local name=$1 pkg=$2 cls=$3 header=$4 symbols=$5; shift 5
  local incs=("$@")
  if ! "$JEXTRACT" --dump-includes "$WORK/$name.dump" "${incs[@]}" "$header" >"$WORK/$name.dump.log" 2>&1; then
    grep -v 'warning: Skipping' "$WORK/$name.dump.log" >&2 || true
    die "jextract could not parse $header"
  fi
  python3 "$HERE/jextract_filter.py" expand "$symbols" "$WORK/$name.dump" "$WORK/$name.args"
  local cmd=("$JEXTRACT" --output "$WORK/out" --target-package "$pkg" --header-class-name "$cls"
             "${incs[@]}" "@$WORK/$name.args" "$header")
  if ! "${cmd[@]}" >"$WORK/$name.log" 2>&1; then
    cat "$WORK/$name.log" >&2
    die "jextract failed for $header"
  fi
  # warnings about symbols we asked for matter; the dump's warnings about the rest of the header do not
  if grep -q . "$WORK/$name.log"; then sed "s/^/  jextract: /" "$WORK/$name.log"; fi
  COMMANDS+=("jextract --output <out> --target-package $pkg --header-class-name $cls ${incs[*]:+${incs[*]} }@<expanded $(basename "$symbols")> $header")
}

generate cuda dev.impasto.bindings.cuda cuda_h \
  "$CUDA_INCLUDE/cuda.h" "$HERE/cuda.symbols" -I "$CUDA_INCLUDE"

generate cublaslt dev.impasto.bindings.cublaslt cublasLt_h \
  "$CUBLAS_INCLUDE/cublasLt.h" "$HERE/cublaslt.symbols" -I "$CUBLAS_INCLUDE" -I "$CUDA_INCLUDE"

python3 "$HERE/jextract_filter.py" torch-header "$TORCH_INCLUDE" "$HERE/torch.symbols" "$WORK/torch_abi.h"
generate torch dev.impasto.bindings.torch torch_shim_h \
  "$WORK/torch_abi.h" "$HERE/torch.symbols"

generate nccl dev.impasto.bindings.nccl nccl_h \
  "$NCCL_INCLUDE/nccl.h" "$HERE/nccl.symbols" -I "$NCCL_INCLUDE" -I "$CUDA_INCLUDE"

# all succeeded: replace the committed output
for p in cuda cublaslt torch nccl; do
  rm -rf "${SRC_ROOT:?}/$PKG_DIR/$p"
  mkdir -p "$SRC_ROOT/$PKG_DIR"
  mv "$WORK/out/$PKG_DIR/$p" "$SRC_ROOT/$PKG_DIR/$p"
done
rm -f "$SRC_ROOT/.keep"
cp "$WORK/torch_abi.h" "$HERE/torch_abi.h"

# --- record what was used
macro() { sed -nE "s/^#define $2[[:space:]]+([0-9]+).*/\1/p" "$1" | head -1; }
cuda_ver=$(macro "$CUDA_INCLUDE/cuda.h" CUDA_VERSION)
cublas_api=$CUBLAS_INCLUDE/cublas_api.h
cublas_ver="$(macro "$cublas_api" CUBLAS_VER_MAJOR).$(macro "$cublas_api" CUBLAS_VER_MINOR).$(macro "$cublas_api" CUBLAS_VER_PATCH).$(macro "$cublas_api" CUBLAS_VER_BUILD)"
tv=$TORCH_INCLUDE/torch/headeronly/version.h
torch_ver="$(macro "$tv" TORCH_VERSION_MAJOR).$(macro "$tv" TORCH_VERSION_MINOR).$(macro "$tv" TORCH_VERSION_PATCH)"
jextract_home=$(dirname "$(dirname "$(readlink -f "$JEXTRACT")")")
jextract_commit=$(cat "$jextract_home/JEXTRACT_COMMIT" 2>/dev/null || echo "not recorded (put the commit id in $jextract_home/JEXTRACT_COMMIT)")
sha() { sha256sum "$1" | cut -c1-64; }
{
  echo "# Written by bindings/generate.sh: what the committed bindings were generated from."
  echo "jextract: $("$JEXTRACT" --version 2>&1 | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
  echo "jextract source commit: $jextract_commit"
  echo "cuda.h: CUDA_VERSION $cuda_ver, sha256 $(sha "$CUDA_INCLUDE/cuda.h")"
  echo "cublasLt.h: cuBLAS $cublas_ver (cublas_api.h), sha256 $(sha "$CUBLAS_INCLUDE/cublasLt.h")"
  echo "library_types.h: sha256 $(sha "$(if [[ -f $CUBLAS_INCLUDE/library_types.h ]]; then echo "$CUBLAS_INCLUDE"; else echo "$CUDA_INCLUDE"; fi)/library_types.h")"
  echo "PyTorch C shim: TORCH_VERSION $torch_ver (torch/headeronly/version.h)"
  for h in torch/csrc/inductor/aoti_torch/c/shim.h torch/csrc/inductor/aoti_torch/generated/c_shim_cuda.h torch/csrc/stable/c/shim.h; do
    echo "  $h: sha256 $(sha "$TORCH_INCLUDE/$h")"
  done
  echo "nccl.h: NCCL $(macro "$NCCL_INCLUDE/nccl.h" NCCL_MAJOR).$(macro "$NCCL_INCLUDE/nccl.h" NCCL_MINOR).$(macro "$NCCL_INCLUDE/nccl.h" NCCL_PATCH), sha256 $(sha "$NCCL_INCLUDE/nccl.h")"
  echo "commands:"
  for c in "${COMMANDS[@]}"; do echo "  $c"; done
} | sed "s#$WORK/##g" >"$HERE/generated-from.txt"

total=$(find "$SRC_ROOT/$PKG_DIR" -name '*.java' | wc -l)
bytes=$(find "$SRC_ROOT/$PKG_DIR" -name '*.java' -print0 | du -cb --files0-from=- | tail -1 | cut -f1)
echo "generated $total Java files, $bytes bytes, under bindings/src/$PKG_DIR"
