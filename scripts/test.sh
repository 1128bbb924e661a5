#!/usr/bin/env bash
# The test command of the README: everything a fresh machine needs, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# CUDA kernels must compile (nvcc from PyPI, warnings as errors) even where no GPU exists.
bash .ci/check-kernels.sh
cargo test --workspace --all-targets
cargo test --workspace --doc
