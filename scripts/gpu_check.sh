#!/usr/bin/env bash
# The check for a GPU machine, in steps that each fit one device call (at most 10 minutes a
# call, 15 minutes of device time in all, the machine's start included):
#
#   gpu_check.sh build      build for this card; the CUDA tests (test_cuda_backend and its
#                           untiled / stats-RK=2 variants, test_device, test_errors,
#                           test_init, test_kmeans_relocation, the weights', missing
#                           data's and the HMM's device tests) and the command line's
#                           device tests; ptxas table
#   gpu_check.sh sanitize   compute-sanitizer memcheck, racecheck and synccheck (then
#                           initcheck if time is left) over a cross-section of the CUDA tests
#   gpu_check.sh bench      bench_cuda (ceilings, configurations against their floors, two
#                           kernel variants) and compare_gpu.py against scikit-learn
#   gpu_check.sh python     the Python package built against this card, its tests, then
#                           the HMM configurations H1-H3 (bench_hmm.py, device and CPU;
#                           H4, K 256, on the device only)
#   gpu_check.sh all        the four in turn (a machine of your own, no per-call limit)
#
# A later step reuses build-gpu/ where the machine is still warm, and builds only what it
# needs where it is not. Logs go to build-gpu/check/STEP/; where $OUT is set (the device
# tool's output folder, which returns at most 8 files) it receives, refreshed after every
# stage so that a call cut short still returns what it did: summary_STEP.txt, the step's
# results (ptxas.txt, benchmark and comparison JSON) and STEP_logs.tar.gz (every log and
# test report).
#
# Each step stops its optional stages when its budget (GPU_CHECK_BUDGET_S, default below
# per step) runs low, and says so; give the device call a timeout_s of about budget + 60.
#
# The GPU machine has no network and lacks GoogleTest, Google Benchmark, CLI11 and
# nlohmann-json: run scripts/gpu_deps.sh on the development machine first and carry
# .gpu-deps; they are unpacked into a private prefix here.
set -uo pipefail
cd "$(dirname "$0")/.."
step=${1:-}
case "$step" in
  build) default_budget=420 ;;
  sanitize) default_budget=300 ;;
  bench) default_budget=420 ;;
  python) default_budget=420 ;;
  all) default_budget=1800 ;;
  *) echo "usage: gpu_check.sh build|sanitize|bench|python|all" >&2; exit 2 ;;
esac
start=$(date +%s)
budget=${GPU_CHECK_BUDGET_S:-$default_budget}
out=build-gpu/check/$step
rm -rf "$out" && mkdir -p "$out"
summary=()
results=()  # files of $out that go to $OUT (with the summary and the tarball: at most 8)

publish() {
  [ -n "${OUT:-}" ] && [ -d "$OUT" ] || return 0
  printf '%s\n' "${summary[@]}" >"$OUT/summary_$step.txt"
  local f
  for f in "${results[@]}"; do [ -f "$out/$f" ] && cp "$out/$f" "$OUT/"; done
  # Made beside, then moved in: a run cut off mid-tar leaves no partial file in $OUT.
  tar -czf "build-gpu/${step}_logs.tar.gz" -C "$out" . 2>/dev/null &&
    mv "build-gpu/${step}_logs.tar.gz" "$OUT/${step}_logs.tar.gz"
}
note() { summary+=("$1"); echo "== $1"; publish; }
elapsed() { echo $(( $(date +%s) - start ))s; }
left() { echo $(( budget - ($(date +%s) - start) )); }
room_for() { [ "$(left)" -ge "$1" ]; }
# A stage's time limit: at most $1 seconds, and never past the budget less $2 seconds.
limit() { local l; l=$(( $(left) - ${2:-10} )); [ "$l" -lt "$1" ] && echo $(( l > 1 ? l : 1 )) || echo "$1"; }

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi failed); this script is for a GPU machine" >&2
  exit 2
fi
gpu=$(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader | head -1)
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
note "GPU: $gpu (sm_$arch); step $step, budget ${budget}s"
export PATH=$PATH:/usr/local/cuda/bin
# CMake 4 refuses package files that ask for policies older than 3.5; Debian's ask for
# ranges ending at 3.19-3.22, which it accepts, and this covers any that do not.
export CMAKE_POLICY_VERSION_MINIMUM=3.5
export OMP_WAIT_POLICY=PASSIVE

