#!/usr/bin/env python3
"""Incremental, stepwise and out-of-core EM against batch EM (issue 18; docs/ONLINE.md).

Speed (default): for each config (A-D of scripts/compare_peers.py and L, the issue's
10^8 x 8, K = 16 full; each scaled by --scale), the
wall time each method needs to bring the mean log-likelihood within --rtol (1e-4)
relative of the batch optimum's (batch EM from the same start at --ref-tol, its remaining
gap estimated from its last step and linear rate and recorded; each method runs to a tol
of a thousandth of the margin, and with --repeats the runs interleave):
  batch        cuem fit --trace            (the trace's seconds up to the first bound in reach)
  incr-B       cuem fit --incremental-blocks B --trace  (the free energy, a lower bound of
               the log-likelihood, so the time is an upper bound of the time to target)
  incr-B-inc   the same with --first-pass incremental (--first-passes picks which run); the
               first pass's entries before its last bound fewer blocks and are not read
  stepwise     GaussianMixture.partial_fit over shuffled batches of --batch rows, the
               model scored after each epoch (scoring not timed), up to --epochs epochs
All on the CPU (float64). The machine is shared: every result records the load average.

Out of core (--out-of-core N): `cuem generate --dtype float32` writes an N x 8 float32
.npy file in chunks (memory: a 4-byte-a-row permutation and a chunk), `cuem fit
--chunk-rows` fits it under /usr/bin/time, and the result has both peak resident memories
and the points per second per iteration (the trace's iterations after the first) against
the in-memory rate on a sample that fits (--sample rows, the file's first); the files are
deleted afterwards. N = 10^9 is the 32 GB case.

  python3 scripts/bench_online.py --configs A,B --scale 0.1 --save bench/results/online.json
  python3 scripts/bench_online.py --out-of-core 100000000 --chunk-rows 1000000
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from compare_peers import CONFIGS as PEER_CONFIGS  # noqa: E402  (the shared config definitions)

# A-D as compare_peers.py has them, and L: the large case, 10^8 x 8, K = 16.
CONFIGS = dict(PEER_CONFIGS, L=dict(n=100_000_000, d=8, k=16, cov="full"))


def cuem_binary(build):
    path = os.path.join(ROOT, build, "cuem")
    if not os.path.exists(path):
        sys.exit(f"{path} not found: build first (scripts/build.sh)")
    return path


def mixture_data(n, d, k, seed, chunk=10_000_000):
    """n points from a random mixture of k Gaussians in d dimensions (means spread 4
    standard deviations), float64, shuffled. Written in chunks of rows into one array, so
    that memory is the result plus a chunk (10^8 x 8 is 6.4 GB); the draws are in the
    same order as one chunk's."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 4.0 / np.sqrt(d) * 2, (k, d))
    labels = rng.integers(0, k, n)
    scales = rng.uniform(0.5, 1.5, (k, d))
    X = np.empty((n, d))
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        X[s:e] = rng.normal(size=(e - s, d))
        X[s:e] *= scales[labels[s:e]]
        X[s:e] += means[labels[s:e]]
    return X


def read_trace(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [(float(r["mean_log_likelihood"]), float(r["seconds"])) for r in rows]


def first_pass_entries(blocks, first_pass):
    """Trace entries of the first pass: one for a full first pass (and batch EM), B for an
    incremental one (whose entries before the last bound only the blocks seen so far)."""
    return blocks if first_pass == "incremental" else 1


def first_in_reach(trace, target, blocks, first_pass):
    """Index of the first entry whose bound covers every block and reaches the target."""
    for i in range(first_pass_entries(blocks, first_pass) - 1, len(trace)):
        if trace[i][0] >= target:
            return i
    return None


def time_to_target(trace, target, blocks=1, first_pass="full"):
    i = first_in_reach(trace, target, blocks, first_pass)
    return None if i is None else sum(s for _, s in trace[: i + 1])


def passes_to_target(trace, target, blocks, first_pass="full"):
    """Passes over the data up to the first bound in reach (machine-independent): the trace
    of incremental EM with B blocks has a full E-step (or B steps of an incremental first
    pass), then one entry per block step."""
    i = first_in_reach(trace, target, blocks, first_pass)
    if i is None:
        return None
    return 1 + i // blocks if first_pass == "incremental" else 1 + (i + blocks - 1) // blocks


def data_passes_to_target(trace, target, blocks, first_pass="full"):
    """Passes over the data up to the first bound in reach, a block step counting 1/B."""
    i = first_in_reach(trace, target, blocks, first_pass)
    if i is None:
        return None
    return (i + 1) / blocks if first_pass == "incremental" else 1 + i / blocks


def seconds_per_pass(trace, blocks, first_pass="full"):
    """Mean seconds of a pass after the first."""
    later = [s for _, s in trace[first_pass_entries(blocks, first_pass):]]
    return sum(later) / (len(later) / blocks) if later else None


def run_cli(binary, args, env=None):
    out = subprocess.run([binary, "-q", "--json", *args], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def save(args, results):
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"machine": os.uname().nodename, "cpus": os.cpu_count(), "results": results}, f, indent=1)


