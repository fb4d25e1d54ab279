#!/usr/bin/env python3
"""Whole fits side by side: load a .npy file, start, iterate to convergence, write the model.

compare_peers.py times iterations from one shared start. A user pays for more: reading the
data, the start (k-means), the iterations to convergence and writing the model. This
script times that whole path for each tool on the same .npy file of each config
(compare_peers.py's configs A-E and data), with each tool's own default start:

  cuem      `cuem fit DATA.npy -k K --covariance C --tol T --max-iter M -o model.json`:
            the process's wall time; its --trace gives the iterations' share
  sklearn   GaussianMixture(init_params='kmeans', tol=T, max_iter=M): np.load, fit, and
            the parameters written as JSON, timed in the worker (interpreter start and
            imports left out)
  onedal    daal4py.em_gmm_init then em_gmm (accuracyThreshold = T * N: oneDAL stops on
            the change of the summed log-likelihood, scikit-learn and cuem on its mean),
            np.load to JSON written, timed the same way

The tools start differently (cuem's k-means, scikit-learn's k-means, oneDAL's random
trials), so they need different numbers of iterations: the table gives each tool's
iterations and final mean log-likelihood beside its time. Threads: 2 everywhere (--threads).

    python3 scripts/compare_whole_fit.py --cuem build/cuem --onedal-python /path/to/python
    python3 scripts/compare_whole_fit.py --configs A,E --save

Exit status 0, or 2 on a setup error.
"""

import argparse
import datetime
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
import compare_peers as peers  # noqa: E402  (the configs, their data, the machine description)


