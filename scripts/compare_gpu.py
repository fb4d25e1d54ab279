#!/usr/bin/env python3
"""Side-by-side GPU comparison of cuem's CUDA backend (issue 5), for a GPU machine.

Every tool fits the same data from the same fixed initial parameters for the same number
of EM iterations, in one run:

  cuem-cuda   tests/tools/em_driver --device cuda (--driver), float32 (and float64 with
              --f64); seconds per iteration are the driver's own per-iteration times
              (every E-step ends in a stream synchronisation), median of iterations 2..
  sklearn-torch  sklearn.mixture.GaussianMixture with array_api_dispatch on torch CUDA
              tensors (float32), where the installed scikit-learn supports it (1.9:
              init_params 'random' or 'random_from_data'; with all *_init given no init
              runs); timed as (T(ITERS) - T(1)) / (ITERS - 1) with torch.cuda.synchronize
  sklearn-cpu sklearn on numpy float64, the CPU baseline (skipped above --cpu-limit points)
  cuem-cpu    with --cuem-cpu: em_driver --device cpu, cuem's float64 CPU path (the same limit)

The data, initial parameters and log-likelihood evaluator are scripts/compare_peers.py's
(K blobs of unit spread around N(0, 5^2 I) centres; K points as means, equal weights,
the data's covariance). A PyTorch GMM package (torchgmm) is not compared: the GPU image
has none and cannot fetch one. Every tool's final parameters are scored by that one float64
evaluator, and the gaps to cuem's are printed.

Configurations: issue 5's GPU-scale G1-G5 (G4 as spherical and diag) and A-E; --quick
divides every N by 20; --configs picks some. Results: a JSON file and a markdown summary
in --out (default: bench/results/<gpu>/<date>_gpu_peers.*), rewritten after every tool of
every configuration, so a run cut short (a device call's time limit) keeps what it did;
the JSON's "finished" is false until the last configuration is done.

--check (the ctest smoke test; exit status 1 when a check fails) holds every cuem row to
scikit-learn on the CPU (sklearn-cpu, float64, the same start and iterations), on both the
common evaluator's log-likelihood of the final parameters and the lower bound of the last
E-step, relative to scikit-learn's:
  cuem-cpu                   within 1e-9 (both float64; only summation order differs)
  cuem-cuda-f64              within 1e-9
  cuem-cuda (float32)        within 1e-5 (float32 points and per-block partial sums)
and, where no row can run, says exactly why: whether cuem was built with CUDA is given
(--cuda-built, from CMake) and whether the machine has a CUDA device is asked of the NVIDIA
driver (libcuda) directly, not of cuem; without one, the cuem-cuda row must be exactly the
error cuem documents for that case (em_driver exit 2 and its message).
"""
import argparse
import ctypes
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare_peers as cp  # noqa: E402  (data, initial parameters, evaluator)

CONFIGS = {
    "G1": dict(n=16_000_000, d=2, k=8, cov="full"),
    "G2": dict(n=4_000_000, d=32, k=64, cov="full"),
    "G3": dict(n=16_000_000, d=32, k=32, cov="diag"),
    "G4s": dict(n=1_000_000, d=128, k=1024, cov="spherical"),
    "G4d": dict(n=1_000_000, d=128, k=1024, cov="diag"),
    "G5": dict(n=100_000_000, d=1, k=4, cov="full"),
}
CONFIGS.update(cp.CONFIGS)


def initial_parameters(x, k, cov, seed):
    """compare_peers' start, with spherical as one variance per component."""
    if cov != "spherical":
        return cp.initial_parameters(x, k, cov, seed)
    w, means, covs, _ = cp.initial_parameters(x, k, "diag", seed)
    v = np.full(k, float(np.mean(covs[0])))
    return w, means, v, 1.0 / v


def score(x, weights, means, covs, cov):
    """The common float64 evaluator; spherical as diag with equal variances."""
    if cov == "spherical":
        covs = np.repeat(np.asarray(covs, dtype=np.float64).reshape(-1, 1), x.shape[1], axis=1)
        cov = "diag"
    return cp.mean_log_likelihood(x, weights, means, covs, cov)


class DriverError(RuntimeError):
    """em_driver's non-zero exit, with its status and message kept for --check."""

    def __init__(self, returncode, stderr):
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"em_driver exited {returncode}: {stderr.strip()[-500:]}")


