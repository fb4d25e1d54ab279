#!/usr/bin/env bash
# Golden models: proof that a change (a refactor) changed no fitted result.
#
#   scripts/golden.sh check  [--quick] [--cpu-tool PATH] [--emulated-tool PATH]
#   scripts/golden.sh update [--cpu-tool PATH] [--emulated-tool PATH]
#
# The tools (tests/tools/golden_fit.cpp, built as golden_fit and golden_fit_emulated in
# ${CUEM_BUILD_DIR:-build}/tests) fit a fixed matrix of cases on the CPU and on the
# emulated CUDA device and print a SHA-256 of each fitted model's bits. "check" compares
# them with tests/golden/ and prints every differing case (exit 1); "update" first checks
# that the results do not depend on the thread count or the run, then rewrites the files.
# --quick leaves out the full-size benchmark configurations (the ctest golden_models).
#
# The CPU kernels are picked by instruction level at load time, and x86-64-v3 and v4
# kernels may round differently: the CPU goldens are kept per level
# (golden_cpu_<level>.txt), and a golden made on another level or by another compiler is
# skipped with the reason (the emulated device cases call no CPU kernel: one file serves
# every level). Exit 77 when nothing could be compared.
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
golden_dir=$root/tests/golden
build_dir=${CUEM_BUILD_DIR:-build}
[[ $build_dir = /* ]] || build_dir=$root/$build_dir

mode=${1:-}
shift || true
quick=()
cpu_tool=$build_dir/tests/golden_fit
emu_tool=$build_dir/tests/golden_fit_emulated
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=(--quick) ;;
    --cpu-tool) cpu_tool=$2; shift ;;
    --emulated-tool) emu_tool=$2; shift ;;
    *) echo "golden.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
case $mode in check|update) ;; *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;; esac
for t in "$cpu_tool" "$emu_tool"; do
  [ -x "$t" ] || { echo "golden.sh: $t is not built (cmake --build DIR --target golden_fit golden_fit_emulated)" >&2; exit 2; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

header() { sed -n "s/^# $2 //p" "$1" | head -n1; }
level_of() { header "$1" level | cut -d' ' -f1; }

# Runs a tool; fails loudly (exit 2) when it fails, so a crash never reads as "no cases".
run_tool() {
  local out=$1; shift
  if ! "$@" >"$out" 2>"$out.err"; then
    echo "golden.sh: '$*' failed:" >&2
    cat "$out.err" >&2
    exit 2
  fi
}

if [ "$mode" = update ]; then
  rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$root" status --porcelain -- src kernels include bench/bench_common.hpp 2>/dev/null | head -n1)
  [ -z "$dirty" ] || rev="$rev (with uncommitted changes to src/, kernels/ or include/)"
  mkdir -p "$golden_dir"
  for kind in cpu emulated; do
    tool=$cpu_tool; [ $kind = emulated ] && tool=$emu_tool
    echo "golden.sh: $kind: one thread, then two threads ..."
    run_tool "$tmp/$kind.1" env OMP_NUM_THREADS=1 "$tool" --threads 0
    run_tool "$tmp/$kind.2" env OMP_NUM_THREADS=2 "$tool" --threads 2
    if ! cmp -s "$tmp/$kind.1" "$tmp/$kind.2"; then
      echo "golden.sh: $kind results depend on the thread count or differ run to run; not written:" >&2
      diff "$tmp/$kind.1" "$tmp/$kind.2" >&2 || true
      exit 1
    fi
    if [ $kind = cpu ]; then file=$golden_dir/golden_cpu_$(level_of "$tmp/$kind.1").txt
    else file=$golden_dir/golden_emulated.txt; fi
    { echo "# made at $rev by scripts/golden.sh update; the same with 1 and 2 threads"
      cat "$tmp/$kind.1"; } >"$file"
    echo "golden.sh: wrote $file ($(grep -vc '^#' "$file") cases)"
  done
  exit 0
fi

# check
compared=0
failed=0
for kind in cpu emulated; do
  tool=$cpu_tool; [ $kind = emulated ] && tool=$emu_tool
  run_tool "$tmp/$kind" "$tool" "${quick[@]}"
  level=$(level_of "$tmp/$kind")
  if [ $kind = cpu ]; then file=$golden_dir/golden_cpu_$level.txt
  else file=$golden_dir/golden_emulated.txt; fi
  if [ ! -f "$file" ]; then
    echo "SKIP $kind: no $(basename "$file") for CPU kernel level $level here ($(ls "$golden_dir" 2>/dev/null | tr '\n' ' '));" \
         "the goldens were made on another machine's level, whose kernels may round differently"
    continue
  fi
  reason=
  # The device cases call none of the CPU kernels: only the CPU goldens depend on the level.
  [ $kind = emulated ] || [ "$(level_of "$file")" = "$level" ] ||
    reason="the golden was made with CPU kernel level $(level_of "$file"), this machine runs $level"
  [ "$(header "$file" compiler)" = "$(header "$tmp/$kind" compiler)" ] ||
    reason="the golden was made by compiler $(header "$file" compiler), this build by $(header "$tmp/$kind" compiler)"
  if [ -n "$reason" ]; then
    echo "SKIP $kind: $reason"
    continue
  fi
  # name -> hash, value: every produced case must be in the golden with the same hash;
  # a full check also wants every golden case produced.
  grep -v '^#' "$file" | sort >"$tmp/$kind.want"
  grep -v '^#' "$tmp/$kind" | sort >"$tmp/$kind.got"
  n=$(wc -l <"$tmp/$kind.got")
  bad=$(join -j1 -a1 -a2 -e MISSING -o 0,1.2,2.2,1.3,2.3 "$tmp/$kind.want" "$tmp/$kind.got" |
    awk -v quick="${#quick[@]}" '
      $3 == "MISSING" { if (quick == 0) printf "MISSING %s: in the golden, not produced\n", $1; next }
      $2 == "MISSING" { printf "NEW     %s: produced, not in the golden (run update if the case was added on purpose)\n", $1; next }
      $2 != $3 { printf "DIFFER  %s: lower bound golden %s, now %s\n", $1, $4, $5 }')
  compared=$((compared + 1))
  if [ -n "$bad" ]; then
    echo "FAIL $kind ($file): $(echo "$bad" | wc -l) of $n cases differ"
    echo "$bad"
    failed=1
  else
    echo "OK   $kind: $n cases bitwise equal to $(basename "$file") ($(head -n1 "$file" | sed 's/^# //'))"
  fi
done
[ $failed = 0 ] || exit 1
[ $compared -gt 0 ] || exit 77
exit 0
