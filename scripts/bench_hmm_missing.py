#!/usr/bin/env python3
"""Seconds per Baum-Welch iteration: cuem.GaussianHMM on complete frames, on the same frames
with a fraction of the entries NaN (missing='marginalize'), cuem.GMMHMM (n_mix components a
state) on the complete frames, and hmmlearn's GMMHMM (implementation='scaling') on the first
--hmmlearn-frames frames, its time scaled to T (its cost is linear in T). Every fit starts
from the same parameters (init_params='') and runs --iters iterations; the time per
iteration is the fit's wall time over the iterations (the one-off work included).

Run: .venv/bin/python scripts/bench_hmm_missing.py [--T 200000] [--K 8] [--D 4] [--mix 2]
     [--missing 0.1] [--iters 5] [--threads 2] [--hmmlearn-frames 20000]
"""
import argparse
import time

import numpy as np

import cuem


def frames(T, K, D, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(K, D))
    X, s = np.empty((T, D)), 0
    states = np.empty(T, dtype=int)
    for t in range(T):
        if rng.random() > 0.95:
            s = int(rng.integers(K))
        states[t] = s
    X = means[states] + rng.normal(size=(T, D))
    return X, means


def timed(model, X):
    t0 = time.perf_counter()
    model.fit(X)
    return (time.perf_counter() - t0) / len(model.monitor_.history)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, default=200_000)
    ap.add_argument("--K", type=int, default=8)
    ap.add_argument("--D", type=int, default=4)
    ap.add_argument("--mix", type=int, default=2)
    ap.add_argument("--missing", type=float, default=0.1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hmmlearn-frames", type=int, default=20_000)
    a = ap.parse_args()
    X, means = frames(a.T, a.K, a.D)
    K, D, M = a.K, a.D, a.mix
    start = dict(startprob=np.full(K, 1.0 / K), transmat=np.full((K, K), 0.05 / (K - 1)) + np.eye(K) * (0.95 - 0.05 / (K - 1)))

    def gaussian(missing):
        m = cuem.GaussianHMM(n_components=K, covariance_type="diag", n_iter=a.iters, tol=0.0, init_params="",
                             device="cpu", n_threads=a.threads, missing=missing)
        m.n_features = D
        m.startprob_, m.transmat_ = start["startprob"], start["transmat"]
        m.means_, m.covars_ = means + 0.3, np.ones((K, D))
        return m

    def gmm(cls, **extra):
        m = cls(n_components=K, n_mix=M, covariance_type="diag", n_iter=a.iters, init_params="", **extra)
        m.startprob_, m.transmat_ = start["startprob"], start["transmat"]
        m.weights_ = np.full((K, M), 1.0 / M)
        m.means_ = np.stack([means + 0.3 + 0.2 * j for j in range(M)], axis=1)
        m.covars_ = np.ones((K, M, D))
        return m

    rng = np.random.default_rng(1)
    Xn = X.copy()
    Xn[rng.uniform(size=X.shape) < a.missing] = np.nan
    rows = {}
    rows["complete"] = timed(gaussian("error"), X)
    rows[f"{a.missing:.0%} NaN"] = timed(gaussian("marginalize"), Xn)
    rows[f"GMMHMM M={M}"] = timed(gmm(cuem.GMMHMM, tol=0.0, device="cpu", n_threads=a.threads), X)
    from hmmlearn import hmm

    n = a.hmmlearn_frames
    rows[f"hmmlearn GMMHMM M={M} (x{a.T / n:g})"] = timed(gmm(hmm.GMMHMM, tol=-np.inf, implementation="scaling"),
                                                         X[:n]) * a.T / n
    print(f"T={a.T} K={K} D={D} diag, {a.threads} threads, {a.iters} iterations")
    for name, sec in rows.items():
        print(f"{name:40s} {sec:9.4f} s/iteration  ({sec / rows['complete']:.2f}x complete)")


if __name__ == "__main__":
    main()
