#!/usr/bin/env bash
# The distributed fit end to end under mpirun (tests/CMakeLists.txt runs one case each):
#   bitwise   configs A-E at small N: R = 1, 2, 3, 4 ranks give byte-identical model files,
#             and the model agrees with the plain (non-distributed) float64 CPU fit to 1e-8
#   iris      the bundled data, the same; and one segment on one rank is the plain fit, bitwise
#   allreduce --reduction allreduce agrees with the ordered fit to 1e-9 (not bitwise)
#   bad_data  a NaN in rank 2's rows: one message naming rank 2, its rows, the row and
#             column; exit code 3 on every rank, no hang
#   kill      SIGKILL to rank 1 mid-fit: mpirun ends the whole job, non-zero, within 60 s
#   emulated  the emulated CUDA backend (the mpi_emulated_fit driver, $3): R = 1..4 bitwise
#             identical, within float32 rounding of the CPU fit; with weights too; the HMM too
#   resume    a checkpointed fit killed mid-way, resumed, ends byte-identical to an
#             uninterrupted fit (and the resume says it replayed iterations)
#   weights   --weights: R = 1..4 byte-identical (kmeans, k-means++, random_from_data; rows
#             of weight 0 included) and close to the plain weighted fit
#   hmm       --model hmm: sequences of unequal lengths (one longer than a segment), each
#             covariance type, restarts, SQUAREM, GMMHMMs: R = 1..4 byte-identical and close
#             to the plain fit; one unit on one rank is the plain fit bitwise; allreduce
#             close; the refusals (more ranks than units, SQUAREM with --n-mix, --weights,
#             bad lengths) say so once
#   hmm_resume  a checkpointed HMM fit killed mid-way, resumed on 2 and on 3 ranks, ends
#             byte-identical to an uninterrupted fit; another fit's checkpoint is refused
#   shards    the data split into 3 shard files (uneven, segments across their borders),
#             named as a list and as a glob: R = 1..4 byte-identical, and bitwise the
#             single file's model; shards of different widths: exit 3 naming the shard
# Exit 77 (skipped) where mpirun is absent.
set -uo pipefail
cuem=$1
case_name=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found (install Open MPI: scripts/setup.sh)"; exit 77; }
[ "${CUEM_MPI_BUILT:-1}" = 0 ] && { echo "SKIP: this build has CUEM_WITH_MPI off (no MPI found at configure time)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# Shared memory between the ranks, without the cross-process copies (CMA) that containers'
# ptrace rules often forbid.
mpi=(mpirun --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)

fail() { echo "FAIL: $*"; exit 1; }

# Relative agreement of two model JSON files' numbers (a mixture's weights, means and
# covariances; an HMM's startprob, transmat, means and covariances).
close() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
a, b, tol = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
def flat(v):
    if isinstance(v, list):
        for x in v: yield from flat(x)
    else:
        yield v
worst = 0.0
keys = [k for k in ("weights", "startprob", "transmat", "means", "covariances") if k in b]
assert "means" in keys and all(k in a for k in keys), keys
for key in keys:
    xa, xb = list(flat(a[key])), list(flat(b[key]))
    assert len(xa) == len(xb) and len(xa) > 0, key
    scale = max(abs(x) for x in xb) or 1.0
    worst = max(worst, max(abs(x - y) for x, y in zip(xa, xb)) / scale)
print(f"largest relative difference {worst:.3g} (tolerance {tol:g})")
sys.exit(0 if worst <= tol else 1)
PY
}

# Fits DATA with R ranks into OUT; the rest are fit options.
dfit() {
  local r=$1 data=$2 out=$3
  shift 3
  "${mpi[@]}" -n "$r" "$cuem" fit "$data" --distributed -q -o "$out" "$@" >/dev/null || fail "mpirun -n $r exited $?"
}