def error_reason(message):
    """A failed run's reason in one line: the exception's line of a worker's traceback and
    the details the library printed after it (oneDAL names the component), else the end."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if "Error:" in lines[i] or "Exception:" in lines[i]:
            reason = "; ".join([lines[i]] + [ln for ln in lines[i + 1:] if ln != "Details:"])
            return reason.replace("|", "/")[:160]
    return (lines[-1] if lines else "no message").replace("|", "/")[:160]


def sklearn_worker(spec):
    from sklearn.mixture import GaussianMixture

    t0 = time.perf_counter()
    x = np.load(spec["data"])
    t_load = time.perf_counter() - t0
    gm = GaussianMixture(n_components=spec["k"], covariance_type=spec["cov"], tol=spec["tol"],
                         max_iter=spec["max_iter"], init_params="kmeans", random_state=0)
    gm.fit(x)
    with open(spec["model"], "w") as f:
        json.dump({"weights": gm.weights_.tolist(), "means": gm.means_.tolist(),
                   "covariances": gm.covariances_.tolist()}, f)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "load": t_load, "n_iter": int(gm.n_iter_), "lower_bound": float(gm.lower_bound_)}


def onedal_worker(spec):
    import daal4py

    t0 = time.perf_counter()
    x = np.load(spec["data"])
    t_load = time.perf_counter() - t0
    n, k = x.shape[0], spec["k"]
    storage = "full" if spec["cov"] == "full" else "diagonal"
    init = daal4py.em_gmm_init(nComponents=k, covarianceStorage=storage, fptype="double").compute(x)
    t_init = time.perf_counter() - t0 - t_load
    r = daal4py.em_gmm(nComponents=k, maxIterations=spec["max_iter"], accuracyThreshold=spec["tol"] * n,
                       regularizationFactor=1e-6, covarianceStorage=storage,
                       fptype="double").compute(x, init.weights, init.means, init.covariances)
    with open(spec["model"], "w") as f:
        json.dump({"weights": np.ravel(r.weights).tolist(), "means": np.asarray(r.means).tolist(),
                   "covariances": [np.asarray(c).tolist() for c in r.covariances]}, f)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "load": t_load, "init": t_init, "n_iter": int(np.ravel(r.nIterations)[0]),
            "lower_bound": float(np.ravel(r.goalFunction)[0]) / n}


def run_worker(python, name, spec, threads, tmp, timeout):
    spec_path = os.path.join(tmp, f"{name}_spec.json")
    out = os.path.join(tmp, f"{name}_out.json")
    with open(spec_path, "w") as f:
        json.dump(dict(spec, out=out), f)
    proc = subprocess.run([python, os.path.abspath(__file__), f"--{name}-worker", spec_path],
                          env=peers.child_env(threads, for_numpy=True), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} worker exited {proc.returncode}: {proc.stderr.strip()[-600:]}")
    with open(out) as f:
        return json.load(f)


def run_cuem(exe, spec, threads, tmp, timeout):
    trace = os.path.join(tmp, "cuem_trace.csv")
    cmd = [exe, "fit", spec["data"], "-k", str(spec["k"]), "--covariance", spec["cov"], "--tol", repr(spec["tol"]),
           "--max-iter", str(spec["max_iter"]), "--threads", str(threads), "-o", spec["model"], "--trace", trace,
           "--json", "-q"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=peers.child_env(threads), capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cuem fit exited {proc.returncode}: {proc.stderr.strip()[-600:]}")
    summary = json.loads(proc.stdout)
    iterations = 0.0
    with open(trace) as f:
        next(f)
        for line in f:
            iterations += float(line.split(",")[3])
    return {"seconds": seconds, "iterations_seconds": iterations, "n_iter": int(summary["n_iter"]),
            "lower_bound": float(summary["lower_bound"])}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    for name, fn in (("sklearn", sklearn_worker), ("onedal", onedal_worker)):
        if argv[:1] == [f"--{name}-worker"]:
            with open(argv[1]) as f:
                spec = json.load(f)
            with open(spec["out"], "w") as f:
                json.dump(fn(spec), f)
            return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cuem", default=os.path.join(ROOT, "build", "cuem"), help="the cuem executable (default build/cuem)")
    p.add_argument("--configs", default="A,B,C,D,E")
    p.add_argument("--tools", default="cuem,sklearn,onedal")
    p.add_argument("--onedal-python", default=sys.executable, help="a Python with daal4py (default: this one)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tol", type=float, default=1e-3, help="convergence threshold on the mean log-likelihood (default 1e-3)")
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest counts")
    p.add_argument("--seed", type=int, default=20240505)
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--save", action="store_true", help="write bench/results/<machine>/<date>_whole_fit.{json,md}")
    args = p.parse_args(argv)
    tools = args.tools.split(",")
    if "cuem" in tools and not os.access(args.cuem, os.X_OK):
        print(f"compare_whole_fit: no cuem executable at {args.cuem} (--cuem)", file=sys.stderr)
        return 2
    if "onedal" in tools:
        probe = subprocess.run([args.onedal_python, "-c", "import daal4py"], capture_output=True, text=True)
        if probe.returncode != 0:
            print(f"compare_whole_fit: onedal skipped: no daal4py in {args.onedal_python}", file=sys.stderr)
            tools.remove("onedal")
    results = []
    with tempfile.TemporaryDirectory(prefix="cuem_whole_") as tmp:
        for name in args.configs.split(","):
            cfg = peers.CONFIGS[name]
            x = peers.make_data(cfg, cfg["n"], args.seed)
            data = os.path.join(tmp, "data.npy")
            np.save(data, x)
            spec = dict(data=data, k=cfg["k"], cov=cfg["cov"], tol=args.tol, max_iter=args.max_iter,
                        model=os.path.join(tmp, "model.json"))
            entry = {"config": name, **cfg, "load_before": peers.loadavg(), "tools": {}}
            for _ in range(args.repeat):
                for tool in tools:
                    try:
                        if tool == "cuem":
                            r = run_cuem(args.cuem, spec, args.threads, tmp, args.timeout)
                        else:
                            python = args.onedal_python if tool == "onedal" else sys.executable
                            r = run_worker(python, tool, spec, args.threads, tmp, args.timeout)
                    except Exception as exc:  # reported in the table
                        entry["tools"][tool] = {"error": str(exc)}
                        continue
                    prev = entry["tools"].get(tool)
                    if prev is None or "error" in prev or r["seconds"] < prev["seconds"]:
                        entry["tools"][tool] = r
            results.append(entry)
            line = [f"{name}:"]
            for tool, r in entry["tools"].items():
                line.append(f"{tool} {r['seconds']:.3f} s ({r['n_iter']} it, {r['lower_bound']:.6f})" if "seconds" in r
                            else f"{tool} failed: {error_reason(r['error'])}")
            print("  ".join(line), flush=True)
    rows = ["| cfg | tool | whole fit s | iterations | s / iteration | outside the iterations s | final mean loglik |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for e in results:
        for tool, r in e["tools"].items():
            if "error" in r:
                rows.append(f"| {e['config']} | {tool} | failed: {error_reason(r['error'])} | | | | |")
                continue
            per = r.get("iterations_seconds")
            outside = r["seconds"] - per if per is not None else None
            per_iter = "" if per is None else f"{per / max(1, r['n_iter']):.4f}"
            outside_s = "" if outside is None else f"{outside:.3f}"
            rows.append(f"| {e['config']} | {tool} | {r['seconds']:.3f} | {r['n_iter']} | {per_iter} | {outside_s} | "
                        f"{r['lower_bound']:.6f} |")
    print("\n".join(rows))
    if args.save:
        desc = peers.cpu_description()
        folder = os.path.join(ROOT, "bench", "results", peers.machine_slug(desc))
        os.makedirs(folder, exist_ok=True)
        stem = peers.unused_stem(os.path.join(folder, f"{datetime.date.today().isoformat()}_whole_fit"))
        doc = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": desc,
               "cuem": peers.cuem_version(), "args": vars(args), "results": results, "load_after": peers.loadavg()}
        with open(stem + ".json", "w") as f:
            json.dump(doc, f, indent=1)
        with open(stem + ".md", "w") as f:
            f.write(f"# Whole fits side by side, {doc['date']}\n\n`python3 scripts/compare_whole_fit.py "
                    f"{' '.join(sys.argv[1:])}` on {desc['cpu_model']}, {args.threads} threads, tol {args.tol}, "
                    f"max_iter {args.max_iter}; load average before {results[0]['load_before'] if results else None}, "
                    f"after {doc['load_after']}.\n\n" + "\n".join(rows) + "\n")
        print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
