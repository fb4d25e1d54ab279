#!/usr/bin/env python3
"""Side-by-side CPU comparison of cuem's EM with scikit-learn, Armadillo and Intel oneDAL (issues 5, 20).

Every tool fits the same data from the same fixed initial parameters for the same number
of EM iterations, in one run, each in its own subprocess with the same thread count:

  cuem       cpu backend through tests/tools/em_driver (--driver; build it with
             cmake --build build --target em_driver)
  sklearn    sklearn.mixture.GaussianMixture of the Python running this script, in a
             subprocess of that same Python (this file with --sklearn-worker)
  armadillo  arma::gmm_full / arma::gmm_diag through scripts/peers/armadillo_em.cpp, which
             this script compiles with g++ (-O3 -fopenmp, see --arma-cxxflags) into a
             temporary folder; needs Debian's libarmadillo-dev
             (apt-get install -y libarmadillo-dev)
  onedal     daal4py.em_gmm (Intel oneDAL, in the scikit-learn-intelex wheel), in a
             subprocess of --onedal-python (default: this Python) running this file with
             --onedal-worker; skipped with the reason when that Python has no daal4py
             (pip install scikit-learn-intelex). It takes the same start (weights, means
             and a list of K covariances), accuracyThreshold 0 and regularizationFactor
             --reg, which oneDAL applies in its own way (to covariances it finds
             ill-conditioned), so its final log-likelihood is reported against
             scikit-learn's like Armadillo's, flagged above --arma-flag, never failed

Configurations (issue 5; float64 data, generated and seeded: K Gaussian blobs of unit
spread whose centres are drawn from N(0, 5^2 I), each point in a random blob):

  A: N=1,000,000 D=2  K=8  full      B: N=200,000 D=16 K=16 full
  C: N=1,000,000 D=32 K=32 diag      D: N=100,000 D=64 K=64 full
  E: N=2,000,000 D=1  K=4  full

--quick divides every N by 20 (a check of the whole pipeline in well under a minute);
--configs A,B,E picks some.

Initial parameters (the same for every tool): K distinct data points drawn with the
seed as the means, equal weights, and the covariance of all the data (its diagonal for
diag) for every component. sklearn and cuem get them as weights_init / means_init /
precisions_init; Armadillo as set_params(means, covariances, hefts) followed by
learn(..., eucl_dist, keep_existing, km_iter=0, em_iter=ITERS, var_floor, false).
tol is 0 for cuem and sklearn (their test is |change| < tol, which never holds), and
Armadillo stops early only on a change below machine epsilon, so all run ITERS
iterations. The regularisation is --reg (default 1e-6, scikit-learn's default) added to
the covariance diagonal by cuem and sklearn; Armadillo has no additive term, only a floor
on the variances, which is set to the same value. So Armadillo solves a slightly
different problem: its final log-likelihood is reported with its relative gap to
sklearn's and flagged when the gap is large (> --arma-flag, default 1e-4), never failed.
A large gap usually means a component holds fewer points than dimensions (its
covariance is singular): cuem and sklearn keep it positive definite through reg, while
Armadillo's learn() leaves such a component's parameters as they were (its log_det /
inv_sympd check fails); the notes name such configs (it happens to D in --quick mode,
about 5,000 points for K=64 in D=64). A tiny reg (e.g. 1e-10) makes the three nearly
identical where no component is that small, but then such singular components make
the sklearn-cuem comparison ill-conditioned (1e-7 instead of 1e-13 on quick D).

Timing protocol (the same for every tool): each tool runs twice, once with ITERS
iterations and once with 1, and the time per iteration is

    (T(ITERS) - T(1)) / (ITERS - 1)

so everything a fit does once cancels: reading the data, process start, input checks,
first-touch of workspaces, and scikit-learn's fixed per-fit costs. What scikit-learn
1.9's fit does with all three *_init given (read in sklearn/mixture/_base.py and
_gaussian_mixture.py of the installed version): _initialize_parameters skips its
k-means / random responsibilities entirely and only converts precisions_init to
Cholesky factors; then ITERS x (E-step + M-step); then one more E-step so that
fit_predict's labels agree with predict. Older versions ran the init_params method
(k-means by default) even with all parameters given; either way it is a per-fit cost
the difference removes. T is measured inside the process where the tool allows it
(sklearn: perf_counter around fit(); Armadillo: steady_clock around learn()); for cuem it
is the wall time of the em_driver subprocess (em_driver prints no timing), or, if
em_driver writes a 'trace_seconds' line, the sum of its per-iteration seconds (both are
recorded). --repeat R runs every measurement R times and keeps the fastest.

Peak memory is the maximum resident set size of each tool's own process, of the run with
ITERS iterations, read from GNU time (/usr/bin/time -f %M) wrapped around it (see
run_child for why not this process's rusage of its children). It includes the data as
that tool holds it: Armadillo reads the file straight into its matrix (1x the data);
em_driver reads the file into a byte buffer and copies it into a vector of doubles, so
its peak holds the data twice while loading; the sklearn worker holds it once
(np.fromfile) plus the interpreter and libraries (~150 MiB).

Final mean log-likelihood: the parameters each tool returns are evaluated by one common
float64 evaluator in this script (mean over points of logsumexp_k log pi_k N(x|mu_k,
Sigma_k)); besides, the lower bound that cuem and sklearn report themselves (the mean
log-likelihood of the last E-step) is compared. cuem must agree with sklearn to --rtol
(default 1e-8, relative to max(|value|, 1)) on both; a disagreement fails the run
(exit 1).

Threads: --threads T (default 2) for every tool: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS
and MKL_NUM_THREADS are set to T in each subprocess, and em_driver gets --threads T.
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which this environment may set for the sake of
old OpenBLAS builds, slow down a current numpy; they are removed from the sklearn
subprocess only (the environment's advice for benchmarking numpy), and the BLAS kernel
that threadpoolctl then reports there is recorded.

A shared machine: --wait-quiet S waits (up to S seconds) before each config until the
CPU is less than --quiet-share busy, and every config records the share of the CPU that
other processes took while it ran (from /proc/stat less this script's own and its
children's CPU time), flagged in the notes above --foreign-flag (5%). Oversubscription
hurts OpenBLAS's spinning threads most: scikit-learn on B measured 2.3 s per iteration
beside a compiler and 0.56 s alone.

Output: a table on stdout; --json PATH writes the results with a machine description
(CPU model, family/model, cores, memory, load average) and tool versions; --save also
writes bench/results/<machine>/<date>_peers[_quick].json and a markdown summary .md
beside it (see bench/results/README.md); a later run the same day adds _2, _3, ... to the
name rather than overwrite.

    python3 scripts/compare_peers.py --quick
    python3 scripts/compare_peers.py --configs A,B,E,C,D --repeat 2 --wait-quiet 400 --save

Exit status: 0 when cuem and sklearn agree everywhere they both ran, 1 on a
disagreement or a cuem / sklearn failure, 2 on a setup error (no em_driver, no
scikit-learn).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CONFIGS = {
    "A": dict(n=1_000_000, d=2, k=8, cov="full"),
    "B": dict(n=200_000, d=16, k=16, cov="full"),
    "C": dict(n=1_000_000, d=32, k=32, cov="diag"),
    "D": dict(n=100_000, d=64, k=64, cov="full"),
    "E": dict(n=2_000_000, d=1, k=4, cov="full"),
}
TOOLS = ("cuem", "sklearn", "armadillo", "onedal")
MIB = 1024.0 * 1024.0


# ---- the sklearn worker (runs in its own subprocess) -------------------------------------


def sklearn_worker(spec_path):
    """Fits once as the spec says and writes seconds, parameters and BLAS info as JSON."""
    import warnings

    with open(spec_path) as f:
        spec = json.load(f)
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_info

    n, d, k, cov = spec["n"], spec["d"], spec["k"], spec["cov"]
    x = np.fromfile(spec["data"], dtype="<f8").reshape(n, d)
    w0 = np.fromfile(spec["weights"], dtype="<f8")
    m0 = np.fromfile(spec["means"], dtype="<f8").reshape(k, d)
    p0 = np.fromfile(spec["precisions"], dtype="<f8").reshape((k, d, d) if cov == "full" else (k, d))
    gm = GaussianMixture(
        n_components=k,
        covariance_type=cov,
        tol=0.0,
        reg_covar=spec["reg"],
        max_iter=spec["iters"],
        n_init=1,
        weights_init=w0,
        means_init=m0,
        precisions_init=p0,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        gm.fit(x)
        seconds = time.perf_counter() - t0
    pools = [
        {key: p.get(key) for key in ("user_api", "internal_api", "num_threads", "version", "architecture", "prefix")}
        for p in threadpool_info()
    ]
    out = {
        "seconds": seconds,
        "n_iter": int(gm.n_iter_),
        "lower_bound": float(gm.lower_bound_),
        "weights": np.ravel(gm.weights_).tolist(),
        "means": np.ravel(gm.means_).tolist(),
        "covariances": np.ravel(gm.covariances_).tolist(),
        "threadpools": pools,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "env_openblas": {key: os.environ.get(key) for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }
    with open(spec["out"], "w") as f:
        json.dump(out, f)
    return 0


def onedal_worker(spec_path):
    """Fits once with daal4py.em_gmm as the spec says and writes seconds and parameters as JSON."""
    import daal4py

    with open(spec_path) as f:
        spec = json.load(f)
    n, d, k, cov = spec["n"], spec["d"], spec["k"], spec["cov"]
    x = np.fromfile(spec["data"], dtype="<f8").reshape(n, d)
    w0 = np.fromfile(spec["weights"], dtype="<f8").reshape(1, k)
    m0 = np.fromfile(spec["means"], dtype="<f8").reshape(k, d)
    c0 = np.fromfile(spec["covs"], dtype="<f8").reshape((k, d, d) if cov == "full" else (k, 1, d))
    algorithm = daal4py.em_gmm(
        nComponents=k,
        maxIterations=spec["iters"],
        accuracyThreshold=0.0,
        regularizationFactor=spec["reg"],
        covarianceStorage="full" if cov == "full" else "diagonal",
        fptype="double",
    )
    covs = [np.ascontiguousarray(c0[j]) for j in range(k)]
    t0 = time.perf_counter()
    r = algorithm.compute(x, w0, m0, covs)
    seconds = time.perf_counter() - t0
    out = {
        "seconds": seconds,
        "n_iter": int(np.asarray(r.nIterations).ravel()[0]),
        "weights": np.ravel(r.weights).tolist(),
        "means": np.ravel(r.means).tolist(),
        "covariances": np.concatenate([np.ravel(c) for c in r.covariances]).tolist(),
        "version": getattr(daal4py, "__version__", None) or _package_version("scikit-learn-intelex"),
    }
    with open(spec["out"], "w") as f:
        json.dump(out, f)
    return 0


def _package_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


# ---- data and initial parameters -------------------------------------------------------


def make_data(cfg, n, seed):
    rng = np.random.default_rng([seed, cfg["d"], cfg["k"]])
    d, k = cfg["d"], cfg["k"]
    centres = 5.0 * rng.standard_normal((k, d))
    labels = rng.integers(0, k, size=n)
    x = rng.standard_normal((n, d))
    x += centres[labels]
    return np.ascontiguousarray(x, dtype=np.float64)


def initial_parameters(x, k, cov, seed):
    """weights (K), means (K x D), covariances and precisions in sklearn's shapes."""
    n, d = x.shape
    rng = np.random.default_rng([seed, 7])
    means = np.ascontiguousarray(x[rng.choice(n, size=k, replace=False)])
    weights = np.full(k, 1.0 / k)
    if cov == "full":
        c = np.atleast_2d(np.cov(x, rowvar=False))
        covs = np.ascontiguousarray(np.broadcast_to(c, (k, d, d)))
        precs = np.ascontiguousarray(np.broadcast_to(np.linalg.inv(c), (k, d, d)))
    else:
        v = x.var(axis=0, ddof=1)
        covs = np.ascontiguousarray(np.broadcast_to(v, (k, d)))
        precs = 1.0 / covs
    return weights, means, covs, precs