# R = 1..4 byte-identical, and close to the plain fit.
same_for_all_ranks() {
  local data=$1
  shift
  local what="$(basename "$data") $*"
  for r in 1 2 3 4; do dfit "$r" "$data" "$work/model_$r.json" "$@"; done
  for r in 2 3 4; do
    cmp -s "$work/model_1.json" "$work/model_$r.json" || {
      diff "$work/model_1.json" "$work/model_$r.json" | head -5
      fail "R = $r differs from R = 1 ($what)"
    }
  done
  # The segment options only exist distributed; strip them for the plain fit.
  local plain=()
  while [ $# -gt 0 ]; do
    case $1 in --segment-rows | --reduction) shift 2 ;; *) plain+=("$1"); shift ;; esac
  done
  "$cuem" fit "$data" -q -o "$work/plain.json" "${plain[@]}" >/dev/null || fail "plain fit failed"
  close "$work/model_1.json" "$work/plain.json" 1e-8 || fail "distributed and plain fits differ ($what)"
  echo "ok: R = 1..4 bitwise identical, plain fit agrees ($what)"
}

gen() {  # n d k file
  "$cuem" generate -n "$1" -d "$2" -k "$3" --seed 7 -o "$4" -q || fail "generate failed"
}

case $case_name in
  bitwise)
    # Configs A-E of scripts/compare_peers.py at small N, a few iterations.
    gen 3000 2 8 "$work/A.npy"
    same_for_all_ranks "$work/A.npy" -k 8 --covariance full --max-iter 5 --tol 0 --segment-rows 256
    gen 2000 16 16 "$work/B.npy"
    same_for_all_ranks "$work/B.npy" -k 16 --covariance full --max-iter 3 --tol 0 --segment-rows 256
    gen 2000 32 32 "$work/C.npy"
    same_for_all_ranks "$work/C.npy" -k 32 --covariance diag --max-iter 3 --tol 0 --segment-rows 256
    gen 2000 64 8 "$work/D.npy"
    same_for_all_ranks "$work/D.npy" -k 8 --covariance full --max-iter 2 --tol 0 --segment-rows 384
    gen 3000 1 4 "$work/E.npy"
    same_for_all_ranks "$work/E.npy" -k 4 --covariance full --max-iter 5 --tol 0 --segment-rows 256
    # Other covariance types, k-means++ and restarts.
    same_for_all_ranks "$work/B.npy" -k 4 --covariance tied --init k-means++ --n-init 2 --max-iter 4 --tol 0 \
      --segment-rows 200
    same_for_all_ranks "$work/A.npy" -k 3 --covariance spherical --init random_from_data --max-iter 4 --tol 0 \
      --segment-rows 256
    same_for_all_ranks "$work/E.npy" -k 4 --acceleration squarem --max-iter 9 --tol 0 --segment-rows 256
    # Statistics of 64 x (1 + 32 + 528) doubles: more than one 256 KiB block of the pipeline.
    gen 2400 32 8 "$work/F.npy"
    same_for_all_ranks "$work/F.npy" -k 64 --covariance full --max-iter 2 --tol 0 --reg-covar 1e-2 --segment-rows 512
    ;;
  iris)
    same_for_all_ranks "$root/data/iris.csv" -k 3 --seed 0 --segment-rows 16
    # One segment on one rank is the plain fit, bitwise.
    dfit 1 "$root/data/iris.csv" "$work/one.json" -k 3 --seed 0 --segment-rows 150
    "$cuem" fit "$root/data/iris.csv" -q -o "$work/plain1.json" -k 3 --seed 0 >/dev/null || fail "plain fit failed"
    cmp "$work/one.json" "$work/plain1.json" || fail "one segment on one rank differs from the plain fit"
    echo "ok: one segment on one rank equals the plain fit bitwise"
    # BIC and AIC from the distributed pass against the plain fit's float64 criteria.
    "${mpi[@]}" -n 3 "$cuem" fit "$root/data/iris.csv" --distributed -q --json -k 3 --seed 0 --segment-rows 16 \
      >"$work/d.json" || fail "distributed --json fit failed"
    "$cuem" fit "$root/data/iris.csv" -q --json -k 3 --seed 0 >"$work/p.json" || fail "plain --json fit failed"
    python3 - "$work/d.json" "$work/p.json" <<'PY' || fail "criteria differ"
