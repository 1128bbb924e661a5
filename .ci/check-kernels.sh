#!/usr/bin/env bash
# check-kernels.sh - every kernels/*.cu must compile, on a machine without a GPU.
#
#   bash .ci/check-kernels.sh
#
# Installs nvcc from PyPI if needed (scripts/cuda-toolchain.sh, lathe's own copy), then for each
# kernels/*.cu and each target in TARGETS (default "80 90"): nvcc --ptx -arch=compute_XX with
# warnings as errors (the same flags build.rs uses), then ptxas -arch=sm_XX on that PTX for the
# resource report. Fails on any error or warning, or when a kernel spills more than
# LATHE_MAX_SPILL bytes (default 32: ptxas sometimes parks a loop-invariant value on the stack,
# which costs nothing; a real register-pressure spill is far larger). Prints the report and the
# time taken; the files are compiled in parallel.
#
# Then runs the kernels on the CPU (kernels/emu/run.sh: the CUDA source compiled by g++ against
# a fiber-based emulation of threads, barriers, shuffles, ldmatrix, mma.sync and cp.async) and
# compares them with C++ twins of the reference: the only check of kernel logic on a machine
# without a GPU. LATHE_SKIP_EMU=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
TARGETS="${TARGETS:-80 90}"
MAX_SPILL="${LATHE_MAX_SPILL:-32}"

eval "$(bash scripts/cuda-toolchain.sh)"
echo "check-kernels: $(nvcc --version | grep release)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
FLAGS=(-std=c++17 -O3 --Werror all-warnings -Ikernels/include)

compile_one() { # <file.cu> <cap>: PTX then SASS with the resource report
  local src=$1 cap=$2 base
  base="$work/$(basename "$src" .cu)_$cap"
  if ! nvcc --ptx -arch="compute_$cap" "${FLAGS[@]}" -o "$base.ptx" "$src" >"$base.nvcc.log" 2>&1; then
    echo "FAIL nvcc $src compute_$cap"; cat "$base.nvcc.log"; return 1
  fi
  if ! ptxas -arch="sm_$cap" -O3 -v --warning-as-error -o "$base.cubin" "$base.ptx" >"$base.ptxas.log" 2>&1; then
    echo "FAIL ptxas $src sm_$cap"; cat "$base.ptxas.log"; return 1
  fi
  echo "ok   $src sm_$cap"
}

pids=()
for src in kernels/*.cu; do
  for cap in $TARGETS; do
    compile_one "$src" "$cap" &
    pids+=($!)
  done
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" = 0 ] || { echo "check-kernels: FAILED"; exit 1; }

# Resource report: one line per kernel and target; flag spills.
report="$work/report.txt"
for log in "$work"/*.ptxas.log; do
  awk -v tgt="$(basename "$log" .ptxas.log)" '
    /Compiling entry function/ { gsub(/[\047]/, "", $7); fn = $7 }
    /bytes spill stores/ { st = $5; ld = $9 }
    /Used [0-9]+ registers/ {
      regs = $5; smem = 0
      if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
      printf "%-26s %-48s regs %3d  smem %6d  spill st/ld %d/%d\n", tgt, fn, regs, smem, st, ld
    }' "$log"
done | sort >"$report"
cat "$report"
worst=$(awk '{ s = $NF; split(s, a, "/"); if (a[1] + 0 > m) m = a[1] + 0; if (a[2] + 0 > m) m = a[2] + 0 } END { print m + 0 }' "$report")
echo "check-kernels: $(wc -l <"$report") kernel builds, largest spill ${worst} bytes (limit $MAX_SPILL), $(( $(date +%s) - start ))s"
if [ "$worst" -gt "$MAX_SPILL" ]; then
  echo "check-kernels: FAILED: a kernel spills more than $MAX_SPILL bytes"; exit 1
fi

if [ "${LATHE_SKIP_EMU:-0}" = 1 ]; then
  echo "check-kernels: emulated kernel tests skipped (LATHE_SKIP_EMU=1)"
elif ! command -v g++ >/dev/null; then
  echo "check-kernels: WARNING: no g++, emulated kernel tests not run"
else
  bash kernels/emu/run.sh
fi
echo "check-kernels: OK in $(( $(date +%s) - start ))s"
