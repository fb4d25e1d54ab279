#!/usr/bin/env python3
"""Compares cuem's EM with scikit-learn's GaussianMixture from the same start.

For every dataset and covariance type, both fits start from the same initial
parameters (weights_init, means_init, precisions_init; n_init=1), so EM is
deterministic and the two must agree to rounding: weights, means, covariances,
precision Cholesky factors, the lower bound and the per-iteration log-likelihood
trace to a relative tolerance (default 1e-8), n_iter and converged exactly.

cuem is run through tests/tools/em_driver (built as the em_driver target):

    python3 scripts/compare_sklearn.py --driver build/tests/em_driver

Prints one row per case and ends with 'N passed, N failed'; exits 1 on any
disagreement or failure, 0 otherwise.

Relative difference of an array: max |cuem - sklearn| / max |sklearn| (the norm of
the array, so small entries of a large array do not count on their own). For the
lower bound and the trace, a mean log-likelihood whose absolute error is what
matters, the denominator is max(|sklearn|, 1).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

try:
    import sklearn
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
except ImportError as exc:  # pragma: no cover - environment problem
    print(f"compare_sklearn: scikit-learn is needed: {exc}", file=sys.stderr)
    sys.exit(2)

COV_TYPES = ("full", "tied", "diag", "spherical")


# ---- datasets ---------------------------------------------------------------------------


def _blobs(rng, centers, sizes, scales):
    """Gaussian blobs around centers, each with its own random linear transform."""
    parts = []
    d = centers.shape[1]
    for c, n, s in zip(centers, sizes, scales):
        a = rng.normal(size=(d, d)) * 0.3 + np.eye(d)
        parts.append(c + s * rng.normal(size=(n, d)) @ a)
    x = np.concatenate(parts)
    rng.shuffle(x)
    return np.ascontiguousarray(x, dtype=np.float64)


def make_datasets():
    """(name, X, K, init scheme, tol, reg_covar, max_iter) of every case family."""
    out = []

    rng = np.random.default_rng(1)
    x = _blobs(rng, np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]), [600, 500, 400], [1.0, 1.5, 0.7])
    out.append(("separated_d2_k3", x, 3, "points", 1e-8, 1e-6, 200))

    rng = np.random.default_rng(2)
    x = _blobs(rng, rng.normal(scale=2.0, size=(4, 5)), [900, 800, 700, 600], [1.0, 1.2, 0.8, 1.0])
    out.append(("overlap_d5_k4", x, 4, "points", 1e-8, 1e-6, 200))
    out.append(("overlap_d5_k4_km", x, 4, "kmeans", 1e-6, 1e-4, 200))

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(-1.0, 1.0, size=(1200, 1)), rng.normal(2.5, 0.6, size=(800, 1))])
    rng.shuffle(x)
    out.append(("d1_k2", np.ascontiguousarray(x), 2, "points", 1e-8, 1e-6, 200))

    rng = np.random.default_rng(4)
    x = _blobs(rng, rng.normal(scale=3.0, size=(6, 8)), [700, 600, 700, 500, 800, 700], [1.0] * 6) + 100.0
    out.append(("offset100_d8_k6", x, 6, "points", 1e-8, 1e-6, 200))

    # One initial mean far from all data: its responsibilities underflow to exactly 0,
    # so N_k is scikit-learn's 10 * eps guard alone (weight ~1e-18, covariance reg_covar).
    rng = np.random.default_rng(5)
    x = _blobs(rng, np.array([[5.0, 5.0], [-5.0, 5.0]]), [700, 500], [1.0, 1.0])
    out.append(("empty_comp_d2_k3", x, 3, "points_far", 1e-8, 1e-6, 200))

    return out


# ---- initial parameters -----------------------------------------------------------------


def _precisions_from_covariances(covs, cov_type):
    """covs: K x D x D per-component covariances (or one D x D for tied)."""
    if cov_type == "full":
        return np.stack([np.linalg.inv(c) for c in covs])
    if cov_type == "tied":
        return np.linalg.inv(covs)
    if cov_type == "diag":
        return np.stack([1.0 / np.diag(c) for c in covs])
    return np.array([1.0 / np.mean(np.diag(c)) for c in covs])


def initial_parameters(x, k, scheme, cov_type, reg, seed):
    """weights (K), means (K x D), precisions (sklearn's precisions_init shape)."""
    n, d = x.shape
    if scheme in ("points", "points_far"):
        # K distinct data points as means, equal weights, the covariance of all data;
        # for points_far the last mean is 200 standard deviations away from the data.
        rng = np.random.default_rng(seed)
        means = x[rng.choice(n, size=k, replace=False)].copy()
        if scheme == "points_far":
            means[-1] = x.mean(axis=0) + 200.0 * x.std(axis=0)
        weights = np.full(k, 1.0 / k)
        cov = np.atleast_2d(np.cov(x, rowvar=False)) + reg * np.eye(d)
        covs = cov if cov_type == "tied" else np.stack([cov] * k)
    elif scheme == "kmeans":
        # Hard k-means labels; per-cluster means, weights and covariances.
        labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(x).labels_
        weights = np.array([np.mean(labels == j) for j in range(k)])
        means = np.stack([x[labels == j].mean(axis=0) for j in range(k)])
        per = [np.atleast_2d(np.cov(x[labels == j], rowvar=False, bias=True)) + reg * np.eye(d) for j in range(k)]
        if cov_type == "tied":
            covs = sum(w * c for w, c in zip(weights, per))
        else:
            covs = np.stack(per)
    else:
        raise ValueError(scheme)
    weights = weights / weights.sum()
    return weights, np.ascontiguousarray(means), np.ascontiguousarray(_precisions_from_covariances(covs, cov_type))


# ---- the two fits -----------------------------------------------------------------------


def fit_sklearn(x, k, cov_type, tol, reg, max_iter, w0, m0, p0):
    gm = GaussianMixture(
        n_components=k,
        covariance_type=cov_type,
        tol=tol,
        reg_covar=reg,
        max_iter=max_iter,
        n_init=1,
        weights_init=w0,
        means_init=m0,
        precisions_init=p0,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(x)
    return {
        "converged": bool(gm.converged_),
        "n_iter": int(gm.n_iter_),
        "lower_bound": float(gm.lower_bound_),
        "weights": np.ravel(gm.weights_),
        "means": np.ravel(gm.means_),
        "covariances": np.ravel(gm.covariances_),
        "precisions_cholesky": np.ravel(gm.precisions_cholesky_),
        "trace": np.asarray(getattr(gm, "lower_bounds_", []), dtype=np.float64),
    }


def read_driver_result(path):
    result = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            name, count = fields[0], int(fields[1])
            values = np.array([float(v) for v in fields[2:]], dtype=np.float64)
            if values.size != count:
                raise RuntimeError(f"driver output line '{name}' has {values.size} values, expected {count}")
            result[name] = values
    for name in ("converged", "n_iter", "lower_bound", "weights", "means", "covariances", "precisions_cholesky"):
        if name not in result:
            raise RuntimeError(f"driver output lacks '{name}'")
    for name in ("converged", "n_iter", "lower_bound", "n_decreases", "max_decrease"):
        if name in result:
            result[name] = result[name][0]
    result["converged"] = bool(result["converged"])
    result["n_iter"] = int(result["n_iter"])
    result["lower_bound"] = float(result["lower_bound"])
    return result


def fit_cuem(driver, tmp, x, k, cov_type, tol, reg, max_iter, w0, m0, p0, device, timeout):
    files = {}
    for name, arr in (("data", x), ("weights", w0), ("means", m0), ("precisions", p0)):
        path = os.path.join(tmp, f"{name}.bin")
        np.ascontiguousarray(arr, dtype="<f8").tofile(path)
        files[name] = path
    out = os.path.join(tmp, "result.txt")
    if os.path.exists(out):
        os.remove(out)
    n, d = x.shape
    cmd = [
        driver,
        "--cov", cov_type,
        "--k", str(k),
        "--tol", repr(tol),
        "--reg", repr(reg),
        "--max-iter", str(max_iter),
        "--data", files["data"],
        "--n", str(n),
        "--d", str(d),
        "--weights", files["weights"],
        "--means", files["means"],
        "--precisions", files["precisions"],
        "--out", out,
    ]
    if device:
        cmd += ["--device", device]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"driver exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}\n  command: {' '.join(cmd)}")
    return read_driver_result(out)


# ---- comparison -------------------------------------------------------------------------


def rel_diff(a, b, floor=1e-300):
    """max |a - b| / max(floor, max |b|); inf on a shape mismatch or a non-finite value."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(floor, float(np.max(np.abs(b)))))


# A component whose expected count N_k = weight * N is below this is empty: its mean is
# then whatever the 10 * eps guard makes of a 0 / 0. scikit-learn computes
# sum_n r_nk x_n / (N_k + 10 eps), which is 0 when N_k is 0; an implementation that
# accumulates about a shift c (as DESIGN.md asks) gets c + sum_n r_nk (x_n - c) /
# (N_k + 10 eps), which is c. Both are arbitrary, so by default such means are left out
# of the comparison (and reported in the notes); --strict-empty compares them too.
EMPTY_NK = 1e-6


def empty_components(sk, n):
    return np.flatnonzero(sk["weights"] * n < EMPTY_NK)


def compare(sk, cu, rtol, n, strict_empty=False):
    empty = [] if strict_empty else empty_components(sk, n)
    keep = np.setdiff1d(np.arange(sk["weights"].size), empty)
    d = sk["means"].size // max(1, sk["weights"].size)
    cu_means, sk_means = cu["means"], sk["means"]
    if cu_means.size == sk_means.size:
        cu_means = cu_means.reshape(-1, d)[keep]
        sk_means = sk_means.reshape(-1, d)[keep]
    diffs = {
        "w": rel_diff(cu["weights"], sk["weights"]),
        "mu": rel_diff(cu_means, sk_means),
        "cov": rel_diff(cu["covariances"], sk["covariances"]),
        "pchol": rel_diff(cu["precisions_cholesky"], sk["precisions_cholesky"]),
        "lb": abs(cu["lower_bound"] - sk["lower_bound"]) / max(1.0, abs(sk["lower_bound"])),
    }
    problems = [f"{name} rel diff {v:.3g} > {rtol:g}" for name, v in diffs.items() if not v <= rtol]
    if sk["trace"].size and "trace" in cu:
        t = rel_diff(cu["trace"], sk["trace"], floor=1.0)
        diffs["trace"] = t
        if not t <= rtol:
            if cu["trace"].size != sk["trace"].size:
                problems.append(f"trace length {cu['trace'].size} != {sk['trace'].size}")
            else:
                problems.append(f"trace rel diff {t:.3g} > {rtol:g}")
    if cu["n_iter"] != sk["n_iter"]:
        problems.append(f"n_iter {cu['n_iter']} != {sk['n_iter']}")
    if cu["converged"] != sk["converged"]:
        problems.append(f"converged {cu['converged']} != {sk['converged']}")
    return diffs, problems


def borderline_note(sk, tol):
    """Says when sklearn's last change sits so near tol that rounding may flip n_iter."""
    t = sk["trace"]
    if t.size >= 2:
        change = abs(t[-1] - t[-2])
        if abs(change - tol) <= 1e-6 * tol + 1e-12 * max(1.0, abs(t[-1])):
            return f"last |change| {change:.6g} is within rounding of tol {tol:g}"
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--driver", required=True, help="path of the em_driver executable")
    parser.add_argument("--rtol", type=float, default=1e-8, help="relative tolerance (default 1e-8)")
    parser.add_argument("--device", default="", help="passed to em_driver --device (default: its own, cpu)")
    parser.add_argument("--only", default="", help="run only datasets whose name contains this")
    parser.add_argument("--strict-empty", action="store_true", help="compare the means of empty components too")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per driver run")
    args = parser.parse_args(argv)

    driver = os.path.abspath(args.driver)
    if not (os.path.isfile(driver) and os.access(driver, os.X_OK)):
        print(f"compare_sklearn: no executable driver at {driver}", file=sys.stderr)
        return 2

    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, driver {driver}, rtol {args.rtol:g}")
    header = (
        f"{'dataset':<18} {'cov':<9} {'N':>5} {'D':>2} {'K':>2} {'iter sk/cu':>10} {'conv':>5} "
        f"{'lower bound sklearn':>22} {'lower bound cuem':>22} "
        f"{'w':>8} {'mu':>8} {'cov':>8} {'pchol':>8} {'lb':>8} {'trace':>8}  result"
    )
    print(header)
    print("-" * len(header))

    passed = failed = 0
    failures = []
    notes = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cuem_compare_") as tmp:
        for di, (name, x, k, scheme, tol, reg, max_iter) in enumerate(make_datasets()):
            if args.only and args.only not in name:
                continue
            n, d = x.shape
            for ci, cov_type in enumerate(COV_TYPES):
                w0, m0, p0 = initial_parameters(x, k, scheme, cov_type, reg, seed=100 + di)
                label = f"{name:<18} {cov_type:<9} {n:>5} {d:>2} {k:>2}"
                try:
                    sk = fit_sklearn(x, k, cov_type, tol, reg, max_iter, w0, m0, p0)
                except Exception as exc:  # sklearn itself failed: a broken case, not cuem's
                    failed += 1
                    failures.append(f"{name}/{cov_type}: sklearn failed: {exc}")
                    print(f"{label} sklearn failed: {exc}")
                    continue
                try:
                    cu = fit_cuem(driver, tmp, x, k, cov_type, tol, reg, max_iter, w0, m0, p0, args.device, args.timeout)
                except Exception as exc:
                    failed += 1
                    failures.append(f"{name}/{cov_type}: {exc}")
                    print(f"{label} {sk['n_iter']:>4}/{'-':<5} cuem failed")
                    continue
                diffs, problems = compare(sk, cu, args.rtol, n, args.strict_empty)
                ok = not problems
                passed += ok
                failed += not ok
                if not ok:
                    failures.append(f"{name}/{cov_type}: " + "; ".join(problems))
                for j in [] if args.strict_empty else empty_components(sk, n):
                    if cu["means"].size == sk["means"].size:
                        notes.append(
                            f"{name}/{cov_type}: component {j} is empty (weight {sk['weights'][j]:.3g}); "
                            f"mean not compared: sklearn {np.array2string(sk['means'].reshape(k, d)[j], precision=6)}, "
                            f"cuem {np.array2string(cu['means'].reshape(k, d)[j], precision=6)}"
                        )
                note = borderline_note(sk, tol)
                if note:
                    notes.append(f"{name}/{cov_type}: {note}")
                if cu.get("n_decreases", 0):
                    notes.append(
                        f"{name}/{cov_type}: cuem reports {int(cu['n_decreases'])} log-likelihood decreases "
                        f"(largest {cu.get('max_decrease', float('nan')):.3g})"
                    )
                conv = ("y" if sk["converged"] else "n") + "/" + ("y" if cu["converged"] else "n")
                its = f"{sk['n_iter']}/{cu['n_iter']}"
                cols = " ".join(f"{diffs.get(c, float('nan')):>8.1e}" for c in ("w", "mu", "cov", "pchol", "lb", "trace"))
                print(
                    f"{label} {its:>10} {conv:>5} {sk['lower_bound']:>22.15g} {cu['lower_bound']:>22.15g} "
                    f"{cols}  {'ok' if ok else 'FAIL'}",
                    flush=True,
                )

    elapsed = time.perf_counter() - start
    if notes:
        print("\nnotes:")
        for line in notes:
            print(f"  {line}")
    if failures:
        print("\nfailures:")
        for line in failures:
            print(f"  {line}")
    print(f"\ntime {elapsed:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
