#!/usr/bin/env bash
# The main job on the bundled dataset: install what is missing, build, and fit a
# 3-component Gaussian mixture to Fisher's iris measurements (data/iris.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Only the command line is built, and no other option is changed: build/ stays as scripts/test.sh
# configures it (and test.sh states its own options), so either may run first.
CUEM_BUILD_DIR=${CUEM_BUILD_DIR:-build} CUEM_BUILD_TARGETS=cuem_cli bash scripts/build.sh -DCUEM_BUILD_CLI=ON >/dev/null
echo
echo "== cuem fit data/iris.csv -k 3 (full covariance, k-means init, seed 0) =="
"${CUEM_BUILD_DIR:-build}/cuem" fit data/iris.csv -k 3 --seed 0 --report "${CUEM_BUILD_DIR:-build}/iris_report.svg" "$@"
echo
echo "A picture of the fit: ${CUEM_BUILD_DIR:-build}/iris_report.svg (open it in a browser)."