import json, sys
d, p = (json.load(open(f)) for f in sys.argv[1:3])
assert d["ranks"] == 3, d
for key in ("bic", "aic"):
    assert abs(d[key] - p[key]) <= 1e-9 * abs(p[key]), (key, d[key], p[key])
print("ok: bic and aic agree with the plain fit's:", d["bic"], p["bic"])
PY
    ;;
  allreduce)
    gen 2000 4 3 "$work/a.npy"
    dfit 3 "$work/a.npy" "$work/ordered.json" -k 3 --max-iter 20 --segment-rows 128
    dfit 3 "$work/a.npy" "$work/all.json" -k 3 --max-iter 20 --segment-rows 128 --reduction allreduce
    close "$work/all.json" "$work/ordered.json" 1e-9 || fail "allreduce and ordered fits differ"
    ;;
  bad_data)
    python3 - "$work/bad.npy" <<'PY' || fail "numpy is needed to write the test file"
import sys, struct
# A float64 .npy of 1000 x 3 with a NaN at row 731, column 2 (rank 2 of 4 holds rows 500-749
# with 125-row segments: 8 segments, 2 per rank).
n, d = 1000, 3
header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }" % (n, d)
header += " " * (63 - (10 + len(header)) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    for i in range(n):
        for j in range(d):
            v = float("nan") if (i, j) == (731, 2) else ((i * 7 + j * 3) % 11) / 3.0
            f.write(struct.pack("<d", v))
PY
    start=$(date +%s)
    "${mpi[@]}" -n 4 "$cuem" fit "$work/bad.npy" --distributed -k 2 --segment-rows 125 \
      >"$work/out.txt" 2>"$work/err.txt"
    code=$?
    elapsed=$(($(date +%s) - start))
    cat "$work/err.txt"
    [ "$code" -eq 3 ] || fail "exit code $code, expected 3 (bad input data)"
    [ "$(grep -c '^cuem: ' "$work/err.txt")" -eq 1 ] || fail "expected exactly one error message"
    grep -q "rank 2 (rows 500-749" "$work/err.txt" || fail "the message does not name rank 2 and its rows"
    grep -q "row 731, column 2" "$work/err.txt" || fail "the message does not name the row and column"
    grep -q "NaN" "$work/err.txt" || fail "the message does not name the cause"
    [ "$elapsed" -lt 60 ] || fail "took $elapsed s"
    echo "ok: bad data on rank 2 ended the job in $elapsed s with one message"
    ;;
  kill | resume)
    gen 60000 8 6 "$work/big.npy"
    opts=(-k 6 --max-iter 400 --tol 0 --segment-rows 4096)
    # Killed after a second: a fit long enough to be running then whatever the CPU kernels' speed.
    [ "$case_name" = kill ] && opts=(-k 6 --max-iter 20000 --tol 0 --segment-rows 4096)
    if [ "$case_name" = resume ]; then
      dfit 2 "$work/big.npy" "$work/straight.json" "${opts[@]}"
      opts+=(--checkpoint "$work/fit.ckpt" --checkpoint-every 20)
    fi
    # Rank 1 records its pid (exec keeps it) so that the test can kill that rank alone.
    "${mpi[@]}" -n 2 bash -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && echo $$ >"$0/rank1.pid"; exec "$@"' "$work" \
      "$cuem" fit "$work/big.npy" --distributed -q -o "$work/killed.json" "${opts[@]}" \
      >"$work/out.txt" 2>"$work/err.txt" &
    job=$!
    for _ in $(seq 300); do
      if [ "$case_name" = resume ]; then [ -s "$work/fit.ckpt" ] && break; else [ -s "$work/rank1.pid" ] && break; fi
      sleep 0.1
    done
    [ -s "$work/rank1.pid" ] || fail "rank 1 never started"
    [ "$case_name" = kill ] && sleep 1
    start=$(date +%s)
    kill -KILL "$(cat "$work/rank1.pid")" || fail "rank 1 had already ended: the fit was too short for the test"
    wait "$job"
    code=$?
    elapsed=$(($(date +%s) - start))
    tail -5 "$work/err.txt"
    [ "$code" -ne 0 ] || fail "mpirun exited 0 after a rank was killed"
    [ "$elapsed" -lt 60 ] || fail "the job took $elapsed s to end after the kill"
    [ ! -e "$work/killed.json" ] || fail "a killed fit wrote a model"
    echo "ok: killing rank 1 ended the job (exit $code) in $elapsed s"
    if [ "$case_name" = resume ]; then
      [ -s "$work/fit.ckpt" ] || fail "no checkpoint was written"
      "${mpi[@]}" -n 2 "$cuem" fit "$work/big.npy" --distributed -o "$work/resumed.json" "${opts[@]}" \
        2>"$work/err2.txt" >/dev/null || { cat "$work/err2.txt"; fail "the resumed fit failed"; }
      grep -o "resumed from checkpoint .*" "$work/err2.txt" || fail "the fit did not say it resumed"
      cmp -s "$work/straight.json" "$work/resumed.json" || fail "the resumed fit differs from the uninterrupted one"
      # A resume on another number of ranks replays the same journal: the same model.
      "${mpi[@]}" -n 3 "$cuem" fit "$work/big.npy" --distributed -q -o "$work/resumed3.json" "${opts[@]}" >/dev/null ||
        fail "the resumed fit on 3 ranks failed"
      cmp -s "$work/straight.json" "$work/resumed3.json" || fail "the resume on 3 ranks differs"
      echo "ok: the resumed fit is byte-identical to the uninterrupted one (on 2 and 3 ranks)"
    fi
    ;;
  emulated)
    # The emulated CUDA backend (tests/emu) under the same driver: R = 1..4 byte-identical,
    # and within float32 rounding of the float64 CPU fit from the same start.
    driver=${3:-}
    [ -x "$driver" ] || fail "no mpi_emulated_fit driver given"
    for cfg in "full 3 1200 4" "diag 4 1100 6" "tied 3 900 3" "spherical 2 1000 5" "full 3 1000 3 weighted"; do
      set -- $cfg
      for r in 1 2 3 4; do
        "${mpi[@]}" -n $r "$driver" "$work/emu_$r.bin" cuda "$1" "$2" "$3" "$4" 200 3 ${5:-} >"$work/emu_out.txt" ||
          fail "emulated fit on $r ranks failed ($cfg)"
      done
      grep -q "^cuda" "$work/emu_out.txt" || fail "the fit did not run on the (emulated) CUDA device: $(cat "$work/emu_out.txt")"
      for r in 2 3 4; do cmp -s "$work/emu_1.bin" "$work/emu_$r.bin" || fail "emulated R = $r differs from R = 1 ($cfg)"; done
      "${mpi[@]}" -n 2 "$driver" "$work/cpu.bin" cpu "$1" "$2" "$3" "$4" 200 3 ${5:-} >/dev/null || fail "CPU fit failed"
      python3 - "$work/emu_1.bin" "$work/cpu.bin" <<'PY' || fail "emulated and CPU fits differ ($cfg)"