def part_first_pass(binary, common, extra, blocks, part_steps, target, data, tmp, env):
    """The incremental first pass's parameters part-way, scored: for each S in part_steps
    (at most B), `--max-block-steps S` stops after S block steps with the parameters of the
    last M-step; `cuem score` (not timed) gives their mean log-likelihood, which the trace
    cannot (its bound covers the blocks seen so far). Returns each S's EM seconds (the
    trace's, as time_to_target counts them) and score, and the first S at the target."""
    rows, reached = [], None
    for S in sorted(v for v in part_steps if 0 < v <= blocks):
        trace = os.path.join(tmp, f"part{S}.csv")
        model = os.path.join(tmp, f"part{S}.json")
        run_cli(binary, [*common, *extra, "--max-block-steps", str(S), "--trace", trace, "-o", model], env)
        seconds = sum(t for _, t in read_trace(trace))
        score = run_cli(binary, ["score", model, data], env)["mean_log_likelihood"]
        rows.append({"steps": S, "data_passes": S / blocks, "seconds": seconds, "score": score})
        if reached is None and score >= target:
            reached = rows[-1]
    return {"steps": rows, "first_at_target": reached}


def speed(args):
    binary = cuem_binary(args.build)
    # OpenMP's wait policy for every method alike: on a shared, oversubscribed machine the
    # default spin-waits of the threads between parallel regions cost more than the work of
    # short ones (a block step's), and they cost batch EM too.
    env = dict(os.environ)
    if args.wait_policy:
        env["OMP_WAIT_POLICY"] = args.wait_policy
    else:
        env.pop("OMP_WAIT_POLICY", None)
    results = []
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        n = max(int(cfg["n"] * args.scale), 20 * cfg["k"])
        d, k, cov = cfg["d"], cfg["k"], cfg["cov"]
        X = mixture_data(n, d, k, seed=7)
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "x.npy")
            np.save(data, X)
            if args.no_stepwise:
                del X  # only stepwise EM reads it again
            common = ["fit", data, "-k", str(k), "--covariance", cov, "--seed", "1", "--device", "cpu",
                      "--precision", "float64", "--threads", str(args.threads)]
            # The reference optimum: batch EM until its remaining gap, estimated from the last
            # step and the linear rate r as step * r / (1 - r), is below --ref-rtol relative.
            ref_trace = os.path.join(tmp, "ref.csv")
            ref = run_cli(binary, [*common, "--tol", str(args.ref_tol), "--max-iter", str(args.ref_max_iter),
                                   "--trace", ref_trace], env)
            optimum = ref["lower_bound"]
            values = [v for v, _ in read_trace(ref_trace)]
            last_step = values[-1] - values[-2] if len(values) > 1 else float("inf")
            rate = ref.get("convergence_rate")
            gap = last_step * rate / (1.0 - rate) if rate is not None and 0 < rate < 1 else float("inf")
            target = optimum - args.rtol * abs(optimum)
            # Each method stops once a pass gains under a thousandth of the margin: past the
            # target unless its rate exceeds 0.999 (then it is reported as not reached).
            method_tol = 1e-3 * args.rtol * abs(optimum)
            entry = {"config": name, "n": n, "d": d, "k": k, "covariance_type": cov, "optimum": optimum,
                     "reference_converged": ref["converged"], "reference_passes": ref["n_iter"],
                     "reference_tol": args.ref_tol, "reference_rate": rate,
                     "reference_gap_estimate_relative": gap / abs(optimum), "method_tol": method_tol,
                     "target": target, "omp_wait_policy": args.wait_policy or "default",
                     "load_before": os.getloadavg()[0], "methods": {}}
            for repeat in range(args.repeats):
                # Interleaved on a shared machine: every repeat runs each method once, the order
                # reversed every other repeat; the fastest time of each is kept.
                order = [("batch", 1, "full", [])]
                for b in args.blocks:
                    for first in args.first_passes:
                        order.append((f"incr-{b}" + ("-inc" if first == "incremental" else ""), b, first,
                                      ["--incremental-blocks", str(b), "--first-pass", first]))
                for label, blocks, first, extra in order[::-1] if repeat % 2 else order:
                    trace = os.path.join(tmp, f"{label}.csv")
                    t0 = time.perf_counter()
                    out = run_cli(binary, [*common, *extra, "--tol", str(method_tol), "--max-iter",
                                           str(args.max_iter), "--trace", trace], env)
                    wall = time.perf_counter() - t0
                    steps = read_trace(trace)
                    head = first_pass_entries(blocks, first)
                    got = {"seconds_to_target": time_to_target(steps, target, blocks, first),
                           "passes": out["n_iter"], "first_pass": first,
                           "passes_to_target": passes_to_target(steps, target, blocks, first),
                           "data_passes_to_target": data_passes_to_target(steps, target, blocks, first),
                           "seconds_per_pass": seconds_per_pass(steps, blocks, first),
                           "first_pass_seconds": sum(s for _, s in steps[:head]),
                           "wall_total": wall, "final_bound": out["lower_bound"], "load": os.getloadavg()[0]}
                    if first == "incremental" and args.part_steps:
                        got["part_first_pass"] = part_first_pass(binary, common, extra, blocks, args.part_steps,
                                                                 target, data, tmp, env)
                    best = entry["methods"].get(label)
                    if best is None or (got["seconds_to_target"] is not None and
                                        (best["seconds_to_target"] is None
                                         or got["seconds_to_target"] < best["seconds_to_target"])):
                        entry["methods"][label] = got
            if not args.no_stepwise:
                import cuem  # Stepwise EM in Python (the same library); k-means start on the first batch.

                gm = cuem.GaussianMixture(k, covariance_type=cov, random_state=1, device="cpu", precision="float64",
                                          learning_decay=args.decay)
                rng = np.random.default_rng(3)
                spent, reached = 0.0, None
                for epoch in range(args.epochs):
                    order = rng.permutation(n)
                    t0 = time.perf_counter()
                    for s in range(0, n, args.batch):
                        gm.partial_fit(X[order[s:s + args.batch]])
                    spent += time.perf_counter() - t0
                    if gm.score(X) >= target:
                        reached = spent
                        break
                entry["methods"]["stepwise"] = {"seconds_to_target": reached, "epochs": epoch + 1,
                                                "final_score": gm.score(X), "batch": args.batch,
                                                "learning_decay": args.decay}
            entry["load_after"] = os.getloadavg()[0]
        results.append(entry)
        save(args, results)  # after every config: a long run stopped half-way keeps what it measured
        row = "  ".join((f"{m} {v['seconds_to_target']:.3g}s" if v["seconds_to_target"] is not None else f"{m} -") +
                        (f" ({v['passes_to_target']} passes, {v['seconds_per_pass']:.3g} s/pass)"
                         if v.get("passes_to_target") else "")
                        for m, v in entry["methods"].items())
        print(f"{name} n={n} d={d} k={k} {cov}: {row}  (load {entry['load_before']:.1f})", flush=True)
        for m, v in entry["methods"].items():
            part = v.get("part_first_pass")
            if part:
                print(f"  {m} part-way: " + ", ".join(f"{r['steps']} steps {r['seconds']:.3g}s {r['score']:.8g}"
                                                       for r in part["steps"]), flush=True)
    return results


