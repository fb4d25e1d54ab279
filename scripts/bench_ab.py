#!/usr/bin/env python3
"""Summarises scripts/bench_ab.sh's timings: the median of each side per benchmark and the
ratio head / base (below 1: head is faster), into bench/results/<machine>/<date>_engine_ab.*.

Input lines: SIDE KIND NAME SECONDS (SIDE base or head)."""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def machine_name():
    try:
        import compare_peers  # the folder naming every bench/results run shares

        return compare_peers.machine_slug(compare_peers.cpu_description())
    except Exception:  # noqa: BLE001 - a name is all that is needed
        return os.uname().nodename


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--base", required=True)
    ap.add_argument("--head", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()

    times = {}
    for line in open(a.results):
        side, kind, name, seconds = line.split()
        times.setdefault((kind, name), {"base": [], "head": []})[side].append(float(seconds))
    rows = []
    for (kind, name), t in sorted(times.items()):
        if not t["base"] or not t["head"]:
            continue
        b, h = statistics.median(t["base"]), statistics.median(t["head"])
        rows.append({"kind": kind, "name": name, "base_s": b, "head_s": h, "ratio": h / b,
                     "base_all": t["base"], "head_all": t["head"]})

    load = os.getloadavg()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder = os.path.join(root, "bench", "results", machine_name())
    os.makedirs(folder, exist_ok=True)
    stem = datetime.date.today().isoformat() + "_engine_ab" + ("_quick" if a.quick else "")
    doc = {"schema": "cuem-bench-ab/1", "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "base": a.base, "head": a.head, "rounds": a.rounds, "quick": a.quick,
           "load_at_end": load, "logical_cpus": os.cpu_count(), "rows": rows}
    with open(os.path.join(folder, stem + ".json"), "w") as f:
        json.dump(doc, f, indent=1)
    lines = [f"# CPU side by side: {a.head} (head) against {a.base} (base)", "",
             f"{a.rounds} rounds alternating the order, medians; ratio = head / base (below 1: head faster). "
             f"Machine {machine_name()}, {os.cpu_count()} logical CPUs, load average at the end "
             f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}." + (" Quick: N / 20, a pipeline check." if a.quick else ""),
             "", "| benchmark | base (s) | head (s) | ratio |", "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['base_s']:.4g} | {r['head_s']:.4g} | {r['ratio']:.3f} |")
    with open(os.path.join(folder, stem + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {os.path.relpath(os.path.join(folder, stem), root)}.{{json,md}}")


if __name__ == "__main__":
    main()