import struct, sys
a, b = (open(p, "rb").read() for p in sys.argv[1:3])
x, y = struct.unpack(f"{len(a)//8}d", a), struct.unpack(f"{len(b)//8}d", b)
assert len(x) == len(y) > 0
scale = max(abs(v) for v in y)
worst = max(abs(u - v) for u, v in zip(x, y)) / scale
print(f"emulated float32 against CPU float64: largest relative difference {worst:.3g}")
sys.exit(0 if worst < 1e-4 else 1)
PY
      if [ -n "${5:-}" ]; then  # the weights were used: the unweighted fit is another model
        "${mpi[@]}" -n 2 "$driver" "$work/unweighted.bin" cuda "$1" "$2" "$3" "$4" 200 3 >/dev/null ||
          fail "unweighted emulated fit failed"
        cmp -s "$work/emu_1.bin" "$work/unweighted.bin" && fail "the weighted emulated fit equals the unweighted one"
      fi
      echo "ok: emulated CUDA R = 1..4 bitwise identical ($cfg)"
    done
    # The Gaussian HMM: units of whole sequences, each on its own emulated CUDA backend
    # (emissions, the device chain and the statistics).
    for cfg in "full 3 2000 3 300" "diag 4 2500 3 400" "spherical 2 1500 2 256" "tied 3 2000 2 300"; do
      set -- $cfg
      for r in 1 2 3 4; do
        "${mpi[@]}" -n $r "$driver" "$work/emu_$r.bin" cuda "$1" "$2" "$3" "$4" "$5" 4 hmm >"$work/emu_out.txt" ||
          fail "emulated HMM fit on $r ranks failed ($cfg)"
      done
      grep -q "^cuda.*units of the sequences" "$work/emu_out.txt" ||
        fail "the HMM fit did not run on the (emulated) CUDA device: $(cat "$work/emu_out.txt")"
      for r in 2 3 4; do cmp -s "$work/emu_1.bin" "$work/emu_$r.bin" || fail "emulated HMM R = $r differs ($cfg)"; done
      "${mpi[@]}" -n 2 "$driver" "$work/cpu.bin" cpu "$1" "$2" "$3" "$4" "$5" 4 hmm >/dev/null || fail "CPU HMM fit failed"
      python3 - "$work/emu_1.bin" "$work/cpu.bin" <<'PY' || fail "emulated and CPU HMM fits differ ($cfg)"
