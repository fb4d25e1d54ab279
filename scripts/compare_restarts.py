#!/usr/bin/env python3
"""Restarts, cuem against scikit-learn: the distribution of one restart's lower bound.

For small real data sets that ship with scikit-learn (z-scored; digits reduced to 10
principal components), K above the number of classes and full covariances, both fit
S single-restart k-means-initialised mixtures: cuem as one `cuem fit --n-init S`, whose
trace holds every restart's final bound, and scikit-learn as GaussianMixture(K,
random_state=s) for s in 0..S-1. Printed per case: the mean single-restart bound of
each with its standard error, their difference in standard errors, and the mean best of
10 (restarts taken in groups of 10 in order).

    python3 scripts/compare_restarts.py --cuem build/cuem [--seeds 100] [--cases wine:6,iris:6]

The random streams differ (cuem's counter-based generator, numpy's Mersenne twister), so
only the distributions are comparable, not restart by restart.
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

DEFAULT_CASES = "iris:6,wine:6,wine:10,breast_cancer:4,breast_cancer:8,digits10:15,digits10:25"


def load(name):
    from sklearn import datasets
    from sklearn.decomposition import PCA

    if name == "digits10":
        x = datasets.load_digits().data
        sd = x.std(0)
        x = (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)
        x = PCA(10, svd_solver="full").fit_transform(x)
    else:
        x = getattr(datasets, "load_" + name)().data
    return (x - x.mean(0)) / x.std(0)


def cuem_bounds(cuem, x, k, seeds, seed0=0, extra=()):
    """Every restart's final lower bound from one `cuem fit --n-init seeds`."""
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "x.csv")
        trace = os.path.join(tmp, "trace.csv")
        np.savetxt(data, x, delimiter=",", fmt="%.17g")
        env = dict(os.environ, LC_ALL="C")
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        cmd = [cuem, "fit", data, "-k", str(k), "--covariance", "full", "--n-init", str(seeds), "--seed",
               str(seed0), "--header", "no", "--threads", "1", "--trace", trace, "-q", *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr}")
        last = {}
        with open(trace) as f:
            for row in csv.DictReader(f):
                last[int(row["init"])] = float(row["mean_log_likelihood"])
    if sorted(last) != list(range(seeds)):
        raise RuntimeError(f"the trace has restarts {sorted(last)[:5]}..., expected 0..{seeds - 1}")
    return np.array([last[i] for i in range(seeds)])


def sklearn_bounds(x, k, seeds, seed0=0):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    out = []
    # One thread: on data this small, KMeans' OpenMP threads cost more than they give
    # (ten times more on a busy machine).
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for s in range(seed0, seed0 + seeds):
            out.append(GaussianMixture(k, covariance_type="full", random_state=s).fit(x).lower_bound_)
    return np.array(out)


def summary(v):
    """Mean and its standard error."""
    return v.mean(), v.std(ddof=1) / np.sqrt(len(v))


def best_of(v, n):
    """The best of each group of n consecutive restarts."""
    g = len(v) // n
    return v[: g * n].reshape(g, n).max(axis=1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cuem", required=True, help="path of the cuem command-line binary")
    p.add_argument("--seeds", type=int, default=100, help="restarts per side and case")
    p.add_argument("--cases", default=DEFAULT_CASES, help="NAME:K,... (iris, wine, breast_cancer, digits10)")
    p.add_argument("--device", default="cpu", help="cuem --device")
    args = p.parse_args(argv)
    print(f"{'case':18s} {'cuem single':>18s} {'sklearn single':>18s} {'diff/SE':>8s} "
          f"{'cuem best-of-10':>18s} {'sklearn best-of-10':>18s} {'diff/SE':>8s}")
    for case in args.cases.split(","):
        name, k = case.split(":")
        x = load(name)
        cu = cuem_bounds(args.cuem, x, int(k), args.seeds, extra=("--device", args.device))
        sk = sklearn_bounds(x, int(k), args.seeds)
        row = [f"{name}:K={k}"]
        for a, b in ((cu, sk), (best_of(cu, 10), best_of(sk, 10))):
            (ma, sa), (mb, sb) = summary(a), summary(b)
            row += [f"{ma:9.4f} ±{sa:.4f}", f"{mb:9.4f} ±{sb:.4f}", f"{(ma - mb) / np.hypot(sa, sb):+8.2f}"]
        print(f"{row[0]:18s} {row[1]:>18s} {row[2]:>18s} {row[3]:>8s} {row[4]:>18s} {row[5]:>18s} {row[6]:>8s}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