def run_cuem(args, files, cfg, n, precision, tmp, device="cuda"):
    out = os.path.join(tmp, "cuem.txt")
    cmd = [args.driver, "--cov", cfg["cov"], "--k", str(cfg["k"]), "--d", str(cfg["d"]), "--n", str(n),
           "--data", files["data"], "--weights", files["weights"], "--means", files["means"],
           "--precisions", files["precisions"], "--tol", "0", "--reg", repr(args.reg),
           "--max-iter", str(args.iters), "--device", device, "--precision", precision, "--out", out]
    if os.path.exists(out):
        os.remove(out)  # never read a previous tool's result
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        raise DriverError(proc.returncode, proc.stderr)
    r = cp.read_arrays(out)
    per_iter = float(np.median(r["trace_seconds"][1:])) if r["trace_seconds"].size > 1 else float("nan")
    return dict(seconds=per_iter, lower_bound=float(r["lower_bound"][0]), weights=r["weights"], means=r["means"],
                covariances=r["covariances"])


def sklearn_fit(x, cfg, init, iters, reg, xp=None, device=None):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    w, m, _, p = init
    kw = dict(n_components=cfg["k"], covariance_type=cfg["cov"], tol=0.0, reg_covar=reg, max_iter=iters,
              init_params="random_from_data", weights_init=w, means_init=m, precisions_init=p)
    if xp is None:
        gm = GaussianMixture(**kw)
        t0 = time.perf_counter()
        with warnings.catch_warnings():  # a fixed number of iterations does not converge, by design
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(x)
        return time.perf_counter() - t0, gm
    import torch
    from sklearn import config_context

    to = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
    kw.update(weights_init=to(w), means_init=to(m), precisions_init=to(p))
    xt = to(x)
    with config_context(array_api_dispatch=True):
        gm = GaussianMixture(**kw)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(xt)
        torch.cuda.synchronize()
        return time.perf_counter() - t0, gm


def as_numpy(a):
    try:
        return a.detach().cpu().numpy().astype(np.float64)
    except AttributeError:
        return np.asarray(a, dtype=np.float64)


def fastest_fit(x, cfg, init, iters, reg, xp, device):
    """sklearn_fit, and where it is cheap (under half a second) the fastest of three runs:
    on a busy machine one run of a small fit can take longer than the whole difference
    run_sklearn takes between two of them."""
    t, gm = sklearn_fit(x, cfg, init, iters, reg, xp, device)
    if t < 0.5:
        for _ in range(2):
            t = min(t, sklearn_fit(x, cfg, init, iters, reg, xp, device)[0])
    return t, gm


def run_sklearn(x, cfg, init, args, torch_device=None):
    xp = "torch" if torch_device else None
    t_full, gm = fastest_fit(x, cfg, init, args.iters, args.reg, xp, torch_device)
    t_one, _ = fastest_fit(x, cfg, init, 1, args.reg, xp, torch_device)
    # Per iteration: the difference takes the fit's setup out; where noise still makes it
    # non-positive, the whole fit's time per iteration (setup included) stands instead.
    per_iter = (t_full - t_one) / (args.iters - 1)
    if not per_iter > 0:
        per_iter = t_full / args.iters
    return dict(seconds=per_iter, lower_bound=float(gm.lower_bound_), weights=as_numpy(gm.weights_),
                means=as_numpy(gm.means_), covariances=as_numpy(gm.covariances_))


def gpu_name():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30).stdout.strip().splitlines()
        return out[0] if out else "unknown GPU"
    except (OSError, subprocess.SubprocessError):
        return "unknown GPU"


def driver_devices():
    """(number of CUDA devices, why none) as the NVIDIA driver itself reports them, through
    libcuda and not through cuem, so that --check decides independently of the code it
    checks whether the cuem-cuda row may fail. `why` is None, 'no driver' or 'no device'."""
    lib = None
    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        return 0, "no driver"
    if lib.cuInit(0) != 0:
        return 0, "no device"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "no device"
    return count.value, None


# cuem's documented device errors (src/core/backend.cpp, kernels/device_info.cu), as em_driver
# prints them (exit status 2). The reason in parentheses follows from what the driver says.
NOT_BUILT = ("em_driver: cuem error: this cuem was built without CUDA; use device 'cpu' or 'auto', or rebuild "
             "with -DCUEM_WITH_CUDA=ON on a machine with nvcc.")