prefix=""
if [ -d .gpu-deps ] && ls .gpu-deps/*.deb >/dev/null 2>&1; then
  prefix=/tmp/cuem-deps
  if [ ! -d "$prefix/usr" ]; then
    mkdir -p "$prefix"
    for f in .gpu-deps/*.deb; do dpkg -x "$f" "$prefix"; done
  fi
  export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
# The comparison and command-line tests need numpy, scikit-learn and pytest.
py=$(command -v python3 || true)
if [ -n "$py" ] && ! "$py" -c 'import numpy, sklearn, pytest' 2>/dev/null; then
  note "python3 lacks numpy/scikit-learn/pytest: the Python-driven stages are left out"
  py=""
fi

# build TARGET...: configures build-gpu/ once for this card and builds only what is asked.
configured=""
build() {
  if [ -z "$configured" ]; then
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    [ -f build-gpu/CMakeCache.txt ] && ! grep -q "^CMAKE_GENERATOR:INTERNAL=Ninja" build-gpu/CMakeCache.txt &&
      gen=()
    # arch 90 gets the 'a' features (wgmma etc.) only where asked; plain 90 SASS is enough here.
    cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCUEM_WITH_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCUEM_PTXAS_VERBOSE=ON -DCUEM_WERROR=OFF \
      -DCUEM_BUILD_TESTS=ON -DCUEM_BUILD_BENCH=ON -DCUEM_BUILD_CLI=ON \
      ${prefix:+-DCMAKE_PREFIX_PATH=$prefix/usr} ${py:+-DCUEM_PYTHON=$py} >"$out/configure.log" 2>&1 ||
      { tail -30 "$out/configure.log"; note "configure: FAILED (configure.log)"; exit 1; }
    configured=1
  fi
  local targets=() t
  for t in "$@"; do targets+=(--target "$t"); done
  local t0=$(date +%s)
  if cmake --build build-gpu -j"$(nproc)" "${targets[@]}" >>"$out/build.log" 2>&1; then
    # Another toolchain may warn where ours does not: shown, not fatal (CUEM_WERROR=OFF).
    note "build ($*): ok in $(( $(date +%s) - t0 ))s with $(nproc) jobs; $(grep -c "warning" "$out/build.log" || true) warning lines"
  else
    grep -E "error" -A3 "$out/build.log" | head -40
    note "build: FAILED (build.log)"
    exit 1
  fi
}

# gtest NAME TIME_LIMIT [ENV=VALUE...] -- [ARGS...]: one test binary, XML report into $out.
gtest() {
  local name=$1 cap=$2
  shift 2
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  local bin=${name%%.*}
  room_for 20 || { note "$name: skipped (time budget)"; return; }
  local rc=0
  env "${envs[@]}" timeout "$(limit "$cap" 10)" "build-gpu/tests/$bin" --gtest_output="xml:$out/$name.xml" "$@" \
    >"$out/$name.log" 2>&1 || rc=$?
  local line
  line=$(python3 scripts/test_summary.py "$out/$name.xml" --phase "$name" 2>/dev/null ||
         echo "$name: no report (exit $rc)")
  [ $rc -eq 124 ] && line="$line -- TIMED OUT"
  note "$line"
  grep -E "^\[  FAILED  \]|Failure$" "$out/$name.log" | head -10
}

step_build() {
  build cuem_cli test_cuda_backend test_device test_errors test_init test_kmeans_relocation em_driver bench_cuda \
    test_cuda_sample_weight test_sample_weight_kernels test_sample_weight_primitives test_resources \
    test_missing_cuda test_hmm_cuda test_out_of_core_device
  # ptxas resource usage of every kernel: one line each (registers, spills, shared memory).
  demangle() { if command -v c++filt >/dev/null; then c++filt; else cat; fi; }
  awk '/Compiling entry function/ { match($0, /function .[^ ]+/); name = substr($0, RSTART + 10, RLENGTH - 11); arch = $NF }
       /bytes spill stores/ { spill = $5 "/" $9 }
       /Used [0-9]+ registers/ { match($0, /Used [0-9]+/); regs = substr($0, RSTART + 5, RLENGTH - 5);
         smem = "0"; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11);
         print name "\t" arch "\tregs " regs "\tspill st/ld " spill "\tsmem " smem }' "$out/build.log" |
    demangle | sed -E 's/cuem::cuda::(detail::)?//g; s/\(cuem::CovarianceType\)0/full/g; s/\(cuem::CovarianceType\)1/tied/g;
                      s/\(cuem::CovarianceType\)2/diag/g; s/\(cuem::CovarianceType\)3/spherical/g;
                      s/\([^()]*\)\t/\t/; s/^void //; s/\(anonymous namespace\):://' | tr -d "'" |
    sort -u >"$out/ptxas.txt" || true
  results+=(ptxas.txt)
  local spills
  spills=$(grep -cvE "spill st/ld 0/0" "$out/ptxas.txt" || true)
  note "ptxas: $(wc -l <"$out/ptxas.txt") kernel instantiations, ${spills:-0} with spills (ptxas.txt)"
  # The device tests first, then the variants the tests' CMake registers as well.
  gtest test_cuda_backend 240 --
  gtest test_device 60 --
  gtest test_errors 60 --
  gtest test_init 60 --
  gtest test_kmeans_relocation 60 --
  # Sample weights on the card (kernels against float64 loops, weighted primitives against
  # repeated and dropped rows), and the long-lived handles (placement reused).
  gtest test_sample_weight_kernels 60 --
  gtest test_cuda_sample_weight 60 --
  gtest test_sample_weight_primitives 60 --
  gtest test_resources 60 --
  # The incomplete rows' E-step (missing entries) against float64 loops.
  gtest test_missing_cuda 90 --
  # The HMM's 'given' statistics (whole and over a row range), the device chain against the
  # host chain (K 1..64, bitwise across block sizes), and whole Baum-Welch fits (the chain on
  # the device, and a segment at a time) against the float64 CPU.
  gtest test_hmm_cuda 90 --
  gtest test_out_of_core_device 60 --  # out of core and incremental blocks over data placed once, streamed
  gtest test_cuda_backend.untiled 90 CUEM_CUDA_TILED=0 -- \
    --gtest_filter='AllShapes/CudaStats.*_D1_K16_*:AllShapes/CudaStats.*_D2_K5_*:AllShapes/CudaStats.*_D16_K*:AllShapes/CudaStats.*_D33_K64_*:AllShapes/CudaStats.*_D64_K64_*:AllShapes/CudaStats.*_D32_K64_*'
  gtest test_cuda_backend.stats_rk2 60 CUEM_CUDA_STATS_RK=2 -- \
    --gtest_filter='AllShapes/CudaStats.*_D64_K64_*:AllShapes/CudaStats.*_D40_K80_*:AllShapes/CudaStats.*_D72_K70_*:AllShapes/CudaStats.*_D33_K130_*'
  # On a GPU machine only the checks of the no-device behaviour should skip.
  grep -h 'result="skipped"' "$out"/*.xml 2>/dev/null | grep -o ' name="[^"]*"' |
    grep -v WithoutADevice >"$out/unexpected_skips.txt" || true
  note "unexpected skips: $(wc -l <"$out/unexpected_skips.txt") $(head -5 "$out/unexpected_skips.txt" | tr '\n' ' ')"
  # The command line on the device (its tests that name a device; the rest are CI's).
  if [ -n "$py" ] && room_for 60; then
    timeout "$(limit 180 10)" "$py" -m pytest -q -p no:cacheprovider tests/cli -k "cuda or device" \
      --cuem-bin=build-gpu/cuem --junitxml="$out/cli_device.xml" >"$out/cli_device.log" 2>&1
    note "$(python3 scripts/test_summary.py "$out/cli_device.xml" --phase cli_device 2>/dev/null || tail -1 "$out/cli_device.log")"
  fi
}

step_sanitize() {
  build test_cuda_backend test_resources test_cuda_sample_weight test_missing_cuda test_hmm_cuda
  # A cross-section of the CUDA tests: every kernel family and layout once (the sanitizers
  # slow kernels about 100x).
  local filter='AllShapes/CudaStats.*/full_D7_K5_*:AllShapes/CudaStats.*/diag_D33_K16_*:AllShapes/CudaStats.*/spherical_D1_K2_*:AllShapes/CudaStats.*/tied_D16_K64_*:AllShapes/CudaStats.*/diag_D64_K64_*:AllShapes/CudaStats.*/diag_D40_K80_*:AllShapes/CudaStats.*/spherical_D9_K70_*:AllShapes/CudaStats.*/spherical_D33_K16_*:AllShapes/CudaStats.*/full_D16_K5_N*:AllShapes/CudaStats.*/diag_D2_K5_N*:CudaKMeans.PartitionStatistics*:CudaInit.*:CudaFit.StreamedChunks*:CudaBackendEvaluate.*:Device.*'
  if ! command -v compute-sanitizer >/dev/null; then
    note "compute-sanitizer: not found"
    return
  fi
  local tool extra
  for tool in memcheck racecheck synccheck initcheck; do
    room_for 45 || { note "compute-sanitizer $tool: skipped (time budget: $(left)s left)"; continue; }
    extra=()
    [ "$tool" = memcheck ] && extra=(--leak-check full)
    if timeout "$(limit 150 15)" compute-sanitizer --tool "$tool" "${extra[@]}" --error-exitcode 99 \
         build-gpu/tests/test_cuda_backend --gtest_filter="$filter" >"$out/sanitizer_$tool.log" 2>&1; then
      note "compute-sanitizer $tool: clean, $(grep -cE '^\[       OK \]' "$out/sanitizer_$tool.log") tests ($(elapsed))"
    elif grep -qE "Device not supported|Unable to find injection|LibraryNotLoaded" "$out/sanitizer_$tool.log"; then
      # Some of the lent machines' runtimes (gVisor) refuse the tool: not a finding.
      note "compute-sanitizer: not supported on this machine ($(grep -m1 -E 'Device not supported|Unable|LibraryNotLoaded' "$out/sanitizer_$tool.log"))"
      break
    else
      grep -E "ERROR SUMMARY|Invalid|Race|Uninitialized|FAILED|Barrier" "$out/sanitizer_$tool.log" | head -10
      note "compute-sanitizer $tool: PROBLEMS or timed out (sanitizer_$tool.log)"
    fi
  done
  # The incomplete rows' kernels (missing entries): racecheck and synccheck on a few shapes
  # (its shared-memory tile is rewritten per component between barriers).
  if command -v compute-sanitizer >/dev/null && room_for 45; then
    for tool in racecheck synccheck; do
      if timeout "$(limit 90 15)" compute-sanitizer --tool "$tool" --error-exitcode 99 build-gpu/tests/test_missing_cuda \
           --gtest_filter='AllTypes/MissingCuda.*_mcar40:MissingCudaLayout.MorePatternsThanABatch' \
           >"$out/sanitizer_missing_$tool.log" 2>&1; then
        note "compute-sanitizer $tool test_missing_cuda: clean ($(elapsed))"
      else
        grep -E "ERROR SUMMARY|Race|Barrier|FAILED" "$out/sanitizer_missing_$tool.log" | head -10
        note "compute-sanitizer $tool test_missing_cuda: PROBLEMS, unsupported or timed out (sanitizer_missing_$tool.log)"
      fi
    done
  fi
  # The HMM chain kernel: its shared vectors are double- and triple-buffered so that one
  # barrier a frame suffices; racecheck and synccheck see what the emulator cannot.
  if command -v compute-sanitizer >/dev/null && room_for 45; then
    for tool in racecheck synccheck; do
      if timeout "$(limit 60 15)" compute-sanitizer --tool "$tool" --error-exitcode 99 build-gpu/tests/test_hmm_cuda \
           --gtest_filter='*HmmDeviceChain*' >"$out/sanitizer_hmm_$tool.log" 2>&1; then
        note "compute-sanitizer $tool test_hmm_cuda (device chain): clean ($(elapsed))"
      else
        grep -E "ERROR SUMMARY|Race|Barrier|FAILED" "$out/sanitizer_hmm_$tool.log" | head -10
        note "compute-sanitizer $tool test_hmm_cuda: PROBLEMS, unsupported or timed out (sanitizer_hmm_$tool.log)"
      fi
    done
  fi
  # The stream-ordered pool and the weights' staging: memcheck with stream-ordered race
  # tracking over the placed-data tests (fits sharing a pool, interrupted fits) and the
  # weighted primitives (streamed weight copies).
  if command -v compute-sanitizer >/dev/null && room_for 45; then
    local bin
    for bin in test_resources test_cuda_sample_weight test_missing_cuda; do
      if timeout "$(limit 120 15)" compute-sanitizer --tool memcheck --track-stream-ordered-races all \
           --error-exitcode 99 "build-gpu/tests/$bin" >"$out/sanitizer_pool_$bin.log" 2>&1; then
        note "compute-sanitizer memcheck (stream-ordered races) $bin: clean ($(elapsed))"
      else
        grep -E "ERROR SUMMARY|Invalid|Race|FAILED" "$out/sanitizer_pool_$bin.log" | head -10
        note "compute-sanitizer memcheck $bin: PROBLEMS, unsupported or timed out (sanitizer_pool_$bin.log)"
      fi
    done
  fi
}

