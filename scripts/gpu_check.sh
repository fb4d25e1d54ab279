#!/usr/bin/env bash
# The one command for a GPU machine (issue 3): build for this card's architecture, run
# every test, run compute-sanitizer (memcheck, racecheck, initcheck) over the CUDA tests,
# run the GPU benchmarks, and print a short table last. Logs and results are written to
# build-gpu/check/; where $OUT is set (the device tool's output folder, which returns at
# most 8 files) it receives, refreshed after every step so that a run cut short still
# returns what it did: summary.txt, ptxas.txt, the benchmark and comparison JSON/markdown,
# and gpu_check_logs.tar.gz with every log.
#
# The GPU machine has no network and lacks GoogleTest, Google Benchmark, CLI11 and
# nlohmann-json: run scripts/gpu_deps.sh on the development machine first and carry
# .gpu-deps; they are unpacked into a private prefix here.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
out=build-gpu/check
rm -rf "$out" && mkdir -p "$out"
summary=()
# Copies the results so far to $OUT (at most 8 files: the device tool's limit).
publish() {
  [ -n "${OUT:-}" ] && [ -d "$OUT" ] || return 0
  printf '%s\n' "${summary[@]}" >"$OUT/summary.txt"
  local f
  for f in ptxas.txt bench_cuda.json bench_cuda_untiled.json bench_cuda_stats_rk2.json; do
    [ -f "$out/$f" ] && cp "$out/$f" "$OUT/"
  done
  for f in "$out"/*_gpu_peers*.json "$out"/*_gpu_peers*.md; do
    [ -f "$f" ] && cp "$f" "$OUT/gpu_peers.${f##*.}"
  done
  # Made beside, then moved in: a run cut off mid-tar leaves no ninth file in $OUT.
  tar -czf build-gpu/gpu_check_logs.tar.gz -C "$out" . 2>/dev/null &&
    mv build-gpu/gpu_check_logs.tar.gz "$OUT/gpu_check_logs.tar.gz"
}
note() { summary+=("$1"); echo "== $1"; publish; }
elapsed() { echo $(( $(date +%s) - start ))s; }
# The whole check must end well inside the device tool's 10 minutes a command (and a
# session's 15 minutes of device time, the machine's start included): optional steps run
# only while this many seconds remain of an 8-minute budget, and say so when skipped.
# Give the device call a timeout_s of about budget + 60.
budget=${GPU_CHECK_BUDGET_S:-480}
left() { echo $(( budget - ($(date +%s) - start) )); }
room_for() { [ "$(left)" -ge "$1" ]; }
# A step's time limit: at most $1 seconds, and never past the budget.
limit() { local l; l=$(( $(left) - ${2:-10} )); [ "$l" -lt "$1" ] && echo $(( l > 1 ? l : 1 )) || echo "$1"; }

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi failed); this script is for a GPU machine" >&2
  exit 2
fi
gpu=$(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader | head -1)
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
note "GPU: $gpu (sm_$arch)"
export PATH=$PATH:/usr/local/cuda/bin
# CMake 4 refuses package files that ask for policies older than 3.5; Debian's ask for
# ranges ending at 3.19-3.22, which it accepts, and this covers any that do not.
export CMAKE_POLICY_VERSION_MINIMUM=3.5
nvcc --version | tail -1

prefix=""
if [ -d .gpu-deps ] && ls .gpu-deps/*.deb >/dev/null 2>&1; then
  prefix=/tmp/cuem-deps
  rm -rf "$prefix" && mkdir -p "$prefix"
  for f in .gpu-deps/*.deb; do dpkg -x "$f" "$prefix"; done
  export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
# The comparison and command-line tests need numpy, scikit-learn and pytest.
py=$(command -v python3 || true)
if [ -n "$py" ] && ! "$py" -c 'import numpy, sklearn, pytest' 2>/dev/null; then
  note "python3 lacks numpy/scikit-learn/pytest: the Python-driven tests are left out"
  py=""
fi
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
# arch 90 gets the 'a' features (wgmma etc.) only where asked; plain 90 SASS is enough here.
cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCUEM_WITH_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCUEM_PTXAS_VERBOSE=ON -DCUEM_WERROR=OFF \
  ${prefix:+-DCMAKE_PREFIX_PATH=$prefix/usr} ${py:+-DCUEM_PYTHON=$py} >"$out/configure.log" 2>&1 ||
  { tail -30 "$out/configure.log"; note "configure: FAILED (configure.log)"; exit 1; }
if cmake --build build-gpu -j"$(nproc)" >"$out/build.log" 2>&1; then
  # Another toolchain may warn where ours does not: shown, not fatal (CUEM_WERROR=OFF).
  n_warn=$(grep -c "warning" "$out/build.log" || true)
  note "build: ok ($(elapsed)); ${n_warn:-0} warning lines in build.log"
else
  grep -E "error" -A3 "$out/build.log" | head -40
  note "build: FAILED (build.log)"
  exit 1
fi
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
spills=$(grep -cvE "spill st/ld 0/0" "$out/ptxas.txt" || true)
note "ptxas: $(wc -l <"$out/ptxas.txt") kernel instantiations, ${spills:-0} with spills (ptxas.txt)"

export OMP_WAIT_POLICY=PASSIVE
# The emulated-device tests are left out: they run the kernels' source on the CPU, as CI
# does on every commit, and only take time from the real ones here.
if ! room_for 200; then
  note "ctest: skipped (time budget: $(left) s left after the build)"
  : >"$out/ctest.log"
elif timeout "$(limit 420 150)" ctest --test-dir build-gpu -j8 -E 'emulated' --output-on-failure --timeout 300 >"$out/ctest.log" 2>&1; then
  note "ctest: $(grep -E 'tests passed' "$out/ctest.log") ($(elapsed))"
else
  grep -E "\(Failed\)|\(Timeout\)|\(SEGFAULT\)|Exception" "$out/ctest.log" | head -30
  note "ctest: FAILED: $(grep -E 'tests passed|tests failed' "$out/ctest.log")"
fi
# On a GPU machine only the checks of the no-device behaviour should skip.
grep -E "\*\*\*Skipped" "$out/ctest.log" | sed -E 's/^.*Test +#[0-9]+: ([^ ]+) .*$/\1/' |
  grep -v "WithoutADevice" >"$out/skipped.txt" || true
note "ctest: $(wc -l <"$out/skipped.txt") unexpected skips (skipped.txt): $(head -5 "$out/skipped.txt" | tr '\n' ' ')"

# compute-sanitizer over a cross-section of the CUDA tests (it slows kernels ~100x).
sanitize_filter='AllShapes/CudaStats.*/full_D7_K5_*:AllShapes/CudaStats.*/diag_D33_K16_*:AllShapes/CudaStats.*/spherical_D1_K2_*:AllShapes/CudaStats.*/tied_D16_K64_*:AllShapes/CudaStats.*/diag_D64_K64_*:AllShapes/CudaStats.*/diag_D40_K80_*:AllShapes/CudaStats.*/spherical_D9_K70_*:AllShapes/CudaStats.*/spherical_D33_K16_*:AllShapes/CudaStats.*/full_D16_K5_N*:AllShapes/CudaStats.*/diag_D2_K5_N*:CudaKMeans.PartitionStatistics*:CudaInit.*:CudaFit.StreamedChunks*:CudaBackendEvaluate.*:Device.*'
if command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck initcheck; do
    room_for 60 || { note "compute-sanitizer $tool: skipped (time budget)"; continue; }
    extra=()
    [ "$tool" = memcheck ] && extra=(--leak-check full)
    if timeout "$(limit 300 30)" compute-sanitizer --tool "$tool" "${extra[@]}" --error-exitcode 99 \
         build-gpu/tests/test_cuda_backend --gtest_filter="$sanitize_filter" >"$out/sanitizer_$tool.log" 2>&1; then
      note "compute-sanitizer $tool: clean ($(elapsed))"
    elif grep -qE "Device not supported|Unable to find injection|LibraryNotLoaded" "$out/sanitizer_$tool.log"; then
      # Some of the lent machines' runtimes (gVisor) refuse the tool: not a finding.
      note "compute-sanitizer: not supported on this machine ($(grep -m1 -E 'Device not supported|Unable|LibraryNotLoaded' "$out/sanitizer_$tool.log"))"
      break
    else
      grep -E "ERROR SUMMARY|Invalid|Race|Uninitialized|FAILED" "$out/sanitizer_$tool.log" | head -10
      note "compute-sanitizer $tool: PROBLEMS (sanitizer_$tool.log)"
    fi
  done
else
  note "compute-sanitizer: not found"
fi

# GPU benchmarks: the card's ceilings, then the configurations against their floors.
if [ -x build-gpu/bench/bench_cuda ] && room_for 120; then
  timeout "$(limit 600 60)" build-gpu/bench/bench_cuda --benchmark_out="$out/bench_cuda.json" --benchmark_out_format=json \
    --benchmark_filter='/G|em_iteration/[A-E]/f32' --benchmark_min_time=0.2s >"$out/bench_cuda.log" 2>&1 && note "bench_cuda: done ($(elapsed))" ||
    note "bench_cuda: FAILED or timed out (bench_cuda.log)"
  tail -40 "$out/bench_cuda.log"
  # A variant of the kernels, set by one environment variable, timed on a few configs:
  # variant NAME ENV=VALUE SECONDS FILTER (results in bench_cuda_NAME.{json,log}).
  variant() {
    room_for $(( $3 + 30 )) || { note "bench_cuda $1: skipped (time budget)"; return; }
    env "$2" timeout "$3" build-gpu/bench/bench_cuda --benchmark_out="$out/bench_cuda_$1.json" \
      --benchmark_out_format=json --benchmark_filter="$4" --benchmark_min_time=0.2s \
      >"$out/bench_cuda_$1.log" 2>&1 && note "bench_cuda $1 ($2): done ($(elapsed))" ||
      note "bench_cuda $1: FAILED or timed out (bench_cuda_$1.log)"
    grep -E "^cuda_" "$out/bench_cuda_$1.log" | head -12
  }
  # G3/G4 with the tiled kernels off: the side-by-side measure of what tiling buys.
  variant untiled CUEM_CUDA_TILED=0 120 'cuda_(em_iteration|estep)/G[34]'
  # G4's statistics kernel with 2 components a thread (two blocks an SM) instead of 4 (one).
  variant stats_rk2 CUEM_CUDA_STATS_RK=2 60 'cuda_(em_iteration|estep)/G4'
else
  note "bench_cuda: skipped (not built or time budget)"
fi

# Side by side with scikit-learn's Array API path on torch (quick sizes: N / 20).
if [ -n "$py" ] && room_for 60; then
  timeout "$(limit 600 20)" "$py" scripts/compare_gpu.py --quick \
    --driver build-gpu/tests/em_driver --out "$out" >"$out/compare_gpu.log" 2>&1 &&
    note "compare_gpu (quick): done" || note "compare_gpu: FAILED or timed out (compare_gpu.log)"
  grep -E "^\| " "$out/compare_gpu.log" | head -40
fi

# The Python package against this build's CUDA backend (offline: the image has
# scikit-build-core and nanobind, so no build isolation).
if ! room_for 240; then
  note "python: skipped (time budget)"
elif [ -n "$py" ] && "$py" -c 'import scikit_build_core, nanobind, sklearn, pytest' 2>/dev/null; then
  rm -rf /tmp/cuem-py
  if CUEM_WITH_CUDA=ON CUEM_CUDA_ARCHS="$arch" CMAKE_ARGS="-DCUEM_WERROR=OFF" timeout "$(limit 600 60)" "$py" -m pip install -q --no-build-isolation --no-deps \
       --target /tmp/cuem-py . >"$out/python_build.log" 2>&1 &&
     PYTHONPATH=/tmp/cuem-py timeout "$(limit 600 5)" "$py" -m pytest -q -p no:cacheprovider tests/python >"$out/pytest.log" 2>&1; then
    note "python: $(tail -1 "$out/pytest.log")"
  else
    tail -15 "$out/python_build.log" "$out/pytest.log" 2>/dev/null
    note "python: FAILED (python_build.log, pytest.log)"
  fi
else
  note "python: skipped (no scikit-build-core/nanobind/scikit-learn/pytest)"
fi

echo
echo "==================== gpu_check summary ($(elapsed)) ===================="
for line in "${summary[@]}"; do echo "  $line"; done
[ -f "$out/ptxas.txt" ] && { echo "  ptxas:"; sed 's/^/    /' "$out/ptxas.txt" | head -60; }
