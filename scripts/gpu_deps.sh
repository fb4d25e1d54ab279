#!/usr/bin/env bash
# Run HERE (a Debian 12 machine with apt) before sending the tree to a GPU machine, which
# has nvcc, CMake and Python with numpy/scikit-learn/pytest but no network and none of
# the C++ test/CLI libraries. Downloads their Debian packages into .gpu-deps/ (ignored by
# git; name it in the device tool's `carry`); scripts/gpu_check.sh unpacks them there.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpu-deps/' .git/info/exclude 2>/dev/null || echo '/.gpu-deps/' >>.git/info/exclude
mkdir -p .gpu-deps
cd .gpu-deps
# apt's sandbox user must be able to write here
chmod 777 . 2>/dev/null || true
apt-get download libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian libcli11-dev nlohmann-json3-dev
ls -la