def timed(binary, argv):
    """Runs cuem under /usr/bin/time: (stdout, wall seconds, peak RSS in bytes)."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", binary, *argv], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"cuem {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout, wall, int(proc.stderr.strip().splitlines()[-1]) * 1024


def iteration_seconds(trace_path):
    """Mean seconds of the trace's iterations after the first (the first includes the start)."""
    seconds = [s for _, s in read_trace(trace_path)]
    later = seconds[1:] or seconds
    return sum(later) / len(later)


def out_of_core(args):
    binary = cuem_binary(args.build)
    n, d, k = args.out_of_core, 8, args.k
    folder = args.folder or tempfile.gettempdir()
    path = os.path.join(folder, f"cuem_ooc_{os.getpid()}.npy")
    sample = os.path.join(folder, f"cuem_ooc_sample_{os.getpid()}.npy")
    try:
        # The streaming generator: float32 written in chunks, memory a permutation and a chunk.
        _, gen_wall, gen_rss = timed(binary, ["-q", "generate", "-n", str(n), "-d", str(d), "-k", str(k),
                                              "--covariance", "diag", "--seed", "1", "--dtype", "float32",
                                              "-o", path])
        size = os.path.getsize(path)
        print(f"generated {size} bytes in {gen_wall:.0f} s, peak RSS {gen_rss / 2**20:.0f} MiB", flush=True)
        args_fit = ["-k", str(k), "--covariance", "diag", "--max-iter", str(args.max_iter), "--tol", "0",
                    "--seed", "1", "--threads", str(args.threads), "--device", "cpu", "--precision", "float64"]
        trace = os.path.join(folder, f"cuem_ooc_trace_{os.getpid()}.csv")
        stdout, wall, peak = timed(binary, ["-q", "--json", "fit", path, *args_fit, "--chunk-rows",
                                            str(args.chunk_rows), "--trace", trace])
        out = json.loads(stdout)
        per_iter = iteration_seconds(trace)
        # In memory, on a sample that fits: its first rows, the same command without --chunk-rows.
        np.save(sample, np.load(path, mmap_mode="r")[: args.sample])
        mem_out, mem_wall, mem_peak = timed(binary, ["-q", "--json", "fit", sample, *args_fit, "--trace", trace])
        mem_per_iter = iteration_seconds(trace)
        os.remove(trace)
        result = {"n": n, "d": d, "k": k, "covariance_type": "diag", "file_bytes": size,
                  "generate_seconds": gen_wall, "generate_peak_rss_bytes": gen_rss,
                  "chunk_rows": args.chunk_rows, "fit_iterations": out["n_iter"], "fit_wall": wall,
                  "peak_rss_bytes": peak, "seconds_per_iteration": per_iter,
                  "points_per_s_per_iter": n / per_iter,
                  "in_memory_sample": args.sample, "in_memory_peak_rss_bytes": mem_peak,
                  "in_memory_seconds_per_iteration": mem_per_iter,
                  "in_memory_points_per_s_per_iter": args.sample / mem_per_iter,
                  "threads": args.threads, "load": os.getloadavg()[0]}
        print(json.dumps(result, indent=1), flush=True)
        return [result]
    finally:
        for p in (path, sample):
            if os.path.exists(p):
                os.remove(p)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="A,B,C,D")
    p.add_argument("--scale", type=float, default=1.0, help="multiply each config's n by this")
    p.add_argument("--blocks", type=lambda s: [int(v) for v in s.split(",")], default=[10, 100])
    p.add_argument("--first-passes", type=lambda s: s.split(","), default=["full", "incremental"],
                   help="incremental EM's first passes to run (full, incremental or both)")
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--max-iter", type=int, default=2000)
    p.add_argument("--ref-max-iter", type=int, default=5000, help="passes of the reference fit")
    p.add_argument("--ref-tol", type=float, default=1e-9,
                   help="the reference fit's tol (its estimated remaining gap is recorded)")
    p.add_argument("--repeats", type=int, default=1, help="runs of each cuem method, interleaved")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=10000)
    p.add_argument("--decay", type=float, default=0.6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--wait-policy", default="PASSIVE",
                   help="OMP_WAIT_POLICY of the cuem runs ('' for the environment's own); recorded")
    p.add_argument("--no-stepwise", action="store_true", help="skip stepwise EM")
    p.add_argument("--part-steps", type=lambda s: [int(v) for v in s.split(",")], default=[],
                   help="block steps S (e.g. 3,5,7,10) at which the incremental first pass's parameters are "
                        "scored: time to target part-way through the first pass, which the free energy cannot show")
    p.add_argument("--build", default="build-cpu")
    p.add_argument("--out-of-core", type=int, default=0, help="rows of the out-of-core file (0: the speed runs)")
    p.add_argument("--chunk-rows", type=int, default=1 << 20)
    p.add_argument("--k", type=int, default=16, help="components of the out-of-core fit")
    p.add_argument("--sample", type=int, default=10_000_000)
    p.add_argument("--folder", default=None, help="where the out-of-core file goes (default: the temp folder)")
    p.add_argument("--save", default=None, help="write the results as JSON here")
    args = p.parse_args()
    results = out_of_core(args) if args.out_of_core else speed(args)
    save(args, results)


if __name__ == "__main__":
    main()