# ---- the common log-likelihood evaluator -----------------------------------------------


def mean_log_likelihood(x, weights, means, covs, cov, chunk=1 << 15):
    """mean_n log sum_k w_k N(x_n | mu_k, Sigma_k), in float64, in chunks of points."""
    n, d = x.shape
    k = weights.size
    means = np.asarray(means, dtype=np.float64).reshape(k, d)
    logw = np.log(np.maximum(np.asarray(weights, dtype=np.float64), np.finfo(np.float64).tiny))
    if cov == "full":
        covs = np.asarray(covs, dtype=np.float64).reshape(k, d, d)
        inv_chol = []
        logdet = np.empty(k)
        for j in range(k):
            c = np.linalg.cholesky(covs[j])
            inv_chol.append(np.linalg.inv(c))  # lower triangular; z = L^-1 (x - mu)
            logdet[j] = 2.0 * np.sum(np.log(np.diag(c)))
    else:
        covs = np.asarray(covs, dtype=np.float64).reshape(k, d)
        logdet = np.sum(np.log(covs), axis=1)
    const = logw - 0.5 * (d * np.log(2.0 * np.pi) + logdet)
    total = 0.0
    for s in range(0, n, chunk):
        xc = x[s : s + chunk]
        lp = np.empty((xc.shape[0], k))
        for j in range(k):
            diff = xc - means[j]
            if cov == "full":
                z = diff @ inv_chol[j].T
                lp[:, j] = const[j] - 0.5 * np.einsum("ij,ij->i", z, z)
            else:
                lp[:, j] = const[j] - 0.5 * np.einsum("ij,ij->i", diff, diff / covs[j])
        m = lp.max(axis=1)
        total += float(np.sum(m + np.log(np.sum(np.exp(lp - m[:, None]), axis=1))))
    return total / n


