#!/usr/bin/env bash
# Every test: installs what is missing (apt, and numpy + scikit-learn + pytest into .venv),
# builds with CUDA where nvcc exists, runs the whole CTest suite (unit tests, the
# scikit-learn comparison, the find_package consumer, the command line end to end), then
# the unit and command-line tests under AddressSanitizer + UndefinedBehaviorSanitizer, then
# the Python package's tests, then the libFuzzer targets for a bounded time each (FUZZ_SECONDS, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Python for the comparison against scikit-learn.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sklearn, numpy, pytest' 2>/dev/null; then
  echo "test: creating .venv with numpy, scikit-learn and pytest"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check numpy scikit-learn pytest
fi

jobs=$(nproc)
echo "== build (Release) =="
CUEM_BUILD_DIR=build CUEM_CUDA_ARCHS=${CUEM_CUDA_ARCHS:-80-real} bash scripts/build.sh \
  -DCUEM_PYTHON="$PWD/.venv/bin/python"
echo "== tests (Release) =="
(cd build && ctest --output-on-failure -j"$jobs")

echo "== Python package (pip install . into .venv, pytest tests/python) =="
bash scripts/test_python.sh

echo "== build (ASan + UBSan, CPU only) =="
CUEM_NO_CUDA=1 CUEM_BUILD_DIR=build-asan CUEM_BUILD_TYPE=RelWithDebInfo bash scripts/build.sh \
  -DCUEM_SANITIZE=ON -DCUEM_BUILD_BENCH=OFF -DCUEM_PYTHON="$PWD/.venv/bin/python"
echo "== tests (ASan + UBSan) =="
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs" -L 'unit|cli')

echo "== fuzzing (npy, CSV and model readers) =="
bash scripts/fuzz.sh
