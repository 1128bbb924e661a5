#!/usr/bin/env bash
# run.sh - compile lathe's CUDA kernels for the CPU (emu_runtime.h) and test them against C++
# twins of the reference; no GPU and no nvcc needed, only g++ >= 12.
#
#   bash kernels/emu/run.sh
#
# The kernels are copied to a temporary tree with two substitutions: include/ptx.cuh is
# replaced by the CPU emulation in this folder, and `extern __shared__` arrays become pointers
# into the emulator's dynamic shared memory. Everything else is compiled as written.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kernels=$(dirname "$here")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/kernels/include"
cp "$kernels"/*.cu "$work/kernels/"
cp "$kernels"/include/*.cuh "$work/kernels/include/"
cp "$here/ptx.cuh" "$work/kernels/include/ptx.cuh"
sed -i -E 's/extern __shared__ __align__\(16\) ([a-z ]+) ([a-z_]+)\[\];/\1 *\2 = reinterpret_cast<\1 *>(emu::dynamic_smem());/' \
  "$work"/kernels/include/*.cuh
t0=$(date +%s)
g++ -std=c++20 -O2 -Wall -Wno-unused-function -Wno-unknown-pragmas -I"$here" -I"$work/kernels" \
  -o "$work/emu_test" "$here/emu_test.cpp"
echo "emu: compiled in $(( $(date +%s) - t0 ))s"
t0=$(date +%s)
"$work/emu_test"
echo "emu: ran in $(( $(date +%s) - t0 ))s"
