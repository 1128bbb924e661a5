#!/usr/bin/env bash
# gpu-check.sh - build here, run the GPU kernel tests and the attention benchmark on a GPU box.
#
# Two halves, one script:
#
#   bash scripts/gpu-check.sh                 # on the build machine (no GPU needed)
#       installs nvcc if needed (scripts/cuda-toolchain.sh), builds with --features cuda
#       (release): the GPU test binary of lathe-kernels, the paged_attention bench and the
#       `lathe` binary; strips them and packs them into .gpu/bundle.tar.xz (.gpu/ is
#       git-ignored). Env: CUDA_COMPUTE_CAP (default 90: H100/H200; 80 for sm_80+ PTX),
#       CARGO_TARGET_DIR (default ./target-cuda), LATHE_GPU_PROFILE (release, the default, or
#       dev: reuses a dev build; the kernels are the same PTX either way).
#
#   bash scripts/gpu-check.sh --device-side [--quick]   # on the GPU machine, repo root
#       unpacks .gpu/bundle.tar.xz, sets LD_LIBRARY_PATH from
#       `scripts/cuda-toolchain.sh --runtime-hint`, then runs the GPU tests with
#       LATHE_REQUIRE_GPU=1 (a missing GPU fails) and the benchmark (--quick: smaller grid),
#       writing everything under $OUT (default ./.gpu/out): nvidia-smi.txt, ldd.txt,
#       gpu_tests.log, bench.log, bench.jsonl, bench.md, summary.txt. Prints the summary last;
#       exits non-zero when a test failed.
#
# With the session's `run` tool: build here, then
#   run(command="bash scripts/gpu-check.sh --device-side", carry=[".gpu"])
# (the bundle must stay under the 64 MiB carry limit; the build step prints its size).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

build_side() {
  eval "$(bash scripts/cuda-toolchain.sh)"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target-cuda}"
  local t0 stage
  t0=$(date +%s)
  stage="$ROOT/.gpu/stage"
  rm -rf "$stage" && mkdir -p "$stage"
  # Executable paths come from cargo's JSON messages.
  exe_of() { python3 -c '
import json, sys
name, kind = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == name and kind in m["target"]["kind"]:
        print(m["executable"])' "$1" "$2" | tail -1; }

  local profile="${LATHE_GPU_PROFILE:-release}" rel="--release" outdir=release bench_cmd=bench
  if [ "$profile" = dev ]; then rel=""; outdir=debug; bench_cmd=test; fi
  echo "gpu-check: building GPU tests ($profile, CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, target $CARGO_TARGET_DIR)"
  local tests bench
  tests=$(cargo test $rel -p lathe-kernels --features cuda --test gpu_kernels --no-run --message-format=json | exe_of gpu_kernels test)
  bench=$(cargo $bench_cmd -p lathe-kernels --features cuda --bench paged_attention --no-run --message-format=json | exe_of paged_attention bench)
  [ -x "$tests" ] && [ -x "$bench" ] || { echo "gpu-check: test or bench binary missing"; exit 1; }
  cp "$tests" "$stage/gpu_kernels"
  cp "$bench" "$stage/bench_paged_attention"
  if cargo build $rel --features cuda --bin lathe; then
    cp "$CARGO_TARGET_DIR/$outdir/lathe" "$stage/lathe"
  else
    echo "gpu-check: WARNING: the lathe binary did not build with --features cuda; bundling kernels only"
  fi
  strip --strip-debug "$stage"/* || true
  mkdir -p .gpu
  tar -C "$stage" -cf - . | xz -T0 -6 >.gpu/bundle.tar.xz
  echo "gpu-check: .gpu/bundle.tar.xz $(du -h .gpu/bundle.tar.xz | cut -f1) ($(ls "$stage" | tr '\n' ' ')) in $(( $(date +%s) - t0 ))s"
  rm -rf "$stage"
  local size
  size=$(stat -c %s .gpu/bundle.tar.xz)
  [ "$size" -lt $((64 * 1024 * 1024)) ] || echo "gpu-check: WARNING: bundle exceeds the 64 MiB carry limit"
  echo "gpu-check: now run on the GPU machine: bash scripts/gpu-check.sh --device-side   (carry .gpu)"
}

device_side() {
  local quick=""
  [ "${1:-}" = "--quick" ] && quick="--quick"
  OUT="${OUT:-$ROOT/.gpu/out}"
  mkdir -p "$OUT"
  local bin
  bin=$(mktemp -d)
  [ -f .gpu/bundle.tar.xz ] || { echo "gpu-check: .gpu/bundle.tar.xz missing: build first (and carry .gpu)"; exit 1; }
  if command -v xz >/dev/null; then xz -dc .gpu/bundle.tar.xz | tar -C "$bin" -xf -
  else python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' .gpu/bundle.tar.xz | tar -C "$bin" -xf -; fi
  eval "$(bash scripts/cuda-toolchain.sh --runtime-hint | grep '^export')"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >"$OUT/env.txt"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu,persistence_mode --format=csv >"$OUT/nvidia-smi.txt" 2>&1 || true
  nvidia-smi >>"$OUT/nvidia-smi.txt" 2>&1 || true
  for b in "$bin"/*; do echo "== $b"; ldd "$b" | grep -E 'not found|cuda|cublas|curand|nvrtc' || true; done >"$OUT/ldd.txt" 2>&1
  if grep -q 'not found' "$OUT/ldd.txt"; then echo "gpu-check: WARNING: missing libraries, see ldd.txt"; fi

  local t0 test_rc bench_rc lathe_rc
  t0=$(date +%s)
  set +e
  LATHE_REQUIRE_GPU=1 RUST_BACKTRACE=1 "$bin/gpu_kernels" --test-threads=1 --nocapture >"$OUT/gpu_tests.log" 2>&1
  test_rc=$?
  local t1; t1=$(date +%s)
  CRITERION_HOME="$OUT/criterion" "$bin/bench_paged_attention" --bench $quick >"$OUT/bench.log" 2>&1
  bench_rc=$?
  local t2; t2=$(date +%s)
  if [ -x "$bin/lathe" ]; then "$bin/lathe" --version >"$OUT/lathe.log" 2>&1; lathe_rc=$?; else lathe_rc="not built"; fi
  set -e
  grep '^{"bench"' "$OUT/bench.log" >"$OUT/bench.jsonl" || true
  sed -n '/^### paged_attention/,$p' "$OUT/bench.log" >"$OUT/bench.md" || true

  {
    echo "== gpu-check summary ($(date -u +%FT%TZ))"
    head -2 "$OUT/nvidia-smi.txt"
    echo "-- GPU tests: rc=$test_rc in $((t1 - t0))s"
    { grep -E '^test |test result|panicked|rel err .* >=|SKIPPED|error while loading' "$OUT/gpu_tests.log" || true; } | tail -40
    echo "-- bench: rc=$bench_rc in $((t2 - t1))s"
    cat "$OUT/bench.md" 2>/dev/null || true
    [ -s "$OUT/bench.md" ] || tail -5 "$OUT/bench.log"
    echo "-- lathe --version: $lathe_rc $(head -1 "$OUT/lathe.log" 2>/dev/null)"
  } | tee "$OUT/summary.txt"
  rm -rf "$bin"
  [ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ]
}

case "${1:-}" in
  --device-side) shift; device_side "$@" ;;
  ""|--build) build_side ;;
  -h|--help) sed -n '2,26p' "$0" ;;
  *) echo "usage: $0 [--build | --device-side [--quick]]"; exit 2 ;;
esac
