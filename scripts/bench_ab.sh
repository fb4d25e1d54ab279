#!/usr/bin/env bash
# Side-by-side CPU timing of two commits on this machine, in one run: the work tree (HEAD
# plus any changes) against BASE (default: the commit before the engine refactor).
#   scripts/bench_ab.sh [BASE] [ROUNDS] [--quick]
# Builds bench_cpu and the command line of both (CPU only, Release) under build-ab/, then
# alternates them ROUNDS times (default 3; the order swaps every round, so drift in the
# machine's load falls on both): bench_cpu's cpu_em_iteration and cpu_estep on A-E, and
# `cuem fit` end to end (5 iterations from given data, tol 0, k-means++ start, the
# bic/aic included) on the same configurations. scripts/bench_ab.py writes the medians and
# ratios to bench/results/<machine>/<date>_engine_ab.{json,md}. --quick: N / 20, 1 round
# (a check of the pipeline, not a measurement).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
base=59a5e4d
rounds=3
quick=0
positional=()
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    *) positional+=("$a") ;;
  esac
done
[ ${#positional[@]} -ge 1 ] && base=${positional[0]}
[ ${#positional[@]} -ge 2 ] && rounds=${positional[1]}
[ $quick = 1 ] && rounds=1
python=${CUEM_PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || python=python3

out=build-ab
mkdir -p $out
base_commit=$(git rev-parse --short "$base")
head_commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include kernels bench CMakeLists.txt || echo +dirty)

# The base's sources in a detached worktree (replaced when BASE changes).
if [ ! -d $out/src-base ] || [ "$(git -C $out/src-base rev-parse --short HEAD)" != "$base_commit" ]; then
  git worktree remove --force $out/src-base 2>/dev/null || rm -rf $out/src-base
  git worktree add --detach $out/src-base "$base" >/dev/null
fi
build() {  # build SOURCE_DIR BUILD_DIR
  CUEM_NO_CUDA=1 CUEM_BUILD_DIR="$2" CUEM_BUILD_TARGETS="bench_cpu cuem_cli" \
    bash "$1/scripts/build.sh" -DCUEM_BUILD_TESTS=OFF -DCUEM_BUILD_BENCH=ON >/dev/null
}
echo "building base $base_commit and head $head_commit (CPU only, Release)" >&2
build $out/src-base "$root/$out/base"
build "$root" "$root/$out/head"

# Configurations A-E as bench_common.hpp defines them: name N D K covariance.
configs=("A 1000000 2 8 full" "B 200000 16 16 full" "C 1000000 32 32 diag" "D 100000 64 64 full"
         "E 2000000 1 4 full")
mkdir -p $out/data
for c in "${configs[@]}"; do
  read -r name n d k cov <<<"$c"
  [ $quick = 1 ] && n=$((n / 20))
  f=$out/data/$name-$n.npy
  [ -f "$f" ] || "$out/head/cuem" generate -n "$n" -d "$d" -k "$k" --seed 42 -o "$f" --quiet >/dev/null
done

results=$out/results.txt
: >"$results"
min_time=$([ $quick = 1 ] && echo 0.05 || echo 1)
for ((r = 1; r <= rounds; r++)); do
  order=(base head)
  ((r % 2 == 0)) && order=(head base)
  for side in "${order[@]}"; do
    echo "round $r: $side" >&2
    "$out/$side/bench/bench_cpu" --benchmark_filter='cpu_(em_iteration|estep)/' \
      --benchmark_min_time=$min_time --benchmark_format=json --benchmark_out=$out/$side-$r.json \
      --benchmark_out_format=json >/dev/null
    "$python" - "$out/$side-$r.json" "$side" >>"$results" <<'EOF'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    print(sys.argv[2], "bench", b["name"], b["real_time"] / 1e3 if b["time_unit"] == "ms" else b["real_time"])
EOF
    for c in "${configs[@]}"; do
      read -r name n d k cov <<<"$c"
      [ $quick = 1 ] && n=$((n / 20))
      t0=$(date +%s.%N)
      "$out/$side/cuem" fit "$out/data/$name-$n.npy" -k "$k" --covariance "$cov" --init k-means++ \
        --max-iter 5 --tol 0 --seed 1 --quiet >/dev/null
      t1=$(date +%s.%N)
      echo "$side fit cuem_fit/$name $(echo "$t1 - $t0" | bc)" >>"$results"
    done
  done
done
"$python" scripts/bench_ab.py "$results" --base "$base_commit" --head "$head_commit" --rounds "$rounds" \
  $([ $quick = 1 ] && echo --quick)