step_bench() {
  build bench_cuda em_driver
  if room_for 120; then
    results+=(bench_cuda.json)
    # Google Benchmark 1.7 (Debian's, carried in .gpu-deps) takes seconds as a plain number.
    timeout "$(limit 240 120)" build-gpu/bench/bench_cuda --benchmark_out="$out/bench_cuda.json" \
      --benchmark_out_format=json --benchmark_filter='^cuda_(em_iteration|estep|score_samples|predict_proba)/G|em_iteration/[A-E]/f32' \
      --benchmark_min_time=0.2 \
      >"$out/bench_cuda.log" 2>&1 && note "bench_cuda: done ($(elapsed))" ||
      note "bench_cuda: FAILED or timed out (bench_cuda.log)"
    grep -q "^bench_cuda: no CUDA device" "$out/bench_cuda.log" && note "$(grep -m1 "^bench_cuda: no CUDA device" "$out/bench_cuda.log")"
    tail -40 "$out/bench_cuda.log"
  else
    note "bench_cuda: skipped (time budget)"
  fi
  # A variant of the kernels, set by one environment variable, timed on a few configs:
  # variant NAME ENV=VALUE SECONDS FILTER (results in bench_cuda_NAME.{json,log}).
  variant() {
    room_for $(( $3 + 90 )) || { note "bench_cuda $1: skipped (time budget)"; return; }
    results+=("bench_cuda_$1.json")
    env "$2" timeout "$3" build-gpu/bench/bench_cuda --benchmark_out="$out/bench_cuda_$1.json" \
      --benchmark_out_format=json --benchmark_filter="$4" --benchmark_min_time=0.2 \
      >"$out/bench_cuda_$1.log" 2>&1 && note "bench_cuda $1 ($2): done ($(elapsed))" ||
      note "bench_cuda $1: FAILED or timed out (bench_cuda_$1.log)"
    grep -E "^cuda_" "$out/bench_cuda_$1.log" | head -12
  }
  # G3/G4 with the tiled kernels off: the side-by-side measure of what tiling buys.
  variant untiled CUEM_CUDA_TILED=0 60 'cuda_(em_iteration|estep)/G[34]'
  # G4's statistics kernel with 2 components a thread (two blocks an SM) instead of 4 (one).
  variant stats_rk2 CUEM_CUDA_STATS_RK=2 40 'cuda_(em_iteration|estep)/G4'
  # The weighted E-step (all-ones weights: posteriors, row scaling, statistics) beside the
  # unweighted one on the same shapes: what a weighted fit costs.
  variant weighted CUEM_BENCH_VARIANT=weighted 60 '^cuda_(weighted_)?estep/(A|G1|G2|G4d)/f32'
  # Side by side with scikit-learn's Array API path on torch (quick sizes: N / 20); it
  # rewrites its JSON and markdown after every configuration.
  if [ -n "$py" ] && room_for 45; then
    results+=(gpu_peers.json gpu_peers.md)
    timeout "$(limit 300 10)" "$py" scripts/compare_gpu.py --quick --check --cuda-built 1 \
      --driver build-gpu/tests/em_driver --out "$out" >"$out/compare_gpu.log" 2>&1 &&
      note "compare_gpu (quick): done ($(elapsed))" || note "compare_gpu: FAILED or timed out (compare_gpu.log)"
    local f
    for f in "$out"/*_gpu_peers*.json "$out"/*_gpu_peers*.md; do
      [ -f "$f" ] && cp "$f" "$out/gpu_peers.${f##*.}"
    done
    publish
    grep -E "^\| " "$out/compare_gpu.log" | head -40
  fi
}

step_python() {
  # The Python package against this build's CUDA backend (offline: the image has
  # scikit-build-core and nanobind, so no build isolation).
  if [ -z "$py" ] || ! "$py" -c 'import scikit_build_core, nanobind, sklearn, pytest' 2>/dev/null; then
    note "python: skipped (no scikit-build-core/nanobind/scikit-learn/pytest)"
    return
  fi
  results+=(pytest_python.xml)
  local t0=$(date +%s)
  if CUEM_WITH_CUDA=ON CUEM_CUDA_ARCHS="$arch" CMAKE_ARGS="-DCUEM_WERROR=OFF" \
       CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) timeout "$(limit 300 60)" \
       "$py" -m pip install -q --no-build-isolation --no-deps --target /tmp/cuem-py . >"$out/python_build.log" 2>&1; then
    note "python: package built in $(( $(date +%s) - t0 ))s"
    PYTHONPATH=/tmp/cuem-py timeout "$(limit 300 5)" "$py" -m pytest -q -p no:cacheprovider tests/python \
      --junitxml="$out/pytest_python.xml" >"$out/pytest.log" 2>&1
    note "$(python3 scripts/test_summary.py "$out/pytest_python.xml" --phase pytest_python 2>/dev/null || tail -1 "$out/pytest.log")"
    # The HMM configurations of issue 16 (H1-H3) with the chain on the device, beside the
    # CPU backend on this machine's cores, in one run (bench/NOTES.md has the prediction).
    if room_for 150; then
      results+=(hmm_gpu.json hmm_cpu.json)
      PYTHONPATH=/tmp/cuem-py timeout "$(limit 120 10)" "$py" scripts/bench_hmm.py --device cuda --precision float32 \
        --configs H1,H2,H3,H4 --skip-hmmlearn --iters 2 --json "$out/hmm_gpu.json" >"$out/bench_hmm_gpu.log" 2>&1 &&
        note "bench_hmm cuda: done ($(elapsed))" || note "bench_hmm cuda: FAILED or timed out (bench_hmm_gpu.log)"
      PYTHONPATH=/tmp/cuem-py timeout "$(limit 90 10)" "$py" scripts/bench_hmm.py --device cpu --precision float64 \
        --threads "$(nproc)" --skip-hmmlearn --iters 2 --json "$out/hmm_cpu.json" >"$out/bench_hmm_cpu.log" 2>&1 &&
        note "bench_hmm cpu: done ($(elapsed))" || note "bench_hmm cpu: FAILED or timed out (bench_hmm_cpu.log)"
      grep -hE "^H[1234] " "$out/bench_hmm_gpu.log" "$out/bench_hmm_cpu.log"
    else
      note "bench_hmm: skipped (time budget)"
    fi
    # Viterbi on the device (one long sequence in chunks: H1's and H3's shapes) against the
    # CPU's: the same paths, and both times (bench/NOTES.md, "Viterbi in chunks").
    if room_for 90; then
      PYTHONPATH=/tmp/cuem-py timeout "$(limit 75 10)" "$py" - >"$out/hmm_decode.log" 2>&1 <<'PY'
import time, numpy as np, cuem
for name, T, K, D in (("H1", 10**6, 8, 4), ("H3", 2 * 10**5, 64, 16)):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(T, D)) + 3.0 * (np.arange(T)[:, None] // 50 % K == np.arange(D)[None, :] % K)
    m = cuem.GaussianHMM(n_components=K, covariance_type="diag", n_iter=1, random_state=0).fit(X)
    res = {}
    for dev in ("cpu", "cuda"):
        m.device, m.precision = dev, "float64"
        t0 = time.perf_counter()
        lp, states = m.decode(X, algorithm="viterbi")
        res[dev] = (time.perf_counter() - t0, lp, states)
    same = bool(np.array_equal(res["cpu"][2], res["cuda"][2]))
    print(f"{name} decode: cpu {res['cpu'][0]:.3f}s cuda {res['cuda'][0]:.3f}s same paths {same} "
          f"lp rel {abs(res['cpu'][1] - res['cuda'][1]) / abs(res['cpu'][1]):.1e}")
PY
      note "$(grep -h "decode:" "$out/hmm_decode.log" | tr '\n' ';' || true) hmm decode ($(elapsed); hmm_decode.log)"
    fi
  else
    tail -15 "$out/python_build.log"
    note "python: build FAILED or timed out (python_build.log)"
  fi
}

if [ "$step" = all ]; then
  for s in build sanitize bench python; do
    GPU_CHECK_BUDGET_S=$(left) bash "$0" "$s" || true
  done
  exit 0
fi
"step_$step"

echo
echo "==================== gpu_check $step summary ($(elapsed)) ===================="
for line in "${summary[@]}"; do echo "  $line"; done
