"""scikit-learn's BayesianGaussianMixture and cuem's side by side, per iteration.

    .venv/bin/python scripts/bench_bayesian.py [--n 100000] [--d 128] [--k 64]
        [--types diag full] [--iterations 3] [--json OUT.json]
        [--to-convergence [--tol 1e-3] [--max-iter 1000] [--libraries cuem scikit-learn]]

Synthetic data (N x D, K Gaussian blobs, float64). Both libraries start from the same
random responsibilities (scikit-learn through its _initialize(X, resp) hook, cuem through
resp_init), so no k-means is timed and both run the same iterations (tol = 0). The time
per iteration is (t(1 + I iterations) - t(1 iteration)) / I for each library, which
leaves out the start (the statistics of the given responsibilities and the first
M-step) and the data's validation. The final lower bounds are printed side by side (they
agree to rounding). Both run on the CPU: scikit-learn through NumPy's BLAS, cuem on its
float64 CPU backend, with the threads each uses by default.

--to-convergence times whole fits from the same responsibilities to the tolerance (the
estimators' default 1e-3 on the bound's change) instead, and reports the iterations each
took, its wall time and its final bound; --libraries picks which run (scikit-learn's full
covariance fit takes about a minute an iteration at D = 128).
"""

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np
from sklearn.mixture import BayesianGaussianMixture

import cuem


class _SklearnFromResp(BayesianGaussianMixture):
    resp_init = None

    def _initialize_parameters(self, X, random_state, xp=None):
        self._initialize(X, self.resp_init)


def make_data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    labels = rng.integers(0, k, size=n)
    X = centres[labels] + rng.normal(size=(n, d))
    resp = rng.uniform(size=(n, k))
    resp /= resp.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(X), resp


def time_fit(make, X, resp, iterations):
    est = make(iterations)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(est, _SklearnFromResp):
            est.resp_init = resp
            est.fit(X)
        else:
            est._fit(X, None, resp_init=resp)
    return time.perf_counter() - t0, est


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--types", nargs="+", default=["diag", "full"])
    p.add_argument("--iterations", type=int, default=3, help="timed iterations beyond the first")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--to-convergence", action="store_true", help="time whole fits to --tol instead")
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--libraries", nargs="+", default=["cuem", "scikit-learn"])
    a = p.parse_args()

    X, resp = make_data(a.n, a.d, a.k)
    if a.to_convergence:
        rows = to_convergence(a, X, resp)
        write_json(a, rows)
        return
    rows = []
    for cov in a.types:
        common = dict(n_components=a.k, covariance_type=cov, tol=0.0)
        makers = {
            "scikit-learn": lambda it: _SklearnFromResp(max_iter=it, **common),
            "cuem": lambda it: cuem.BayesianGaussianMixture(max_iter=it, **common),
        }
        row = {"covariance_type": cov, "n": a.n, "d": a.d, "k": a.k, "iterations": a.iterations}
        for name, make in makers.items():
            t1, _ = time_fit(make, X, resp, 1)
            tn, est = time_fit(make, X, resp, 1 + a.iterations)
            row[name] = {
                "seconds_1": t1,
                "seconds_n": tn,
                "per_iteration": (tn - t1) / a.iterations,
                "lower_bound": float(est.lower_bound_),
            }
            print(f"{cov:5s} {name:12s} 1 it {t1:8.3f} s, {1 + a.iterations} its {tn:8.3f} s, "
                  f"{row[name]['per_iteration']:8.3f} s/iteration, lower bound {est.lower_bound_:.10e}", flush=True)
        row["ratio"] = row["scikit-learn"]["per_iteration"] / row["cuem"]["per_iteration"]
        lb_s, lb_c = row["scikit-learn"]["lower_bound"], row["cuem"]["lower_bound"]
        row["lower_bound_rel_diff"] = abs(lb_s - lb_c) / abs(lb_s)
        print(f"{cov:5s} scikit-learn / cuem per iteration: {row['ratio']:.2f}; lower bounds differ by "
              f"{row['lower_bound_rel_diff']:.2e} relative", flush=True)
        rows.append(row)

    write_json(a, rows)


def to_convergence(a, X, resp):
    rows = []
    for cov in a.types:
        common = dict(n_components=a.k, covariance_type=cov, tol=a.tol, max_iter=a.max_iter)
        makers = {
            "scikit-learn": lambda it: _SklearnFromResp(**common),
            "cuem": lambda it: cuem.BayesianGaussianMixture(**common),
        }
        row = {"covariance_type": cov, "n": a.n, "d": a.d, "k": a.k, "tol": a.tol, "max_iter": a.max_iter}
        for name in a.libraries:
            seconds, est = time_fit(makers[name], X, resp, a.max_iter)
            row[name] = {"seconds": seconds, "n_iter": int(est.n_iter_), "converged": bool(est.converged_),
                         "lower_bound": float(est.lower_bound_)}
            print(f"{cov:5s} {name:12s} {seconds:9.3f} s, {est.n_iter_} iterations, converged {est.converged_}, "
                  f"lower bound {est.lower_bound_:.10e}", flush=True)
        if "cuem" in row and "scikit-learn" in row:
            row["ratio"] = row["scikit-learn"]["seconds"] / row["cuem"]["seconds"]
            print(f"{cov:5s} scikit-learn / cuem to convergence: {row['ratio']:.2f}", flush=True)
        rows.append(row)
    return rows


def write_json(a, rows):
    if a.json:
        meta = {
            "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "cuem": cuem.__version__,
            "numpy": np.__version__,
            "load_average_at_end": os.getloadavg(),
            "mode": "to convergence" if a.to_convergence else "per iteration",
        }
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