def rel_diff(a, b):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(1e-300, float(np.max(np.abs(b))))) if a.size else 0.0


def rel_scalar(a, b):
    if a is None or b is None or not (np.isfinite(a) and np.isfinite(b)):
        return float("inf")
    return abs(a - b) / max(1.0, abs(b))


# ---- running a child and measuring it ---------------------------------------------------


TIME = "/usr/bin/time"


def run_child(cmd, env, tmp, timeout):
    """Runs cmd; returns (returncode, wall seconds, peak RSS in bytes, stdout+stderr text).

    The peak RSS comes from GNU time (/usr/bin/time -f %M), which forks a fresh, small
    process for cmd: the rusage that this Python gets from its own child would not do,
    since Linux keeps a process's maximum RSS across exec, and a child forked (or
    vforked) from this Python starts with this Python's resident set, data included.
    Without GNU time (Debian package 'time') the peak is None.
    """
    log_path = os.path.join(tmp, "child.log")
    rss_path = os.path.join(tmp, "child.rss")
    if os.path.exists(rss_path):
        os.remove(rss_path)
    use_time = os.access(TIME, os.X_OK)
    full = [TIME, "-f", "%M", "-o", rss_path, *cmd] if use_time else list(cmd)
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        wall = time.perf_counter() - t0
    with open(log_path) as f:
        text = f.read()
    rss = None
    if use_time:
        try:
            with open(rss_path) as f:
                rss = int(f.read().split()[-1]) * 1024
        except (OSError, ValueError, IndexError):
            rss = None
    return rc, wall, rss, text


def child_env(threads, for_numpy=False):
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    if for_numpy:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


def read_arrays(path):
    result = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                result[parts[0]] = np.array([float(v) for v in parts[2:]], dtype=np.float64)
    return result


class Runner:
    """One tool's fit with a given number of iterations -> dict with seconds, rss, params."""

    def __init__(self, args, tmp, files, cfg, n):
        self.args, self.tmp, self.files, self.cfg, self.n = args, tmp, files, cfg, n

    def cuem(self, iters):
        out = os.path.join(self.tmp, "cuem_result.txt")
        if os.path.exists(out):
            os.remove(out)
        c = self.cfg
        cmd = [
            self.args.driver, "--cov", c["cov"], "--k", str(c["k"]), "--d", str(c["d"]), "--n", str(self.n),
            "--data", self.files["data"], "--weights", self.files["weights"], "--means", self.files["means"],
            "--precisions", self.files["precisions"], "--tol", "0", "--reg", repr(self.args.reg),
            "--max-iter", str(iters), "--device", "cpu", "--threads", str(self.args.threads), "--out", out,
        ]
        rc, wall, rss, text = run_child(cmd, child_env(self.args.threads), self.tmp, self.args.timeout)
        if rc != 0:
            raise RuntimeError(f"em_driver exited {rc}: {text.strip()[-500:]}")
        r = read_arrays(out)
        res = {
            "seconds": wall,
            "wall": wall,
            "rss": rss,
            "n_iter": int(r["n_iter"][0]),
            "lower_bound": float(r["lower_bound"][0]),
            "weights": r["weights"],
            "means": r["means"],
            "covariances": r["covariances"],
            "n_decreases": int(r.get("n_decreases", [0])[0]),
        }
        if "trace_seconds" in r and r["trace_seconds"].size:
            res["trace_seconds"] = r["trace_seconds"].tolist()
            res["seconds_trace"] = float(np.sum(r["trace_seconds"]))
            res["seconds"] = res["seconds_trace"]  # in-process: the fit alone
        return res

    def python_worker(self, name, python, iters):
        """Runs this file as `--NAME-worker SPEC` under `python`; returns its JSON with arrays."""
        out = os.path.join(self.tmp, f"{name}_result.json")
        spec_path = os.path.join(self.tmp, f"{name}_spec.json")
        c = self.cfg
        spec = dict(n=self.n, d=c["d"], k=c["k"], cov=c["cov"], reg=self.args.reg, iters=iters, out=out, **self.files)
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        if os.path.exists(out):
            os.remove(out)
        cmd = [python, os.path.abspath(__file__), f"--{name}-worker", spec_path]
        rc, wall, rss, text = run_child(cmd, child_env(self.args.threads, for_numpy=True), self.tmp, self.args.timeout)
        if rc != 0:
            raise RuntimeError(f"{name} worker exited {rc}: {text.strip()[-800:]}")
        with open(out) as f:
            r = json.load(f)
        r.update(wall=wall, rss=rss)
        for key in ("weights", "means", "covariances"):
            r[key] = np.array(r[key], dtype=np.float64)
        return r

    def sklearn(self, iters):
        return self.python_worker("sklearn", sys.executable, iters)

    def onedal(self, iters):
        return self.python_worker("onedal", self.args.onedal_python, iters)

    def armadillo(self, iters):
        out = os.path.join(self.tmp, "arma_result.txt")
        if os.path.exists(out):
            os.remove(out)
        c = self.cfg
        cmd = [
            self.args.arma_binary, "--cov", c["cov"], "--d", str(c["d"]), "--k", str(c["k"]),
            "--data", self.files["data"], "--weights", self.files["weights"], "--means", self.files["means"],
            "--covs", self.files["covs"], "--iters", str(iters), "--var-floor", repr(self.args.reg), "--out", out,
        ]
        rc, wall, rss, text = run_child(cmd, child_env(self.args.threads), self.tmp, self.args.timeout)
        if rc != 0:
            raise RuntimeError(f"armadillo_em exited {rc}: {text.strip()[-500:]}")
        r = read_arrays(out)
        if r["status"][0] != 1.0:
            raise RuntimeError("Armadillo's learn() reported failure")
        return {
            "seconds": float(r["seconds"][0]),
            "wall": wall,
            "rss": rss,
            "threads": int(r["threads"][0]),
            "version": ".".join(str(int(v)) for v in r["version"]),
            "weights": r["weights"],
            "means": r["means"],
            "covariances": r["covariances"],
        }


