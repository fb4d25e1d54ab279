#!/usr/bin/env python3
"""One EM iteration on config B with 10% of the entries missing (MCAR) against the
complete-data iteration (issue 15's target: at most 3x), on this machine.

  scripts/bench_missing.py BENCH_CPU [--rounds R] [--min-time S] [--suffix S]

Runs bench_cpu's cpu_fit_iteration/B, cpu_fit_iteration_missing10/B and, for reference,
cpu_em_iteration/B (the primitives' iteration without the fit around it) R times, each in
its own process, the order rotating every round so that drift in the machine's load falls
on all of them. Writes the medians, every value, the ratio missing / complete per round and
its median, and the load averages to bench/results/<machine>/<date>_missing<suffix>.{json,md}
(OMP_NUM_THREADS, when set, is recorded: --suffix _1thread for a run with it at 1)."""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_ab import machine_name  # noqa: E402  the folder naming every bench/results run shares

BENCHES = ["cpu_fit_iteration/B", "cpu_fit_iteration_missing10/B", "cpu_em_iteration/B"]


def run_one(binary, name, min_time):
    out = subprocess.run([binary, f"--benchmark_filter=^{name}/", f"--benchmark_min_time={min_time}",
                          "--benchmark_format=json"], check=True, capture_output=True, text=True).stdout
    b = json.loads(out)["benchmarks"][0]
    scale = {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0}[b["time_unit"]]
    row = {"seconds": b["real_time"] * scale, "iterations": b["iterations"]}
    for key in ("setup_s", "incomplete_rows", "patterns"):
        if key in b:
            row[key] = b[key]
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", default="2")
    ap.add_argument("--suffix", default="")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src", "include", "kernels", "bench"],
                           cwd=root).returncode != 0
    commit += "+dirty" if dirty else ""
    load_start = os.getloadavg()
    runs = {n: [] for n in BENCHES}
    ratios = []
    for r in range(a.rounds):
        order = BENCHES[r % len(BENCHES):] + BENCHES[:r % len(BENCHES)]
        this = {}
        for n in order:
            this[n] = run_one(a.binary, n, a.min_time)
            this[n]["load_1min"] = os.getloadavg()[0]
            runs[n].append(this[n])
        ratios.append(this[BENCHES[1]]["seconds"] / this[BENCHES[0]]["seconds"])
        print(f"round {r + 1}: " + ", ".join(f"{n} {this[n]['seconds'] * 1e3:.1f} ms" for n in BENCHES) +
              f", ratio {ratios[-1]:.2f}", flush=True)
    load_end = os.getloadavg()
    med = {n: statistics.median(x["seconds"] for x in runs[n]) for n in BENCHES}
    setup = {n: statistics.median(x["setup_s"] for x in runs[n]) for n in BENCHES[:2]}
    doc = {"schema": "cuem-bench-missing/1", "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "commit": commit, "rounds": a.rounds, "min_time": a.min_time, "logical_cpus": os.cpu_count(),
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
           "load_at_start": load_start, "load_at_end": load_end, "median_seconds": med,
           "median_setup_seconds": setup, "ratio_missing_to_complete_per_round": ratios,
           "ratio_missing_to_complete_median": statistics.median(ratios),
           "ratio_of_medians": med[BENCHES[1]] / med[BENCHES[0]], "runs": runs}
    folder = os.path.join(root, "bench", "results", machine_name())
    os.makedirs(folder, exist_ok=True)
    stem = datetime.date.today().isoformat() + "_missing" + a.suffix
    with open(os.path.join(folder, stem + ".json"), "w") as f:
        json.dump(doc, f, indent=1)
    m = runs[BENCHES[1]][-1]
    lines = [f"# Missing data on the CPU: one iteration on B at 10% MCAR against complete data ({commit})", "",
             f"bench_cpu, {a.rounds} rounds, each benchmark in its own process, the order rotating; medians; "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset (2 threads)')}. "
             f"Machine {machine_name()}, {os.cpu_count()} logical CPUs, shared and loaded: load average "
             f"{load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f} at the start, "
             f"{load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f} at the end.", "",
             "| benchmark | median (ms) | all rounds (ms) | setup per fit (ms) |", "|---|---:|---|---:|"]
    for n in BENCHES:
        s = f"{setup[n] * 1e3:.1f}" if n in setup else ""
        lines.append(f"| {n} | {med[n] * 1e3:.1f} | " + ", ".join(f"{x['seconds'] * 1e3:.1f}" for x in runs[n]) +
                     f" | {s} |")
    lines += ["", f"Missing / complete (cpu_fit_iteration): median of the per-round ratios "
                  f"**{statistics.median(ratios):.2f}x** (rounds: " + ", ".join(f"{x:.2f}" for x in ratios) +
              f"); ratio of the medians {med[BENCHES[1]] / med[BENCHES[0]]:.2f}x. Target: at most 3x.",
              f"Masked data: {int(m.get('incomplete_rows', 0))} incomplete rows of 200000, "
              f"{int(m.get('patterns', 0))} patterns."]
    with open(os.path.join(folder, stem + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {os.path.relpath(os.path.join(folder, stem), root)}.{{json,md}}")


if __name__ == "__main__":
    main()
