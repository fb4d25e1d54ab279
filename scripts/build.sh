#!/usr/bin/env bash
# Configures and builds cuem into build/ (or $CUEM_BUILD_DIR). Extra arguments go to cmake.
# CUDA is built when nvcc is found; CUEM_CUDA_ARCHS narrows the architectures (CI: one).
# CUEM_BUILD_TARGETS (space-separated) builds only those targets instead of everything.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${CUEM_BUILD_DIR:-build}
args=(-DCMAKE_BUILD_TYPE=${CUEM_BUILD_TYPE:-Release})
if [ -z "${CUEM_NO_CUDA:-}" ] && { command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; }; then
  nvcc_path=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  args+=(-DCUEM_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc_path")
  [ -n "${CUEM_CUDA_ARCHS:-}" ] && args+=(-DCMAKE_CUDA_ARCHITECTURES="$CUEM_CUDA_ARCHS")
else
  args+=(-DCUEM_WITH_CUDA=OFF)
fi
# ccache, where installed, lets another build folder with the same flags (the Python
# package's, CI's second build) reuse these objects. Absolute paths, no CCACHE_BASEDIR: the
# folders sit at different depths, and only the preprocessed text then matches.
if [ -z "${CUEM_NO_CCACHE:-}" ] && command -v ccache >/dev/null; then
  args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build_dir" "${args[@]}" "$@" >"$build_dir.configure.log" 2>&1 ||
  { cat "$build_dir.configure.log"; exit 1; }
targets=()
for t in ${CUEM_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