# ---- machine, versions, Armadillo build ------------------------------------------------


def cpu_description():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        first = text.split("\n\n")[0]
        for line in first.splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                info[key.strip()] = value.strip()
    except OSError:
        pass
    flags = info.get("flags", "").split()
    desc = {
        "cpu_model": info.get("model name", platform.processor() or "unknown"),
        "vendor": info.get("vendor_id"),
        "family": info.get("cpu family"),
        "model": info.get("model"),
        "stepping": info.get("stepping"),
        "logical_cpus": os.cpu_count(),
        "simd": [f for f in ("avx2", "fma", "avx512f", "avx512vl", "avx512_bf16") if f in flags],
        "kernel": platform.release(),
    }
    try:
        with open("/proc/meminfo") as f:
            desc["memory_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        desc["cpu_hypervisor"] = "hypervisor" in flags
        desc["lscpu_model_name"] = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10
        ).stdout.split("Model name:")[1].splitlines()[0].strip()
    except Exception:
        pass
    return desc


def machine_slug(desc):
    name = re.sub(r"[^a-z0-9]+", "-", desc["cpu_model"].lower()).strip("-") or "cpu"
    if desc.get("family") and desc.get("model"):
        name += f"-f{desc['family']}m{desc['model']}"
    return f"{name}-{desc['logical_cpus']}c"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(v) for v in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def cpu_counters():
    """(busy CPU seconds of the whole machine, steal seconds, CPU seconds of this process
    and its waited-for descendants): the first minus the last is what other processes
    used meanwhile."""
    import resource

    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        busy = (v[0] + v[1] + v[2] + v[5] + v[6]) / hz
        steal = (v[7] if len(v) > 7 else 0) / hz
    except (OSError, ValueError, IndexError):
        return None
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        own += r.ru_utime + r.ru_stime
    return busy, steal, own


def foreign_share(before, after, wall):
    """Fraction of the machine's CPU time that other processes (and the hypervisor's
    steal) took while a config ran: 0 on a quiet machine."""
    if before is None or after is None or wall <= 0:
        return None
    other = (after[0] - before[0]) - (after[2] - before[2]) + (after[1] - before[1])
    return max(0.0, other) / (wall * (os.cpu_count() or 1))


def wait_for_quiet(limit_s, threshold, window_s=3.0):
    """Waits (up to limit_s) until the machine's CPU is busy less than threshold of the
    time over a window; returns the last busy share seen."""
    start = time.time()
    while True:
        c0 = cpu_counters()
        time.sleep(window_s)
        c1 = cpu_counters()
        if c0 is None or c1 is None:
            return None
        share = ((c1[0] - c0[0]) + (c1[1] - c0[1])) / (window_s * (os.cpu_count() or 1))
        if share < threshold or time.time() - start >= limit_s:
            return share


def cuem_version():
    version = None
    try:
        with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
            m = re.search(r"project\(cuem VERSION ([0-9.]+)", f.read())
            version = m.group(1) if m else None
    except OSError:
        pass
    commit = None
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
        if dirty:
            commit += "+dirty"
    except OSError:
        pass
    return {"version": version, "commit": commit}