import struct, sys
a, b = (open(p, "rb").read() for p in sys.argv[1:3])
x, y = struct.unpack(f"{len(a)//8}d", a), struct.unpack(f"{len(b)//8}d", b)
assert len(x) == len(y) > 0
worst = max(abs(u - v) for u, v in zip(x, y)) / max(abs(v) for v in y)
print(f"emulated HMM against CPU float64: largest relative difference {worst:.3g}")
sys.exit(0 if worst < 1e-4 else 1)
PY
      echo "ok: emulated CUDA HMM R = 1..4 bitwise identical ($cfg)"
    done
    ;;
  hmm)
    gen 4000 3 4 "$work/H.npy"
    # Sequences of 1 to 900 frames (the 900 spans several windows of 256 rows), summing to 4000.
    python3 - "$work/H_len.txt" <<'PY' || fail "could not write the lengths"
import random, sys
random.seed(5)
lengths = [1, 900, 2]
while sum(lengths) < 3850:
    lengths.append(random.randint(3, 120))
lengths.append(4000 - sum(lengths))
open(sys.argv[1], "w").write("\n".join(map(str, lengths)) + "\n")
PY
    hmm=(--model hmm --lengths "$work/H_len.txt")
    for cov in full diag spherical tied; do
      same_for_all_ranks "$work/H.npy" "${hmm[@]}" -k 3 --covariance "$cov" --max-iter 5 --tol 0 --segment-rows 256
    done
    same_for_all_ranks "$work/H.npy" "${hmm[@]}" -k 4 --covariance diag --n-init 2 --seed 3 --max-iter 4 --tol 0 \
      --segment-rows 300
    same_for_all_ranks "$work/H.npy" "${hmm[@]}" -k 3 --acceleration squarem --max-iter 8 --tol 0 --segment-rows 256
    # GMMHMMs (two components a state): the same units and sums.
    for cov in diag tied; do
      same_for_all_ranks "$work/H.npy" "${hmm[@]}" -k 2 --n-mix 2 --covariance "$cov" --max-iter 4 --tol 0 \
        --segment-rows 256
    done
    dfit 1 "$work/H.npy" "$work/gone.json" "${hmm[@]}" -k 2 --n-mix 2 --max-iter 4 --tol 0 --segment-rows 4000
    "$cuem" fit "$work/H.npy" -q -o "$work/gplain.json" "${hmm[@]}" -k 2 --n-mix 2 --max-iter 4 --tol 0 >/dev/null ||
      fail "plain GMMHMM fit failed"
    cmp "$work/gone.json" "$work/gplain.json" || fail "one unit on one rank differs from the plain GMMHMM fit"
    # One unit on one rank is the plain fit, bitwise.
    dfit 1 "$work/H.npy" "$work/one.json" "${hmm[@]}" -k 3 --max-iter 5 --tol 0 --segment-rows 4000
    "$cuem" fit "$work/H.npy" -q -o "$work/plain1.json" "${hmm[@]}" -k 3 --max-iter 5 --tol 0 >/dev/null ||
      fail "plain HMM fit failed"
    cmp "$work/one.json" "$work/plain1.json" || fail "one unit on one rank differs from the plain HMM fit"
    echo "ok: one unit on one rank equals the plain HMM fit bitwise"
    dfit 3 "$work/H.npy" "$work/ordered.json" "${hmm[@]}" -k 3 --max-iter 5 --tol 0 --segment-rows 256
    dfit 3 "$work/H.npy" "$work/all.json" "${hmm[@]}" -k 3 --max-iter 5 --tol 0 --segment-rows 256 \
      --reduction allreduce
    close "$work/all.json" "$work/ordered.json" 1e-9 || fail "allreduce and ordered HMM fits differ"
    "${mpi[@]}" -n 2 "$cuem" fit "$work/H.npy" --distributed -q --json "${hmm[@]}" -k 3 --max-iter 5 --tol 0 \
      --segment-rows 256 >"$work/d.json" || fail "distributed --json HMM fit failed"
    "$cuem" fit "$work/H.npy" -q --json "${hmm[@]}" -k 3 --max-iter 5 --tol 0 >"$work/p.json" || fail "plain fit failed"
    python3 - "$work/d.json" "$work/p.json" <<'PY' || fail "the JSON summaries differ"
