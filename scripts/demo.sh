#!/usr/bin/env bash
# The main job on the bundled dataset: install what is missing, build, and fit a
# 3-component Gaussian mixture to Fisher's iris measurements (data/iris.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
CUEM_BUILD_DIR=${CUEM_BUILD_DIR:-build} bash scripts/build.sh -DCUEM_BUILD_TESTS=OFF -DCUEM_BUILD_BENCH=OFF >/dev/null
echo
echo "== cuem fit data/iris.csv -k 3 (full covariance, k-means init, seed 0) =="
"${CUEM_BUILD_DIR:-build}/cuem" fit data/iris.csv -k 3 --seed 0 --report "${CUEM_BUILD_DIR:-build}/iris_report.svg" "$@"
echo
echo "A picture of the fit: ${CUEM_BUILD_DIR:-build}/iris_report.svg (open it in a browser)."
