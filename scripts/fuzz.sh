#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/: the .npy and raw, CSV and model readers) with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer into build-fuzz/, and runs each for
# FUZZ_SECONDS seconds (default 60; 0 runs the seed corpus once) on a copy of its seed
# corpus, so the committed corpus never grows. Fails on any crash, leak, timeout,
# out-of-memory or sanitizer report, naming the input that caused it; prints one summary
# line per target. FUZZ_TARGETS narrows the targets (default "npy csv model").
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
read -r -a targets <<<"${FUZZ_TARGETS:-npy csv model}"
build_dir=build-fuzz
run_dir=$build_dir/run

# ---- tools (Debian 12; idempotent, quiet when all is there) -------------------------------
bash scripts/setup.sh --fuzz

# ---- build ---------------------------------------------------------------------------------
mkdir -p "$build_dir"
CC=clang-14 CXX=clang++-14 cmake -S fuzz -B "$build_dir" >"$build_dir/configure.log" 2>&1 ||
  { cat "$build_dir/configure.log"; exit 1; }
cmake --build "$build_dir" -j"$(nproc)" >"$build_dir/build.log" 2>&1 ||
  { tail -n 60 "$build_dir/build.log"; exit 1; }

# ---- run -----------------------------------------------------------------------------------
export ASAN_OPTIONS=detect_leaks=1:symbolize=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The last value of one of libFuzzer's final statistics in a log.
stat_of() { sed -n "s/^stat::$2: *//p" "$1" | tail -n 1; }
rm -rf "$run_dir"
failed=()
for t in "${targets[@]}"; do
  exe=$build_dir/fuzz_$t
  [ -x "$exe" ] || { echo "fuzz: no target '$t' (have: npy csv model)"; exit 2; }
  corpus=$run_dir/corpus/$t
  artifacts=$run_dir/artifacts/$t
  log=$run_dir/$t.log
  mkdir -p "$corpus" "$artifacts"
  cp fuzz/corpus/"$t"/* "$corpus"/
  seeds=$(find "$corpus" -type f | wc -l)
  if [ "$seconds" -gt 0 ]; then
    limit=(-max_total_time="$seconds"); span="in ${seconds}s"
  else
    limit=(-runs=0); span="(seeds only)"
  fi
  dict=()
  if [ -f "fuzz/$t.dict" ]; then dict=(-dict="fuzz/$t.dict"); fi
  rc=0
  "$exe" "${limit[@]}" "${dict[@]}" -rss_limit_mb=2048 -max_len=65536 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?

  execs=$(stat_of "$log" number_of_executed_units)
  rate=$(stat_of "$log" average_exec_per_sec)
  new_units=$(stat_of "$log" new_units_added)
  peak=$(stat_of "$log" peak_rss_mb)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
  after=$(find "$corpus" -type f | wc -l)
  # A sanitizer report is a failure even if the process somehow exited 0.
  if grep -qE '^==[0-9]+== ?ERROR: |runtime error: |^SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer|invariant broken' "$log"; then
    [ "$rc" -ne 0 ] || rc=1
  fi
  if [ "$rc" -eq 0 ]; then verdict=ok; else verdict="FAILED (exit $rc)"; failed+=("$t"); fi
  echo "fuzz $t: $verdict; ${execs:-?} executions (${rate:-?}/s) $span, ${cov:-cov: ?}," \
       "${new_units:-0} new units (corpus $seeds -> $after), peak ${peak:-?} MB"
  if [ "$rc" -ne 0 ]; then
    echo "---- last lines of $log ----"
    tail -n 40 "$log"
    for a in "$artifacts"/*; do
      if [ -e "$a" ]; then echo "reproduce: $exe $a"; fi
    done
    echo "----"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (logs and inputs under $run_dir)"
  exit 1
fi
echo "fuzz: all targets clean"