import json, sys
d, p = (json.load(open(f)) for f in sys.argv[1:3])
assert d["ranks"] == 2 and d["n_sequences"] == p["n_sequences"] == 50, (d["ranks"], d["n_sequences"])
assert d["n_iter"] == p["n_iter"] == 5, (d["n_iter"], p["n_iter"])
assert abs(d["lower_bound"] - p["lower_bound"]) <= 1e-10 * abs(p["lower_bound"]), (d["lower_bound"], p["lower_bound"])
print("ok: the distributed HMM's summary agrees with the plain fit's:", d["lower_bound"], p["lower_bound"])
PY
    # Refusals: exit code and one message for the job, nothing written.
    refused() {  # code pattern ranks args...
      local code=$1 pattern=$2 r=$3
      shift 3
      "${mpi[@]}" -n "$r" "$cuem" fit "$work/H.npy" --distributed -o "$work/refused.json" "$@" >/dev/null 2>"$work/err.txt"
      local got=$?
      [ "$got" -eq "$code" ] || { cat "$work/err.txt"; fail "$*: exit $got, expected $code"; }
      grep -q -- "$pattern" "$work/err.txt" || { cat "$work/err.txt"; fail "$*: no '$pattern' in the message"; }
      [ "$(grep -c '^cuem:' "$work/err.txt")" -eq 1 ] || { cat "$work/err.txt"; fail "$*: not one message"; }
      [ ! -e "$work/refused.json" ] || fail "$*: a model was written"
    }
    refused 2 "make 1 unit(s), fewer than the 3 ranks" 3 "${hmm[@]}" -k 3 --segment-rows 4000
    refused 2 "1 sequence(s) for 2 ranks" 2 --model hmm -k 3 --segment-rows 256
    refused 2 "--acceleration applies to Gaussian HMMs only" 2 "${hmm[@]}" -k 3 --n-mix 2 --acceleration squarem
    refused 2 "--weights apply to mixtures only" 2 "${hmm[@]}" -k 3 --weights "$work/H_len.txt"
    refused 2 "apply to --model bayesian only" 3 "${hmm[@]}" -k 3 --prune-threshold 0.1
    refused 2 "--distributed runs batch EM" 3 "${hmm[@]}" -k 3 --incremental-blocks 2
    echo 3999 >"$work/short_len.txt"
    refused 3 "sum to 3999 frames but the data have 4000" 2 --model hmm --lengths "$work/short_len.txt" -k 3
    echo "ok: the HMM's refusals exit with their codes and one message"
    ;;
  hmm_resume)
    gen 40000 4 4 "$work/big.npy"
    python3 -c "import sys; open(sys.argv[1], 'w').write(' '.join(['100'] * 400))" "$work/len.txt" ||
      fail "could not write the lengths"
    opts=(--model hmm --lengths "$work/len.txt" -k 4 --covariance diag --max-iter 600 --tol 0 --segment-rows 4096)
    dfit 2 "$work/big.npy" "$work/straight.json" "${opts[@]}"
    opts+=(--checkpoint "$work/fit.ckpt" --checkpoint-every 20)
    "${mpi[@]}" -n 2 bash -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && echo $$ >"$0/rank1.pid"; exec "$@"' "$work" \
      "$cuem" fit "$work/big.npy" --distributed -q -o "$work/killed.json" "${opts[@]}" >/dev/null 2>&1 &
    job=$!
    for _ in $(seq 300); do [ -s "$work/fit.ckpt" ] && break; sleep 0.05; done
    [ -s "$work/fit.ckpt" ] || fail "no checkpoint was written"
    kill -KILL "$(cat "$work/rank1.pid")" || fail "rank 1 had already ended: the fit was too short for the test"
    wait "$job" && fail "mpirun exited 0 after a rank was killed"
    [ ! -e "$work/killed.json" ] || fail "a killed fit wrote a model"
    "${mpi[@]}" -n 2 "$cuem" fit "$work/big.npy" --distributed -o "$work/resumed.json" "${opts[@]}" \
      2>"$work/err.txt" >/dev/null || { cat "$work/err.txt"; fail "the resumed HMM fit failed"; }
    grep -o "resumed from checkpoint .*" "$work/err.txt" || fail "the fit did not say it resumed"
    cmp -s "$work/straight.json" "$work/resumed.json" || fail "the resumed HMM fit differs from the uninterrupted one"
    dfit 3 "$work/big.npy" "$work/resumed3.json" "${opts[@]}"
    cmp -s "$work/straight.json" "$work/resumed3.json" || fail "the HMM resume on 3 ranks differs"
    echo "ok: the resumed HMM fit is byte-identical to the uninterrupted one (on 2 and 3 ranks)"
    # Another fit (other states) refuses the checkpoint, naming both.
    "${mpi[@]}" -n 2 "$cuem" fit "$work/big.npy" --distributed -o "$work/other.json" \
      --model hmm --lengths "$work/len.txt" -k 3 --covariance diag --max-iter 600 --tol 0 --segment-rows 4096 \
      --checkpoint "$work/fit.ckpt" >/dev/null 2>"$work/err.txt"
    code=$?
    [ "$code" -eq 2 ] && grep -q "belongs to another fit" "$work/err.txt" ||
      { cat "$work/err.txt"; fail "another HMM fit's checkpoint: exit $code"; }
    [ ! -e "$work/other.json" ] || fail "a refused fit wrote a model"
    echo "ok: another fit's checkpoint is refused"
    ;;
  shards)
    gen 3000 4 5 "$work/whole.npy"
    # Rows 0-699, 700-2199 and 2200-2999 as three .npy files (plain Python: no NumPy here).
    python3 - "$work/whole.npy" "$work" <<'PY' || fail "could not split the file"
