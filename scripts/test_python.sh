#!/usr/bin/env bash
# The Python package: installs what is missing (apt via setup.sh, plus the Python headers;
# numpy, scikit-learn, pytest, pandas, hmmlearn, dask[distributed,dataframe], scikit-build-core and nanobind into .venv), builds and
# installs the package into .venv with `pip install .` (incremental: the CMake build
# lives in build-python/), then runs the pytest suite in tests/python. Extra arguments
# go to pytest (e.g. -k warm_start).
#
# Environment: CUEM_NO_CUDA=1 builds CPU-only even where nvcc exists; CUEM_CUDA_ARCHS
# sets CMAKE_CUDA_ARCHITECTURES (pyproject.toml reads it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# The venv (scripts/test.sh makes the same one; the build tools are added here).
if [ ! -x .venv/bin/python ]; then
  echo "test_python: creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import numpy, sklearn, pytest, pandas, hmmlearn, dask.array, dask.dataframe, distributed, scikit_build_core, nanobind' 2>/dev/null; then
  echo "test_python: installing numpy, scikit-learn, pytest, pandas, hmmlearn, dask[distributed,dataframe], scikit-build-core and nanobind into .venv"
  .venv/bin/pip install -q --disable-pip-version-check numpy scikit-learn pytest pandas hmmlearn "dask[distributed,dataframe]" "scikit-build-core>=0.10" "nanobind>=2.4"
fi

# Python.h for the extension module (Debian's python3 ships it in python3-dev).
if ! .venv/bin/python -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  echo "test_python: installing python3-dev"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends python3-dev >/dev/null
fi

# CUDA as scripts/build.sh decides it (nvcc on PATH or in /usr/local/cuda, unless
# CUEM_NO_CUDA), passed explicitly so that a reused build directory follows it.
if [ -n "${CUEM_NO_CUDA:-}" ]; then
  export CUEM_WITH_CUDA=OFF
elif command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUEM_WITH_CUDA=ON
  command -v nvcc >/dev/null || export CUDACXX=/usr/local/cuda/bin/nvcc
else
  export CUEM_WITH_CUDA=OFF
fi

# ccache as scripts/build.sh uses it: the library's objects of an earlier build are reused.
if [ -z "${CUEM_NO_CCACHE:-}" ] && command -v ccache >/dev/null; then
  export CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache"
fi

echo "== pip install . (into .venv) =="
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
mkdir -p build-python
log=build-python/pip-install.log
# --no-build-isolation: build with the venv's scikit-build-core and nanobind, so that the
# build directory stays valid between runs and nothing is downloaded again.
if ! .venv/bin/pip install --disable-pip-version-check --no-build-isolation --no-deps -v . >"$log" 2>&1; then
  tail -n 80 "$log"
  echo "test_python: pip install . failed (full log: $log)"
  exit 1
fi

echo "== pytest tests/python =="
.venv/bin/python -m pytest -q -p no:cacheprovider tests/python "$@"