NO_DEVICE = "em_driver: cuem error: device 'cuda' was requested but no CUDA device is usable ({}). " \
            "Use device 'cpu' or 'auto'."
NO_DEVICE_REASONS = {"no driver": "no NVIDIA driver is installed",
                     "no device": "cudaErrorNoDevice: no CUDA-capable device is detected"}
# Relative tolerances of --check against sklearn-cpu (see the module docstring).
TOLERANCES = {"cuem-cpu": 1e-9, "cuem-cuda-f64": 1e-9, "cuem-cuda": 1e-5}


def expected_cuda_error(cuda_built, devices, why):
    """The exact error a cuem-cuda row must report, or None where it must run."""
    if not cuda_built:
        return NOT_BUILT
    if devices == 0:
        return NO_DEVICE.format(NO_DEVICE_REASONS[why])
    return None


def check_results(results, cuda_built, devices, why):
    """The --check failures (strings; empty when every cuem row is right)."""
    failures = []
    expected_error = expected_cuda_error(cuda_built, devices, why)
    for row in results:
        name = row["config"]
        ref = row["tools"].get("sklearn-cpu")
        if ref is None or "error" in ref:
            failures.append(f"{name}: no sklearn-cpu reference to check against ({ref})")
            ref = None
        for tool, tol in TOLERANCES.items():
            r = row["tools"].get(tool)
            if r is None:
                continue
            if tool.startswith("cuem-cuda") and expected_error is not None:
                got = (r.get("exit"), (r.get("stderr") or "").strip())
                if got != (2, expected_error):
                    failures.append(f"{name} {tool}: expected exit 2 and {expected_error!r}, got exit {got[0]} and "
                                    f"{got[1]!r}" + ("" if "error" in r else " (it ran)"))
                continue
            if "error" in r:
                failures.append(f"{name} {tool}: failed: {r['error']}")
                continue
            if ref is None:
                continue
            for key in ("loglik", "lower_bound"):
                gap = abs(r[key] - ref[key]) / abs(ref[key])
                if not gap <= tol:  # NaN fails too
                    failures.append(f"{name} {tool}: {key} {r[key]!r} vs sklearn-cpu {ref[key]!r}: relative gap "
                                    f"{gap:.3g} above {tol:g}")
    return failures