import ast, struct, sys
raw = open(sys.argv[1], "rb").read()
hlen = struct.unpack("<H", raw[8:10])[0]
header = ast.literal_eval(raw[10:10 + hlen].decode())
n, d = header["shape"]
item = int(header["descr"][2:])
body = raw[10 + hlen:]
def save(path, rows, cols, data):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }" % (header["descr"], rows, cols)
    h += " " * (63 - (10 + len(h)) % 64) + "\n"
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + data)
for name, (a, b) in {"part-a": (0, 700), "part-b": (700, 2200), "part-c": (2200, n)}.items():
    save(f"{sys.argv[2]}/{name}.npy", b - a, d, body[a * d * item:b * d * item])
save(f"{sys.argv[2]}/narrow.npy", 10, d - 1, body[:10 * (d - 1) * item])
PY
    opts=(-k 5 --covariance full --max-iter 6 --tol 0 --segment-rows 256)
    dfit 2 "$work/whole.npy" "$work/whole.json" "${opts[@]}"
    list="$work/part-a.npy,$work/part-b.npy,$work/part-c.npy"
    for r in 1 2 3 4; do dfit "$r" "$list" "$work/list_$r.json" "${opts[@]}"; done
    for r in 2 3 4; do cmp -s "$work/list_1.json" "$work/list_$r.json" || fail "shards: R = $r differs from R = 1"; done
    close "$work/list_1.json" "$work/whole.json" 0 || fail "the shards' model is not the single file's, bitwise"
    dfit 3 "$work/part-*.npy" "$work/glob.json" "${opts[@]}"
    close "$work/glob.json" "$work/whole.json" 0 || fail "the glob's model is not the single file's, bitwise"
    echo "ok: shards (list and glob) give the single file's model bitwise for R = 1..4"
    "${mpi[@]}" -n 2 "$cuem" fit "$work/part-a.npy,$work/narrow.npy" --distributed -k 2 >/dev/null 2>"$work/err.txt"
    code=$?
    cat "$work/err.txt"
    [ "$code" -eq 3 ] || fail "shards of different widths: exit code $code, expected 3"
    grep -q "narrow.npy has 3 columns" "$work/err.txt" || fail "the message does not name the narrow shard"
    "${mpi[@]}" -n 2 "$cuem" fit "$work/none-*.npy" --distributed -k 2 >/dev/null 2>"$work/err.txt"
    code=$?
    [ "$code" -eq 3 ] && grep -q "no file matches" "$work/err.txt" || fail "an unmatched glob: exit $code, $(cat "$work/err.txt")"
    ;;
  weights)
    gen 2000 3 4 "$work/w.npy"
    # One weight per row, 0 to 3 (a quarter of the rows absent), as a 1-D float64 .npy.
    python3 - "$work/weights.npy" 2000 <<'PY' || fail "could not write the weights"
