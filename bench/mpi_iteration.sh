#!/usr/bin/env bash
# Time per EM iteration of the distributed fit (cuem fit --distributed) for R = 1, 2, 4
# ranks, ordered and allreduce reductions, on two shapes: small statistics (the reduction
# is a few KB) and larger ones (a few hundred KB). One OpenMP thread a rank. Prints a
# markdown table: the median seconds of iterations 2.. from the fit's --trace.
#   bash bench/mpi_iteration.sh [path/to/cuem]
set -euo pipefail
cuem=${1:-build-cpu/cuem}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
mpi=(mpirun --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
"$cuem" generate -n 200000 -d 8 -k 8 --seed 1 -o "$work/small.npy" -q >/dev/null
"$cuem" generate -n 40000 -d 32 -k 64 --seed 1 -o "$work/large.npy" -q >/dev/null
median() { python3 -c 'import csv,sys,statistics as s; r=list(csv.DictReader(open(sys.argv[1])))[1:]; print("%.4f" % s.median(float(x["seconds"]) for x in r))' "$1"; }
echo "| shape | statistics per reduction | R | ordered s/iter | allreduce s/iter |"
echo "|---|---|---:|---:|---:|"
for shape in small large; do
  if [ $shape = small ]; then opts=(-k 8 --covariance full --max-iter 12); bytes="8 x (1 + 8 + 36) doubles = 2.9 KB"
  else opts=(-k 64 --covariance full --max-iter 4); bytes="64 x (1 + 32 + 528) doubles = 287 KB"; fi
  for r in 1 2 4; do
    row="| $shape | $bytes | $r |"
    for red in ordered allreduce; do
      "${mpi[@]}" -n $r "$cuem" fit "$work/$shape.npy" --distributed -q --tol 0 --init k-means++ "${opts[@]}" \
        --segment-rows 8192 --reduction $red --trace "$work/t.csv" -o "$work/m.json" >/dev/null
      row="$row $(median "$work/t.csv") |"
    done
    echo "$row"
  done
done
