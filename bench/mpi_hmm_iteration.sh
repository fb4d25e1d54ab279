#!/usr/bin/env bash
# Seconds per Baum-Welch iteration of the distributed Gaussian HMM fit (cuem fit --model hmm
# --distributed) at issue 16's H2 shape (1000 sequences of 1000 frames, K 16, D 8, full),
# against the plain fit on 1 and 2 threads: R = 1 and 2 ranks of one OpenMP thread, ordered
# and allreduce reductions. Prints a markdown table of the median seconds of iterations 2..
# from each fit's --trace.
#   bash bench/mpi_hmm_iteration.sh [path/to/cuem] [sequences]
set -euo pipefail
cuem=${1:-build-cpu/cuem}
sequences=${2:-1000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=PASSIVE
mpi=(mpirun --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
"$cuem" generate -n $((sequences * 1000)) -d 8 -k 16 --seed 1 -o "$work/h2.npy" -q >/dev/null
python3 -c "import sys; open(sys.argv[1], 'w').write(' '.join(['1000'] * int(sys.argv[2])))" "$work/len.txt" "$sequences"
opts=(--model hmm --lengths "$work/len.txt" -k 16 --covariance full --max-iter 6 --tol 0 -q -o "$work/m.json")
median() { python3 -c 'import csv,sys,statistics as s; r=list(csv.DictReader(open(sys.argv[1])))[1:]; print("%.3f" % s.median(float(x["seconds"]) for x in r))' "$1"; }
echo "| run | processes x threads | s/iter |"
echo "|---|---|---:|"
for t in 1 2; do
  OMP_NUM_THREADS=$t "$cuem" fit "$work/h2.npy" "${opts[@]}" --trace "$work/t.csv" >/dev/null
  echo "| plain | 1 x $t | $(median "$work/t.csv") |"
done
for r in 1 2; do
  for red in ordered allreduce; do
    OMP_NUM_THREADS=1 "${mpi[@]}" -n $r "$cuem" fit "$work/h2.npy" --distributed --reduction $red "${opts[@]}" \
      --trace "$work/t.csv" >/dev/null
    echo "| distributed, $red | $r x 1 | $(median "$work/t.csv") |"
  done
done