import struct, sys
n = int(sys.argv[2])
h = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }" % n
h += " " * (63 - (10 + len(h)) % 64) + "\n"
body = b"".join(struct.pack("<d", float((i * 7919) % 4)) for i in range(n))
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + body)
PY
    same_for_all_ranks "$work/w.npy" -k 4 --weights "$work/weights.npy" --max-iter 6 --tol 0 --segment-rows 256
    same_for_all_ranks "$work/w.npy" -k 4 --weights "$work/weights.npy" --init k-means++ --covariance diag \
      --max-iter 4 --tol 0 --segment-rows 200
    same_for_all_ranks "$work/w.npy" -k 3 --weights "$work/weights.npy" --init random_from_data --n-init 2 \
      --covariance tied --max-iter 4 --tol 0 --segment-rows 300
    "${mpi[@]}" -n 2 "$cuem" fit "$work/w.npy" --distributed -q --json -k 4 --weights "$work/weights.npy" \
      --segment-rows 256 >"$work/d.json" || fail "distributed --json fit failed"
    "$cuem" fit "$work/w.npy" -q --json -k 4 --weights "$work/weights.npy" >"$work/p.json" || fail "plain fit failed"
    python3 - "$work/d.json" "$work/p.json" <<'PY' || fail "sum_weights or bic differ"
import json, sys
d, p = (json.load(open(f)) for f in sys.argv[1:3])
assert d["sum_weights"] == p["sum_weights"] == 3000.0, (d["sum_weights"], p["sum_weights"])
assert abs(d["bic"] - p["bic"]) <= 1e-8 * abs(p["bic"]), (d["bic"], p["bic"])
print("ok: sum_weights and bic agree with the plain weighted fit")
PY
    ;;
  *) fail "unknown case $case_name" ;;
esac
