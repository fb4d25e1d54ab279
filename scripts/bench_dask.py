"""Seconds per EM iteration of cuem.dask.GaussianMixture on a LocalCluster against
cuem.GaussianMixture on the same array in one process (bench/NOTES.md, "Dask").

Both start from the same parameters with tol 0, so both run --iters iterations; the
tiny case (1000 rows in the same number of chunks) shows the per-iteration overhead of
the cluster (scheduling, the tree of additions, the round trip), the large one what is
left of it at size. The first fit of each kind is a warm-up and not timed.

    .venv/bin/python scripts/bench_dask.py --rows 200000 --chunks 8 --workers 2
"""
import argparse
import json
import time
import warnings

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--components", type=int, default=8)
    ap.add_argument("--covariance-type", default="full")
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()

    import dask.array as da
    import distributed

    import cuem
    import cuem.dask

    warnings.simplefilter("ignore")
    K, D = args.components, args.features
    rng = np.random.default_rng(0)
    precisions = {"full": np.stack([np.eye(D)] * K), "tied": np.eye(D), "diag": np.ones((K, D)),
                  "spherical": np.ones(K)}[args.covariance_type]
    out = {"args": vars(args), "cases": []}
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0") as cluster, \
            distributed.Client(cluster):
        for rows in (1000, args.rows):
            X = rng.normal(size=(rows, D)) + rng.integers(0, 4, (rows, 1)) * 3.0
            start = dict(weights_init=np.full(K, 1.0 / K), means_init=X[:K].copy(), precisions_init=precisions,
                         tol=0.0, max_iter=args.iters, covariance_type=args.covariance_type)
            Xd = da.from_array(X, chunks=(-(-rows // args.chunks), D)).persist()
            times = {}
            for name, fit in (("local", lambda: cuem.GaussianMixture(K, **start).fit(X)),
                              ("dask", lambda: cuem.dask.GaussianMixture(K, **start).fit(Xd))):
                fit()  # warm-up
                t0 = time.perf_counter()
                gm = fit()
                times[name] = (time.perf_counter() - t0) / gm.n_iter_
            case = {"rows": rows, "seconds_per_iteration": times}
            out["cases"].append(case)
            print(json.dumps(case), flush=True)
    return out


if __name__ == "__main__":
    main()