def build_armadillo(tmp, cxxflags):
    src = os.path.join(HERE, "peers", "armadillo_em.cpp")
    exe = os.path.join(tmp, "armadillo_em")
    cxx = os.environ.get("CXX", "g++")
    if not os.path.isfile("/usr/include/armadillo"):
        return None, "Armadillo headers not found (apt-get install -y libarmadillo-dev)"
    cmd = [cxx, "-std=c++17", *cxxflags.split(), src, "-o", exe, "-larmadillo"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return None, f"compiling the Armadillo harness failed: {' '.join(cmd)}\n{proc.stderr[-1500:]}"
    return exe, " ".join(cmd)


def linked_blas(exe):
    try:
        text = subprocess.run(["ldd", exe], capture_output=True, text=True, timeout=10).stdout
    except Exception:
        return None
    libs = []
    for line in text.splitlines():
        if re.search(r"blas|lapack", line):
            parts = line.split("=>")
            if len(parts) == 2:
                path = parts[1].split("(")[0].strip()
                libs.append(os.path.realpath(path) if path else parts[0].strip())
    return libs


def compiler_version():
    try:
        return subprocess.run([os.environ.get("CXX", "g++"), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except Exception:
        return None


# ---- one configuration ----------------------------------------------------------------


def per_iteration(full, one, iters):
    if iters <= 1:
        return full
    return max(0.0, full - one) / (iters - 1)


def run_config(name, args, tools, tmp):
    cfg = CONFIGS[name]
    n = cfg["n"] // 20 if args.quick else cfg["n"]
    d, k, cov = cfg["d"], cfg["k"], cfg["cov"]
    x = make_data(cfg, n, args.seed)
    w0, m0, c0, p0 = initial_parameters(x, k, cov, args.seed)
    files = {}
    for key, arr in (("data", x), ("weights", w0), ("means", m0), ("covs", c0), ("precisions", p0)):
        files[key] = os.path.join(tmp, f"{key}.bin")
        np.ascontiguousarray(arr, dtype="<f8").tofile(files[key])
    runner = Runner(args, tmp, files, cfg, n)
    entry = {
        "config": name, "n": n, "d": d, "k": k, "covariance_type": cov,
        "data_mib": round(x.nbytes / MIB, 1), "load_before": loadavg(), "tools": {},
    }
    best = {t: {} for t in tools}
    errors = {}
    # Interleaved: every tool's 1-iteration run, then every tool's ITERS run, R times.
    for _ in range(args.repeat):
        for iters in ((1, args.iters) if args.iters > 1 else (args.iters,)):
            for tool in tools:
                if tool in errors:
                    continue
                try:
                    r = getattr(runner, tool)(iters)
                except Exception as exc:  # reported in the table, judged below
                    errors[tool] = str(exc)
                    continue
                prev = best[tool].get(iters)
                if prev is None or r["seconds"] < prev["seconds"]:
                    if prev is not None and prev["rss"] is not None and r["rss"] is not None:
                        r["rss"] = max(r["rss"], prev["rss"])
                    best[tool][iters] = r
                elif prev["rss"] is not None and r["rss"] is not None:
                    prev["rss"] = max(prev["rss"], r["rss"])
    lls = {}
    for tool in tools:
        if tool in errors:
            entry["tools"][tool] = {"error": errors[tool]}
            continue
        full = best[tool][args.iters]
        one = best[tool].get(1, full)
        t = {
            "seconds_per_iteration": per_iteration(full["seconds"], one["seconds"], args.iters),
            "fit_seconds": full["seconds"],
            "fit_seconds_1_iteration": one["seconds"],
            "process_wall_seconds": full["wall"],
            "peak_rss_mib": None if full["rss"] is None else round(full["rss"] / MIB, 1),
            "final_mean_log_likelihood": None,
        }
        if "seconds_trace" in full:
            ts = full["trace_seconds"]
            t["trace_seconds"] = ts
            t["seconds_per_iteration_trace"] = float(np.mean(ts[1:])) if len(ts) > 1 else float(ts[0])
        if "lower_bound" in full:
            t["own_lower_bound"] = full["lower_bound"]
        if "n_iter" in full:
            t["n_iter"] = full["n_iter"]
        for key in ("threads", "version", "threadpools", "env_openblas", "n_decreases"):
            if key in full:
                t[key] = full[key]
        try:
            lls[tool] = mean_log_likelihood(x, full["weights"], full["means"], full["covariances"], cov)
            t["final_mean_log_likelihood"] = lls[tool]
        except Exception as exc:
            t["final_mean_log_likelihood_error"] = str(exc)
        entry["tools"][tool] = t
        entry["tools"][tool]["_params"] = full
    # Ratios to cuem and agreement.
    cu = entry["tools"].get("cuem", {})
    sk = entry["tools"].get("sklearn", {})
    problems, notes = [], []
    for tool, t in entry["tools"].items():
        if "seconds_per_iteration" in t and cu.get("seconds_per_iteration"):
            t["ratio_to_cuem"] = t["seconds_per_iteration"] / cu["seconds_per_iteration"]
        if tool != "sklearn" and "sklearn" in lls and tool in lls:
            t["final_ll_rel_gap_to_sklearn"] = rel_scalar(lls[tool], lls["sklearn"])
        if t.get("n_iter") is not None and t["n_iter"] != args.iters:
            problems.append(f"{name}/{tool}: ran {t['n_iter']} iterations, not {args.iters}")
    if "error" in cu:
        problems.append(f"{name}/cuem: {cu['error']}")
    if "error" in sk:
        problems.append(f"{name}/sklearn: {sk['error']}")
    if "_params" in cu and "_params" in sk:
        agree = {
            "lower_bound": rel_scalar(cu.get("own_lower_bound"), sk.get("own_lower_bound")),
            "final_ll": rel_scalar(lls.get("cuem"), lls.get("sklearn")),
            "weights": rel_diff(cu["_params"]["weights"], sk["_params"]["weights"]),
            "means": rel_diff(cu["_params"]["means"], sk["_params"]["means"]),
            "covariances": rel_diff(cu["_params"]["covariances"], sk["_params"]["covariances"]),
        }
        entry["cuem_vs_sklearn"] = agree
        for key in ("lower_bound", "final_ll"):
            if not agree[key] <= args.rtol:
                problems.append(f"{name}: cuem vs sklearn {key} rel diff {agree[key]:.3g} > {args.rtol:g}")
        for key in ("weights", "means", "covariances"):
            if not agree[key] <= args.param_rtol:
                notes.append(f"{name}: cuem vs sklearn {key} rel diff {agree[key]:.3g} (> {args.param_rtol:g}; reported only)")
    if "_params" in sk:
        min_points = float(np.min(sk["_params"]["weights"])) * n
        entry["sklearn_min_component_points"] = min_points
        singular_below = d + 1 if cov == "full" else 2  # a full covariance needs D + 1 points, a variance 2
        if min_points < singular_below:
            notes.append(f"{name}: a component ends with {min_points:.1f} points (< {singular_below}): its covariance "
                         "is singular but for reg, so the tools may part ways there")
    for tool, label in (("armadillo", "Armadillo"), ("onedal", "oneDAL")):
        t = entry["tools"].get(tool, {})
        gap = t.get("final_ll_rel_gap_to_sklearn")
        if gap is not None and not gap <= args.arma_flag:
            notes.append(f"{name}: {label}'s final log-likelihood differs from sklearn's by {gap:.3g} relative "
                         f"(flag > {args.arma_flag:g})")
        if "error" in t:
            notes.append(f"{name}/{tool}: {t['error']}")
    if cu.get("n_decreases"):
        notes.append(f"{name}: cuem reports {cu['n_decreases']} log-likelihood decreases")
    for t in entry["tools"].values():
        t.pop("_params", None)
    entry["load_after"] = loadavg()
    entry["problems"] = problems
    entry["notes"] = notes
    return entry


# ---- floors -----------------------------------------------------------------------------


def vector_ops_per_pair(d, cov):
    """Arithmetic vector instructions (8 doubles each, all on the FMA ports) per (point,
    component) pair of one iteration, every responsibility counted as non-zero: the
    log joint and the statistics of cpu_kernels.hpp."""
    if cov in ("full", "tied"):
        tri = d * (d + 1) / 2
        return (d + tri + d) / 8 + (tri + 2 * d) / 8  # y, P^T y, squares; S2 triangle, S1
    return 7 * d / 8  # (x - mu) * f, FMA; x - c, g y, S1 add, S2 FMA


def config_floor(cfg, n, rates):
    """Seconds per iteration that the machine's rates allow: the arithmetic and the exps
    share the FMA ports, so they add; reading the data once is the other bound."""
    pairs = float(n) * cfg["k"]
    arith = pairs * vector_ops_per_pair(cfg["d"], cfg["cov"]) / rates["fma_instructions_per_s"]
    exps = pairs / rates["exp_per_s"]
    memory = float(n) * cfg["d"] * 8 / rates["read_bytes_per_s"]
    compute = arith + exps
    return {"arithmetic_s": arith, "exp_s": exps, "memory_s": memory, "floor_s": max(compute, memory),
            "bound": "compute" if compute >= memory else "memory"}


def measure_floors(binary, threads):
    try:
        proc = subprocess.run([binary], env=child_env(threads), capture_output=True, text=True, timeout=600)
        return json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


# ---- output -----------------------------------------------------------------------------


def fmt_s(v):
    return "-" if v is None else (f"{v:.4f}" if v < 10 else f"{v:.2f}")


def fmt_mib(v):
    return "-" if v is None else f"{v:.1f}"


def table_lines(results, tools):
    head = (f"{'cfg':<3} {'N':>9} {'D':>3} {'K':>3} {'cov':<4} {'tool':<9} {'s/iter':>8} {'x cuem':>7} "
            f"{'peak MiB':>9} {'final mean loglik':>20} {'vs sklearn':>10}")
    lines = [head, "-" * len(head)]
    for e in results:
        first = True
        for tool in tools:
            t = e["tools"].get(tool)
            if t is None:
                continue
            lead = (f"{e['config']:<3} {e['n']:>9} {e['d']:>3} {e['k']:>3} {e['covariance_type']:<4}" if first
                    else " " * 24)
            first = False
            if "error" in t:
                lines.append(f"{lead} {tool:<9} failed: {t['error'][:80]}")
                continue
            ratio = t.get("ratio_to_cuem")
            gap = t.get("final_ll_rel_gap_to_sklearn")
            ll = t.get("final_mean_log_likelihood")
            lines.append(
                f"{lead} {tool:<9} {fmt_s(t['seconds_per_iteration']):>8} "
                f"{('-' if ratio is None else f'{ratio:.2f}'):>7} {fmt_mib(t['peak_rss_mib']):>9} "
                f"{('-' if ll is None else f'{ll:.12f}'):>20} {('-' if gap is None else f'{gap:.1e}'):>10}"
            )
    return lines


def markdown_summary(doc, tools):
    m = doc["machine"]
    s = doc["settings"]
    lines = [
        f"# Side-by-side CPU comparison, {doc['date']}" + (" (quick)" if s["quick"] else ""),
        "",
        f"Machine: {m.get('lscpu_model_name') or m['cpu_model']} (family {m.get('family')} model {m.get('model')}), "
        f"{m['logical_cpus']} logical CPUs, {m.get('memory_gib')} GiB; SIMD {', '.join(m.get('simd', []))}. "
        "A shared 2-core development VM: other work may have been running, so treat differences "
        "below ~10% as noise. Share of the CPU time that other processes took while each config ran: "
        + ", ".join(f"{e['config']} {100 * e['foreign_cpu_share']:.1f}%" for e in doc["results"]
                    if e.get("foreign_cpu_share") is not None) + ".",
        "",
        f"Protocol: {s['iters']} EM iterations from the same initial parameters, tol 0, reg {s['reg']:g} "
        f"(Armadillo: var_floor {s['reg']:g}), {s['threads']} threads each; seconds per iteration = "
        f"(T({s['iters']}) - T(1)) / {s['iters'] - 1}, best of {s['repeat']}; peak RSS of each tool's own process; "
        "final mean log-likelihood of each tool's returned parameters by one common evaluator. "
        "`x cuem` = tool time / cuem time (above 1: cuem is faster). See scripts/compare_peers.py.",
        "",
        f"Versions: cuem {doc['versions']['cuem']['version']} ({doc['versions']['cuem']['commit']}; em_driver built "
        f"{doc['versions'].get('em_driver', {}).get('built')}), scikit-learn {doc['versions'].get('sklearn')} "
        f"(numpy {doc['versions'].get('numpy')}, BLAS {doc['versions'].get('sklearn_blas')}), "
        f"Armadillo {doc['versions'].get('armadillo')} ({doc['versions'].get('armadillo_build')}; "
        f"BLAS/LAPACK {doc['versions'].get('armadillo_blas')}), oneDAL (scikit-learn-intelex) "
        f"{doc['versions'].get('onedal')}.",
        "",
        "| cfg | N | D | K | cov | tool | s/iter | x cuem | peak MiB (data MiB) | final mean loglik | rel gap to sklearn |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for e in doc["results"]:
        for tool in tools:
            t = e["tools"].get(tool)
            if t is None:
                continue
            if "error" in t:
                lines.append(f"| {e['config']} | {e['n']} | {e['d']} | {e['k']} | {e['covariance_type']} | {tool} | failed | | | | |")
                continue
            ratio = t.get("ratio_to_cuem")
            gap = t.get("final_ll_rel_gap_to_sklearn")
            ll = t.get("final_mean_log_likelihood")
            lines.append(
                f"| {e['config']} | {e['n']} | {e['d']} | {e['k']} | {e['covariance_type']} | {tool} | "
                f"{fmt_s(t['seconds_per_iteration'])} | {'-' if ratio is None else f'{ratio:.2f}'} | "
                f"{fmt_mib(t['peak_rss_mib'])} ({e['data_mib']:.1f}) | {'-' if ll is None else f'{ll:.10f}'} | "
                f"{'-' if gap is None else f'{gap:.1e}'} |"
            )
    rates = doc.get("floor_rates")
    if rates:
        lines += [
            "",
            f"Against the floors (bench/floors.cpp with {rates['threads']} threads: "
            f"{rates['fma_instructions_per_s'] / 1e9:.2f} G vector FMA/s, {rates['exp_per_s'] / 1e9:.2f} G exp/s, "
            f"{rates['read_bytes_per_s'] / 1e9:.1f} GB/s read; every responsibility counted non-zero, so a floor "
            "for the early iterations: see compare_peers.vector_ops_per_pair), and against the fastest peer:",
            "",
            "| cfg | floor s/iter | bound | cuem s/iter | cuem / floor | fastest peer | its s/iter | fastest peer / cuem |",
            "|---|---:|---|---:|---:|---|---:|---:|",
        ]
        for e in doc["results"]:
            f = e.get("floor")
            cu = e["tools"].get("cuem", {}).get("seconds_per_iteration")
            peers = [(t["seconds_per_iteration"], tool) for tool, t in e["tools"].items()
                     if tool != "cuem" and t.get("seconds_per_iteration")]
            fastest = min(peers) if peers else (None, "-")
            floor = fmt_s(f["floor_s"]) if f else "-"
            x_floor = f"{cu / f['floor_s']:.1f}" if f and cu else "-"
            x_peer = f"{fastest[0] / cu:.2f}" if cu and fastest[0] else "-"
            lines.append(f"| {e['config']} | {floor} | {f['bound'] if f else '-'} | {fmt_s(cu)} | {x_floor} | "
                         f"{fastest[1]} | {fmt_s(fastest[0])} | {x_peer} |")
    notes = [n for e in doc["results"] for n in e["problems"] + e["notes"]]
    lines += ["", "Problems and notes:" if notes else "No problems; cuem and scikit-learn agree within "
              f"{s['rtol']:g} on every config."]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


# ---- main -------------------------------------------------------------------------------


def unused_stem(stem):
    """stem, or stem_2, stem_3, ... where an earlier run of the day saved its .json or .md."""
    candidate, n = stem, 1
    while os.path.exists(candidate + ".json") or os.path.exists(candidate + ".md"):
        n += 1
        candidate = f"{stem}_{n}"
    return candidate


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--sklearn-worker"]:
        return sklearn_worker(argv[1])
    if argv[:1] == ["--onedal-worker"]:
        return onedal_worker(argv[1])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--driver", default=os.path.join(ROOT, "build", "tests", "em_driver"), help="em_driver executable (default build/tests/em_driver)")
    p.add_argument("--configs", default="A,B,C,D,E", help="comma-separated configs (default A,B,C,D,E)")
    p.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tools (default cuem,sklearn,armadillo,onedal)")
    p.add_argument("--onedal-python", default=sys.executable,
                   help="the Python whose daal4py (pip install scikit-learn-intelex) runs oneDAL (default: this one)")
    p.add_argument("--quick", action="store_true", help="divide every N by 20")
    p.add_argument("--iters", type=int, default=5, help="EM iterations (default 5)")
    p.add_argument("--threads", type=int, default=2, help="threads for every tool (default 2)")
    p.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest counts (default 1)")
    p.add_argument("--reg", type=float, default=1e-6, help="reg_covar for cuem and sklearn, var_floor for Armadillo (default 1e-6, sklearn's)")
    p.add_argument("--seed", type=int, default=20240505, help="seed of the data and initial means")
    p.add_argument("--rtol", type=float, default=1e-8, help="cuem vs sklearn tolerance on the log-likelihoods (default 1e-8)")
    p.add_argument("--param-rtol", type=float, default=1e-6, help="cuem vs sklearn parameter gap that is noted (default 1e-6)")
    p.add_argument("--arma-flag", type=float, default=1e-4, help="Armadillo log-likelihood gap to sklearn that is flagged (default 1e-4)")
    p.add_argument("--arma-cxxflags", default="-O3 -fopenmp -DARMA_NO_DEBUG", help="g++ flags of the Armadillo harness")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per subprocess (default 1800)")
    p.add_argument("--wait-quiet", type=float, default=0.0, help="before each config, wait up to this many seconds until the CPU is busy less than --quiet-share")
    p.add_argument("--foreign-flag", type=float, default=0.05, help="share of the CPU used by other processes that is flagged (default 0.05)")
    p.add_argument("--quiet-share", type=float, default=0.1, help="CPU busy share (over 3 s) taken as quiet (default 0.1)")
    p.add_argument("--floors", default=os.path.join(ROOT, "build", "bench", "bench_floors"),
                   help="bench_floors executable whose rates give each config's floor ('' for none)")
    p.add_argument("--json", default="", help="write the results as JSON to this path")
    p.add_argument("--save", action="store_true", help="write bench/results/<machine>/<date>_peers[_quick].json and .md")
    p.add_argument("--machine", default="", help="machine folder name under bench/results (default from the CPU)")
    p.add_argument("--results-dir", default=os.path.join(ROOT, "bench", "results"), help="root of saved results")
    args = p.parse_args(argv)

    configs = [c.strip().upper() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in configs if c not in CONFIGS]
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if bad or any(t not in TOOLS for t in tools) or args.iters < 1 or args.threads < 1 or args.repeat < 1:
        p.error(f"unknown config or tool, or a count below 1 (configs {configs}, tools {tools})")
    args.driver = os.path.abspath(args.driver)
    if "cuem" in tools and not (os.path.isfile(args.driver) and os.access(args.driver, os.X_OK)):
        print(f"compare_peers: no em_driver at {args.driver} (cmake --build build --target em_driver)", file=sys.stderr)
        return 2
    try:
        import sklearn
        import threadpoolctl  # noqa: F401  (the worker needs it)
    except ImportError as exc:
        print(f"compare_peers: scikit-learn and threadpoolctl are needed: {exc}", file=sys.stderr)
        return 2
    if args.iters == 1:
        print("compare_peers: --iters 1 gives whole-fit times (no difference can be taken)", file=sys.stderr)

    machine = cpu_description()
    versions = {"cuem": cuem_version(), "sklearn": sklearn.__version__, "numpy": np.__version__,
                "python": platform.python_version(), "compiler": compiler_version()}
    if "cuem" in tools:
        st = os.stat(args.driver)
        versions["em_driver"] = {"path": os.path.relpath(args.driver, ROOT),
                                 "built": datetime.datetime.fromtimestamp(st.st_mtime).astimezone().isoformat(timespec="seconds")}
    load0 = loadavg()
    start = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="cuem_peers_") as tmp:
        args.arma_binary = None
        if "armadillo" in tools:
            exe, how = build_armadillo(tmp, args.arma_cxxflags)
            if exe is None:
                print(f"compare_peers: Armadillo skipped: {how}", file=sys.stderr)
                tools = [t for t in tools if t != "armadillo"]
                versions["armadillo"] = f"skipped: {how.splitlines()[0]}"
            else:
                args.arma_binary = exe
                versions["armadillo_build"] = how.replace(tmp + "/", "").replace(HERE + "/", "scripts/")
                versions["armadillo_blas"] = linked_blas(exe)
        if "onedal" in tools:
            probe = subprocess.run([args.onedal_python, "-c", "import daal4py"], capture_output=True, text=True)
            if probe.returncode != 0:
                why = (probe.stderr.strip().splitlines() or ["no daal4py"])[-1]
                print(f"compare_peers: oneDAL skipped: {why} (pip install scikit-learn-intelex into "
                      f"{args.onedal_python}, or pass --onedal-python)", file=sys.stderr)
                tools = [t for t in tools if t != "onedal"]
                versions["onedal"] = f"skipped: {why}"
        print(f"cuem {versions['cuem']['version']} ({versions['cuem']['commit']}), scikit-learn {sklearn.__version__}, "
              f"numpy {np.__version__}; {machine['cpu_model']} ({machine['logical_cpus']} CPUs), load {load0}")
        print(f"{args.iters} iterations, {args.threads} threads, reg {args.reg:g}, repeat {args.repeat}"
              f"{', quick (N / 20)' if args.quick else ''}; s/iter = (T({args.iters}) - T(1)) / {max(1, args.iters - 1)}\n",
              flush=True)
        for name in configs:
            if args.wait_quiet > 0:
                busy = wait_for_quiet(args.wait_quiet, args.quiet_share)
                if busy is not None and busy >= args.quiet_share:
                    print(f"{'':<24} (the machine is still {100 * busy:.0f}% busy after waiting {args.wait_quiet:g} s)", flush=True)
            t0 = time.perf_counter()
            c0 = cpu_counters()
            entry = run_config(name, args, tools, tmp)
            entry["elapsed_seconds"] = round(time.perf_counter() - t0, 1)
            share = foreign_share(c0, cpu_counters(), time.perf_counter() - t0)
            entry["foreign_cpu_share"] = None if share is None else round(share, 3)
            if share is not None and share > args.foreign_flag:
                entry["notes"].append(f"{name}: other processes used {100 * share:.0f}% of the machine's CPU time "
                                      "while it ran: its timings are suspect, run it again on a quiet machine")
            results.append(entry)
            for line in table_lines([entry], tools)[(0 if len(results) == 1 else 2):]:
                print(line, flush=True)
            if entry["foreign_cpu_share"] is not None:
                print(f"{'':<24} (other processes took {100 * entry['foreign_cpu_share']:.1f}% of the CPU meanwhile)", flush=True)
    sk_any = next((e["tools"]["sklearn"] for e in results if "threadpools" in e["tools"].get("sklearn", {})), None)
    if sk_any:
        blas = [tp for tp in sk_any["threadpools"] if tp.get("user_api") == "blas"]
        versions["sklearn_blas"] = ", ".join(f"{tp.get('internal_api')} {tp.get('version')} {tp.get('architecture')} x{tp.get('num_threads')}" for tp in blas)
        versions["sklearn_env_openblas"] = sk_any.get("env_openblas")
    od_any = next((e["tools"]["onedal"] for e in results if "version" in e["tools"].get("onedal", {})), None)
    if od_any is not None:
        versions["onedal"] = od_any["version"]
    ar_any = next((e["tools"]["armadillo"] for e in results if "version" in e["tools"].get("armadillo", {})), None)
    if ar_any:
        versions["armadillo"] = ar_any["version"]
    versions["openblas_env_of_parent"] = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    date = datetime.date.today().isoformat()
    doc = {
        "schema": "cuem-compare-peers/1",
        "date": date,
        "timestamp": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": dict(machine, name=args.machine or machine_slug(machine), shared_development_machine=True, load_at_start=load0),
        "versions": versions,
        "settings": {"iters": args.iters, "threads": args.threads, "reg": args.reg, "seed": args.seed, "repeat": args.repeat,
                     "quick": args.quick, "rtol": args.rtol, "configs": configs, "tools": tools,
                     "timing": "(T(iters) - T(1)) / (iters - 1), fastest of repeat"},
        "results": results,
        "elapsed_seconds": round(time.perf_counter() - start, 1),
    }
    # The floors last, on the machine as the tools left it (a busy machine lowers the rates,
    # which only lowers the floors).
    rates = measure_floors(args.floors, args.threads) if args.floors and os.access(args.floors, os.X_OK) else None
    if rates:
        doc["floor_rates"] = rates
        for e in results:
            e["floor"] = config_floor(CONFIGS[e["config"]], e["n"], rates)
            cu = e["tools"].get("cuem", {}).get("seconds_per_iteration")
            if cu:
                e["floor"]["cuem_over_floor"] = cu / e["floor"]["floor_s"]
    elif args.floors:
        print(f"compare_peers: no floors: {args.floors} is missing or failed (cmake --build build --target bench_floors)",
              file=sys.stderr)
    problems = [x for e in results for x in e["problems"]]
    notes = [x for e in results for x in e["notes"]]
    print(f"\nsklearn BLAS: {versions.get('sklearn_blas')}; Armadillo {versions.get('armadillo')} "
          f"BLAS/LAPACK {versions.get('armadillo_blas')}")
    for e in results:
        a = e.get("cuem_vs_sklearn")
        if a:
            print(f"{e['config']}: cuem vs sklearn rel diff: lower bound {a['lower_bound']:.1e}, final loglik {a['final_ll']:.1e}, "
                  f"weights {a['weights']:.1e}, means {a['means']:.1e}, covariances {a['covariances']:.1e}")
    for line in notes:
        print(f"note: {line}")
    for line in problems:
        print(f"PROBLEM: {line}")
    print(f"time {doc['elapsed_seconds']:.1f} s; numbers from a shared {machine['logical_cpus']}-CPU machine, load {loadavg()}")
    text = json.dumps(doc, indent=1, default=float)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    if args.save:
        folder = os.path.join(args.results_dir, doc["machine"]["name"])
        os.makedirs(folder, exist_ok=True)
        stem = unused_stem(os.path.join(folder, f"{date}_peers{'_quick' if args.quick else ''}"))
        with open(stem + ".json", "w") as f:
            f.write(text + "\n")
        with open(stem + ".md", "w") as f:
            f.write(markdown_summary(doc, tools))
        print(f"saved {os.path.relpath(stem, ROOT)}.json and .md")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
