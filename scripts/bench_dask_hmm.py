"""Seconds per Baum-Welch iteration of cuem.dask.GaussianHMM on a LocalCluster against
cuem.GaussianHMM on the same array in one process (bench/NOTES.md, "Dask HMM").

Issue 16's H2 shape by default (sequences of 1000 frames, K 16, D 8, full; --sequences
scales it), both from the same start with tol 0, so both run --iters iterations. A tiny
case (10 sequences of 100 frames) in the same number of chunks shows the cluster's
overhead an iteration. The first fit of each kind is a warm-up and not timed.

    .venv/bin/python scripts/bench_dask_hmm.py --sequences 1000 --chunks 8 --workers 2
"""
import argparse
import json
import time
import warnings

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--states", type=int, default=16)
    ap.add_argument("--covariance-type", default="full")
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="the local fit's threads")
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args()

    import dask.array as da
    import distributed

    import cuem
    import cuem.dask

    warnings.simplefilter("ignore")
    K, D = args.states, args.features
    rng = np.random.default_rng(0)
    out = {"args": vars(args), "cases": []}
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0") as cluster, \
            distributed.Client(cluster):
        for n_seq, T in ((10, 100), (args.sequences, args.frames)):
            X = rng.normal(size=(n_seq * T, D)) + rng.integers(0, 4, (n_seq * T, 1)) * 3.0
            lengths = [T] * n_seq
            Xd = da.from_array(X, chunks=(-(-len(X) // args.chunks), D)).persist()
            params = dict(covariance_type=args.covariance_type, n_iter=args.iters, tol=0.0, init_params="",
                          precision="float64")

            means0 = X[rng.choice(len(X), K, replace=False)].copy()
            cv = np.cov(X.T)
            covars0 = {"full": np.tile(cv, (K, 1, 1)), "tied": cv, "diag": np.tile(np.diag(cv), (K, 1)),
                       "spherical": np.full(K, np.diag(cv).mean())}[args.covariance_type]

            def started(m):
                m.startprob_ = np.full(K, 1.0 / K)
                m.transmat_ = np.full((K, K), 0.2 / (K - 1)) + (0.8 - 0.2 / (K - 1)) * np.eye(K)
                m.means_ = means0
                m.covars_ = covars0
                return m

            times = {}
            for name, fit in (("local", lambda: started(cuem.GaussianHMM(K, n_threads=args.threads, **params)).fit(X, lengths)),
                              ("dask", lambda: started(cuem.dask.GaussianHMM(K, **params)).fit(Xd, lengths))):
                fit()  # warm-up
                t0 = time.perf_counter()
                m = fit()
                times[name] = (time.perf_counter() - t0) / len(m.monitor_.history)
            case = {"sequences": n_seq, "frames": T, "seconds_per_iteration": times}
            out["cases"].append(case)
            print(json.dumps(case), flush=True)
    return out


if __name__ == "__main__":
    main()
