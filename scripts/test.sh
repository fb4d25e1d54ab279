#!/usr/bin/env bash
# Every test: installs what is missing (apt, and numpy + scikit-learn + pytest + pandas + hmmlearn + dask[distributed,dataframe] into
# .venv), builds with CUDA where nvcc exists, runs the whole CTest suite (unit tests, the
# emulated CUDA device, the scikit-learn comparison, the find_package consumer, the command
# line end to end), then the unit and command-line tests under AddressSanitizer +
# UndefinedBehaviorSanitizer, then the Python package's tests, then the libFuzzer targets
# for a bounded time each (FUZZ_SECONDS, default 60). Ends with one line per phase: what
# ran, passed, failed and was skipped, and why.
#
# Each phase states every build option it depends on, so that a build folder left by
# scripts/demo.sh (or by hand) never changes what runs; a phase that runs no test, or fewer
# than its build registered, fails (scripts/test_summary.py).
# TEST_PHASES narrows the phases (default "release python asan fuzz").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

read -r -a phases <<<"${TEST_PHASES:-release python asan fuzz}"
has_phase() { [[ " ${phases[*]} " == *" $1 "* ]]; }

# Python for the comparison against scikit-learn and the command-line tests.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sklearn, numpy, pytest, pandas, hmmlearn, dask.array, dask.dataframe, distributed' 2>/dev/null; then
  echo "test: creating .venv with numpy, scikit-learn, pytest, pandas, hmmlearn and dask[distributed,dataframe]"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check numpy scikit-learn pytest pandas hmmlearn "dask[distributed,dataframe]"
fi
py=$PWD/.venv/bin/python

jobs=$(nproc)
reports=build-reports
rm -rf "$reports" && mkdir -p "$reports"
summary=$reports/summary.txt
: >"$summary"
times=$reports/times.txt
: >"$times"
status=0
# took STEP START: the wall time of a step since START (a $SECONDS value), for the summary.
took() { echo "time: $1 $((SECONDS - $2)) s" >>"$times"; }

# run_ctest PHASE BUILD_DIR REQUIRED [ctest args...]: every registered test of the
# selection must run; REQUIRED names tests that must be among them.
run_ctest() {
  local phase=$1 dir=$2 require=$3
  shift 3
  local registered
  registered=$(ctest --test-dir "$dir" -N "$@" | sed -n 's/^Total Tests: *//p')
  local rc=0
  ctest --test-dir "$dir" --no-tests=error --output-on-failure -j"$jobs" \
    --output-junit "$PWD/$reports/$phase.xml" "$@" || rc=$?
  "$py" scripts/test_summary.py "$reports/$phase.xml" --phase "$phase" --expect "${registered:-0}" \
    --require "$require" --out "$summary" || rc=1
  return $rc
}

if has_phase release; then
  echo "== build (Release) =="
  t=$SECONDS
  CUEM_BUILD_DIR=build CUEM_CUDA_ARCHS=${CUEM_CUDA_ARCHS:-80-real} bash scripts/build.sh \
    -DCUEM_BUILD_TESTS=ON -DCUEM_BUILD_BENCH=ON -DCUEM_BUILD_CLI=ON -DCUEM_SANITIZE=OFF -DCUEM_PYTHON="$py"
  took "build (Release)" $t
  echo "== tests (Release) =="
  t=$SECONDS
  run_ctest ctest-release build "compare_sklearn,compare_gpu_smoke,cli_end_to_end,cli_demo_fit,install_consumer,emulated:,scripts_syntax,golden_models" ||
    status=1
  took "tests (Release)" $t
fi

if has_phase python; then
  echo "== Python package (pip install . into .venv, pytest tests/python) =="
  t=$SECONDS
  rc=0
  bash scripts/test_python.sh --junitxml="$PWD/$reports/pytest-python.xml" || rc=$?
  "$py" scripts/test_summary.py "$reports/pytest-python.xml" --phase pytest-python --out "$summary" || rc=1
  [ $rc -eq 0 ] || status=1
  took "Python package (build and tests)" $t
fi

if has_phase asan; then
  echo "== build (ASan + UBSan, CPU only) =="
  t=$SECONDS
  # -g1: line tables are all the sanitizers' reports need; full debug info (-g) made the
  # instrumented build far slower to compile.
  CUEM_NO_CUDA=1 CUEM_BUILD_DIR=build-asan CUEM_BUILD_TYPE=RelWithDebInfo bash scripts/build.sh \
    -DCUEM_BUILD_TESTS=ON -DCUEM_BUILD_CLI=ON -DCUEM_SANITIZE=ON -DCUEM_BUILD_BENCH=OFF -DCUEM_PYTHON="$py" \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
  took "build (ASan + UBSan)" $t
  echo "== tests (ASan + UBSan) =="
  t=$SECONDS
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_ctest ctest-asan build-asan "cli_end_to_end,emulated:" -L 'unit|cli' || status=1
  unset ASAN_OPTIONS UBSAN_OPTIONS
  took "tests (ASan + UBSan)" $t
fi

if has_phase fuzz; then
  echo "== fuzzing (npy, CSV and model readers) =="
  t=$SECONDS
  if bash scripts/fuzz.sh | tee "$reports/fuzz.log"; then
    n=$(grep -c '^fuzz [a-z]*: ok' "$reports/fuzz.log" || true)
    echo "fuzz: ${n} targets clean for ${FUZZ_SECONDS:-60} s each" >>"$summary"
  else
    echo "fuzz: FAILED ($(grep -E '^fuzz: FAILED' "$reports/fuzz.log" | head -1))" >>"$summary"
    status=1
  fi
  took "fuzzing (build and runs)" $t
fi

echo
echo "==================== test summary ===================="
cat "$summary"
cat "$times"
# One closing line over every phase's test reports.
"$py" - "$reports" <<'EOF'
import glob, sys, xml.etree.ElementTree as ET
p = f = s = 0
for path in glob.glob(sys.argv[1] + "/*.xml"):
    for c in ET.parse(path).getroot().iter("testcase"):
        if c.find("failure") is not None or c.find("error") is not None or c.get("status") == "fail":
            f += 1
        elif c.find("skipped") is not None or c.get("status") in ("notrun", "disabled"):
            s += 1
        else:
            p += 1
print(f"total: {p} passed, {f} failed, {s} skipped")
EOF
exit $status