def write_results(base, doc):
    """The JSON and the markdown summary of what is done so far (a temporary file renamed
    over each, so a reader never sees half a file)."""
    for path, text in ((base + ".json", json.dumps(doc, indent=1)), (base + ".md", summary(doc))):
        with open(path + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(path + ".tmp", path)


def summary(doc):
    lines = [f"# GPU comparison, {doc['date']}, {doc['gpu']}", ""]
    if not doc["finished"]:
        lines += [f"Partial: {len(doc['results'])} of {len(doc['configs'])} configurations started; the run "
                  "stopped, or is still going, after the last row below.", ""]
    lines += [f"{doc['iters']} EM iterations from the same start; seconds per iteration; `x cuem` = tool / cuem-cuda "
              "(above 1: cuem is faster); loglik gap = |tool - cuem| / |cuem| and |tool - sklearn-cpu| / "
              "|sklearn-cpu|, by one float64 evaluator.", "",
              "| cfg | N | D | K | cov | tool | s/iter | x cuem | loglik gap to cuem-cuda | to sklearn-cpu |",
              "|---|---:|---:|---:|---|---|---:|---:|---:|---:|"]

    def gap(r, ref):
        return abs(r["loglik"] - ref["loglik"]) / abs(ref["loglik"]) if "loglik" in ref else float("nan")

    for row in doc["results"]:
        ref = row["tools"].get("cuem-cuda", {})
        cpu = row["tools"].get("sklearn-cpu", {})
        for tool, r in row["tools"].items():
            head = f"| {row['config']} | {row['n']} | {row['d']} | {row['k']} | {row['cov']} | {tool} | "
            if "error" in r:
                what = f"exit {r['exit']}: {r['stderr'].strip()}" if "exit" in r else r["error"]
                lines.append(head + f"error ({what[:240]}) | | | |")
                continue
            ratio = r["seconds"] / ref["seconds"] if ref.get("seconds") else float("nan")
            lines.append(head + f"{r['seconds']:.4g} | {ratio:.2f} | {gap(r, ref):.1e} | {gap(r, cpu):.1e} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driver", default=os.path.join(ROOT, "build", "tests", "em_driver"))
    ap.add_argument("--configs", default="G1,G2,G3,G4s,G4d,G5,A,B,C,D,E")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--reg", type=float, default=1e-6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="every N divided by 20")
    ap.add_argument("--f64", action="store_true", help="also cuem in float64")
    ap.add_argument("--cuem-cpu", action="store_true", help="also cuem's float64 CPU path (N up to --cpu-limit)")
    ap.add_argument("--cpu-limit", type=int, default=2_000_000, help="largest N for sklearn on the CPU")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--out", default=None, help="folder for the JSON and markdown results")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless every cuem row agrees with sklearn-cpu, or fails exactly as it must")
    ap.add_argument("--cuda-built", choices=("0", "1"),
                    help="whether em_driver was built with CUDA (CMake's CUEM_WITH_CUDA); needed by --check")
    args = ap.parse_args(argv)
    if args.iters < 2:
        ap.error("--iters must be at least 2")
    configs = args.configs.split(",")
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configurations {unknown}; known: {', '.join(CONFIGS)}")
    if args.check and args.cuda_built is None:
        ap.error("--check needs --cuda-built 0|1")

    try:
        import torch

        torch_device = "cuda" if torch.cuda.is_available() else None
    except ImportError:
        torch_device = None
    gpu = gpu_name()
    date = datetime.date.today().isoformat()
    out_dir = args.out or os.path.join(ROOT, "bench", "results", re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-"))
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"{date}_gpu_peers{'_quick' if args.quick else ''}")
    results = []
    doc = dict(date=date, gpu=gpu, iters=args.iters, quick=args.quick, configs=configs, finished=False,
               results=results)
    with tempfile.TemporaryDirectory() as tmp:
        for name in configs:
            cfg = CONFIGS[name]
            n = cfg["n"] // 20 if args.quick else cfg["n"]
            x = cp.make_data(cfg, n, args.seed)
            init = initial_parameters(x, cfg["k"], cfg["cov"], args.seed)
            files = {}
            for key, arr in zip(("weights", "means", "covs", "precisions"), init):
                files[key] = os.path.join(tmp, key + ".bin")
                np.ascontiguousarray(arr, dtype=np.float64).tofile(files[key])
            files["data"] = os.path.join(tmp, "data.bin")
            x.tofile(files["data"])
            row = dict(config=name, n=n, **{k: cfg[k] for k in ("d", "k", "cov")}, tools={})
            results.append(row)
            tools = [("cuem-cuda", lambda: run_cuem(args, files, cfg, n, "float32", tmp))]
            if args.f64:
                tools.append(("cuem-cuda-f64", lambda: run_cuem(args, files, cfg, n, "float64", tmp)))
            if torch_device:
                tools.append(("sklearn-torch", lambda: run_sklearn(x, cfg, init, args, torch_device)))
            if n <= args.cpu_limit:
                if args.cuem_cpu:
                    tools.append(("cuem-cpu", lambda: run_cuem(args, files, cfg, n, "float64", tmp, device="cpu")))
                tools.append(("sklearn-cpu", lambda: run_sklearn(x, cfg, init, args)))
            for tool, fn in tools:
                try:
                    r = fn()
                    r["loglik"] = score(x, r["weights"], r["means"], r["covariances"], cfg["cov"])
                    row["tools"][tool] = {k: r[k] for k in ("seconds", "loglik", "lower_bound")}
                except Exception as e:  # a tool that fails is reported, never fatal
                    row["tools"][tool] = {"error": f"{type(e).__name__}: {e}"[:300]}
                    if isinstance(e, DriverError):
                        row["tools"][tool].update(exit=e.returncode, stderr=e.stderr[-2000:])
                print(name, tool, row["tools"][tool], flush=True)
                write_results(base, doc)
            os.remove(files["data"])

    doc["finished"] = True
    write_results(base, doc)
    print(summary(doc))
    print(f"\nwritten: {base}.json, {base}.md")
    if not args.check:
        return 0
    devices, why = driver_devices()
    print(f"\ncheck: cuem built with CUDA: {args.cuda_built == '1'}; CUDA devices (libcuda): {devices}"
          + (f" ({why})" if why else ""))
    failures = check_results(results, args.cuda_built == "1", devices, why)
    for f in failures:
        print("check FAILED:", f)
    if not failures:
        print("check passed: every cuem row agrees with sklearn-cpu or fails exactly as it must")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
