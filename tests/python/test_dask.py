"""cuem.dask.GaussianMixture on a dask.distributed LocalCluster (processes: 2 workers of one
thread): agreement with cuem.GaussianMixture on the computed array from the same start,
independence of chunk placement and of the number of workers, the evaluations, the
k-means initialisation's statistics against NumPy, bad input, and a worker killed during
a fit (the fit recovers, bitwise)."""
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import cuem
from cuem import _cuem

da = pytest.importorskip("dask.array", reason="dask is not installed (scripts/test.sh installs dask[distributed])")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
import cuem.dask  # noqa: E402  (imports dask)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def blobs(seed, n, d=3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (3, d))
    X = np.vstack([rng.normal(c, 1.0 + 0.3 * i, (n, d)) for i, c in enumerate(centres)])
    return X[rng.permutation(len(X))] + 100.0  # an offset, as real data have


X = blobs(0, 400)  # 1200 x 3
N, D = X.shape
K = 3


def start(covariance_type, seed=1):
    """weights_init, means_init and precisions_init near, not at, the data's clusters."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.3, 0.3, 0.4])
    means = X[rng.choice(N, K, replace=False)]
    precisions = {
        "full": np.stack([np.eye(D) * (0.5 + 0.1 * k) + 0.05 for k in range(K)]),
        "tied": np.eye(D) * 0.4 + 0.05,
        "diag": np.array([[0.5, 0.6, 0.7], [0.4, 0.5, 0.6], [0.3, 0.4, 0.8]]),
        "spherical": np.array([0.5, 0.6, 0.7]),
    }[covariance_type]
    return dict(weights_init=weights, means_init=means, precisions_init=precisions)


CHUNKINGS = {
    "one": (N,),
    "even": (300, 300, 300, 300),
    "uneven": (1, 499, 0, 200, 500),
}

FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def local(covariance_type, **params):
    return cuem.GaussianMixture(K, covariance_type=covariance_type, **params).fit(X)


def distributed_fit(array, covariance_type, **params):
    return cuem.dask.GaussianMixture(K, covariance_type=covariance_type, **params).fit(array)


def assert_same_fit(a, b, rtol):
    for name in FITTED:
        if rtol == 0:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        else:
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol, err_msg=name)
    assert a.n_iter_ == b.n_iter_
    assert a.converged_ == b.converged_
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol, atol=0)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=rtol, atol=0)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("chunking", sorted(CHUNKINGS))
def test_agrees_with_local_from_the_same_start(client, covariance_type, chunking):
    params = dict(start(covariance_type), tol=1e-9, max_iter=5)
    ref = local(covariance_type, **params)
    got = distributed_fit(da.from_array(X, chunks=(CHUNKINGS[chunking], D)), covariance_type, **params)
    assert ref.n_iter_ == 5  # iterations enough for rounding to grow, were it to
    assert_same_fit(got, ref, 1e-12)


@pytest.mark.parametrize("covariance_type", ("diag", "spherical"))
def test_one_chunk_is_the_local_fit_bitwise(client, covariance_type):
    # One chunk: the same sums in the same order, and the start's arithmetic is the library's.
    params = dict(start(covariance_type), tol=1e-9, max_iter=5)
    got = distributed_fit(da.from_array(X, chunks=(N, D)), covariance_type, **params)
    assert_same_fit(got, local(covariance_type, **params), 0)


def test_converges_as_the_local_estimator(client):
    params = dict(start("full"), tol=1e-3, max_iter=100, random_state=3)
    ref = local("full", **params)
    got = cuem.dask.GaussianMixture(K, **params)
    labels = got.fit_predict(da.from_array(X, chunks=(400, D)))
    assert ref.converged_ and got.converged_
    assert_same_fit(got, ref, 1e-12)
    np.testing.assert_array_equal(labels.compute(), ref.predict(X))
    drawn, ref_drawn = got.sample(50), ref.sample(50)  # the local sample() on the fitted parameters
    np.testing.assert_array_equal(drawn[1], ref_drawn[1])
    np.testing.assert_allclose(drawn[0], ref_drawn[0], rtol=1e-9)


def test_sample_weight_agrees_with_local(client):
    w = np.random.default_rng(5).integers(0, 4, N).astype(np.float64)
    params = dict(start("full"), tol=1e-9, max_iter=5)
    ref = cuem.GaussianMixture(K, **params).fit(X, sample_weight=w)
    got = cuem.dask.GaussianMixture(K, **params).fit(
        da.from_array(X, chunks=(300, D)), sample_weight=da.from_array(w, chunks=200)
    )
    assert_same_fit(got, ref, 1e-12)
    Xd = da.from_array(X, chunks=(300, D))
    wd = da.from_array(w, chunks=300)
    assert got.score(Xd, sample_weight=wd) == pytest.approx(ref.score(X, sample_weight=w), rel=1e-12)
    assert got.bic(Xd, sample_weight=wd) == pytest.approx(ref.bic(X, sample_weight=w), rel=1e-12)


def test_warm_start_continues_as_local(client):
    params = dict(start("diag"), tol=1e-9, max_iter=3, warm_start=True)
    ref = cuem.GaussianMixture(K, covariance_type="diag", **params)
    got = cuem.dask.GaussianMixture(K, covariance_type="diag", **params)
    Xd = da.from_array(X, chunks=(400, D))
    for _ in range(2):
        ref.fit(X)
        got.fit(Xd)
    assert_same_fit(got, ref, 1e-12)


def test_independent_of_placement_and_number_of_workers(client):
    params = dict(start("full"), tol=1e-9, max_iter=4)
    workers = sorted(client.scheduler_info()["workers"])
    assert len(workers) == 2
    base = da.from_array(X, chunks=(200, D))
    fits = []
    for i, placement in enumerate(([workers[0]], [workers[1]], None)):
        copy = base.map_blocks(np.copy, name=f"placement-{i}")  # its own keys, so its own data
        placed = client.persist(copy, workers=placement)
        distributed.wait(placed)
        if placement is not None:
            holders = {w for ws in client.who_has(placed).values() for w in ws}
            assert holders == set(placement)
        fits.append(distributed_fit(placed, "full", **params))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as one, distributed.Client(one, set_as_default=False) as c1:
        with c1.as_current():
            fits.append(distributed_fit(base, "full", **params))
    for f in fits[1:]:
        assert_same_fit(f, fits[0], 0)


@pytest.mark.parametrize("covariance_type", ("full", "spherical"))
def test_evaluations_match_local(client, covariance_type):
    params = dict(start(covariance_type), tol=1e-9, max_iter=2)
    got = distributed_fit(da.from_array(X, chunks=(300, D)), covariance_type, **params)
    ref = cuem.GaussianMixture(K, covariance_type=covariance_type, **params)
    ref.fit(X)
    for name in FITTED:  # evaluate the local estimator on the dask fit's parameters
        setattr(ref, name, getattr(got, name))
    Y = blobs(7, 100)
    Yd = da.from_array(Y, chunks=((50, 0, 250),) + ((1, 2),))  # columns in two chunks, rechunked
    labels = got.predict(Yd)
    assert isinstance(labels, da.Array) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels.compute(), ref.predict(Y))
    proba = got.predict_proba(Yd)
    assert isinstance(proba, da.Array) and proba.shape == (300, K)
    np.testing.assert_allclose(proba.compute(), ref.predict_proba(Y), rtol=1e-12, atol=1e-15)
    log_p = got.score_samples(Yd)
    assert isinstance(log_p, da.Array)
    np.testing.assert_allclose(log_p.compute(), ref.score_samples(Y), rtol=1e-12)
    assert isinstance(got.score(Yd), float)
    assert got.score(Yd) == pytest.approx(ref.score(Y), rel=1e-12)
    assert got.bic(Yd) == pytest.approx(ref.bic(Y), rel=1e-12)
    assert got.aic(Yd) == pytest.approx(ref.aic(Y), rel=1e-12)


def test_float32_chunks_agree_with_local_float32(client):
    # float32 data are read in place by both, computed in float64.
    X32 = X.astype(np.float32)
    params = dict(start("diag"), tol=1e-9, max_iter=4)
    ref = cuem.GaussianMixture(K, covariance_type="diag", **params).fit(X32)
    got = cuem.dask.GaussianMixture(K, covariance_type="diag", **params).fit(da.from_array(X32, chunks=(500, D)))
    assert got.means_.dtype == np.float64
    assert_same_fit(got, ref, 1e-12)


def test_dask_dataframe_values(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    frame = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]), npartitions=3)
    params = dict(start("tied"), tol=1e-9, max_iter=4)
    assert_same_fit(distributed_fit(frame, "tied", **params), local("tied", **params), 1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_partition_statistics_against_numpy(covariance_type):
    # The k-means start's M-step input: hard-assignment sums of one chunk, checked through
    # the library's M-step against the partition's moments computed directly.
    rng = np.random.default_rng(3)
    Y = rng.normal(size=(500, 4)) + 50
    w = rng.uniform(0.5, 2, 500)
    centres = Y[:K] + 0.1
    stats = cuem.dask._block_partition(Y, w, (0, 500), centres, covariance_type, True)
    model = _cuem.m_step(stats, 1e-6)
    labels = np.argmin(((Y[:, None, :] - centres[None]) ** 2).sum(2), axis=1)
    nk = np.array([w[labels == k].sum() for k in range(K)])
    means = np.array([np.average(Y[labels == k], axis=0, weights=w[labels == k]) for k in range(K)])
    covs = np.array([np.cov(Y[labels == k].T, aweights=w[labels == k], bias=True) for k in range(K)])
    np.testing.assert_allclose(model["weights"], nk / nk.sum(), rtol=1e-12)
    np.testing.assert_allclose(model["means"], means, rtol=1e-12)
    expected = {
        "full": covs + 1e-6 * np.eye(4),
        "tied": np.tensordot(nk / nk.sum(), covs, 1) + 1e-6 * np.eye(4),
        "diag": np.diagonal(covs, axis1=1, axis2=2) + 1e-6,
        "spherical": np.diagonal(covs, axis1=1, axis2=2).mean(1) + 1e-6,
    }[covariance_type]
    np.testing.assert_allclose(model["covariances"], expected, rtol=1e-10)


def test_random_responsibilities_depend_on_the_global_row_only():
    whole = cuem.dask._random_responsibilities(9, 0, 100, 6)
    np.testing.assert_array_equal(cuem.dask._random_responsibilities(9, 37, 63, 6), whole[37:])
    np.testing.assert_allclose(whole.sum(axis=1), 1.0, rtol=1e-15)
    assert not np.array_equal(cuem.dask._random_responsibilities(10, 0, 100, 6), whole)


@pytest.mark.parametrize("covariance_type", ("full", "diag"))
def test_random_statistics_against_numpy(covariance_type):
    rng = np.random.default_rng(4)
    Y = rng.normal(size=(300, 3)) + 20
    w = rng.uniform(0, 2, 300)
    shift = np.full((K, 3), 20.0)
    stats = cuem.dask._block_random(Y, w, (50, 350), 7, shift, covariance_type, True)
    g = w[:, None] * cuem.dask._random_responsibilities(7, 50, 300, K)
    np.testing.assert_allclose(stats["nk"], g.sum(0), rtol=1e-12)
    np.testing.assert_allclose(stats["s1"], g.T @ (Y - 20), rtol=1e-12)
    diff = Y - 20
    expected = np.stack([(diff * g[:, [k]]).T @ diff for k in range(K)])
    if covariance_type == "diag":
        expected = np.diagonal(expected, axis1=1, axis2=2)
    np.testing.assert_allclose(stats["s2"], expected.ravel(), rtol=1e-12)


@pytest.mark.parametrize("init_params", ("kmeans", "k-means++", "random"))
def test_default_inits_fit_and_do_not_depend_on_chunking(client, init_params):
    Y = blobs(11, 300, d=2)  # well separated: the inits reach the local fit's optimum
    params = dict(init_params=init_params, random_state=4, tol=1e-6, max_iter=100, covariance_type="full")
    fits = [cuem.dask.GaussianMixture(K, **params).fit(da.from_array(Y, chunks=(c, 2))) for c in (900, 97)]
    np.testing.assert_allclose(fits[1].means_, fits[0].means_, rtol=1e-9)
    assert fits[1].lower_bound_ == pytest.approx(fits[0].lower_bound_, rel=1e-10)
    ref = cuem.GaussianMixture(K, random_state=0, tol=1e-6, max_iter=100).fit(Y)
    assert fits[0].converged_
    assert fits[0].lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-6)
    order = np.argsort(fits[0].means_[:, 0])
    np.testing.assert_allclose(fits[0].means_[order], ref.means_[np.argsort(ref.means_[:, 0])], rtol=1e-4)


def test_n_init_keeps_the_best_and_is_reproducible(client):
    Xd = da.from_array(X, chunks=(300, D))
    params = dict(n_init=3, init_params="random_from_data", random_state=2, max_iter=4)
    a = cuem.dask.GaussianMixture(K, **params).fit(Xd)
    b = cuem.dask.GaussianMixture(K, **params).fit(Xd)
    assert_same_fit(a, b, 0)
    first = cuem.dask.GaussianMixture(K, **dict(params, n_init=1)).fit(Xd)  # restart 0 alone
    assert a.lower_bound_ >= first.lower_bound_
    assert a.n_estep_passes_ >= a.n_iter_


def test_bad_input(client):
    gm = cuem.dask.GaussianMixture(K, max_iter=3)
    with pytest.raises(TypeError, match="dask array"):
        gm.fit(X)
    with pytest.raises(ValueError, match="0 sample"):
        gm.fit(da.zeros((0, 3), chunks=(10, 3)))
    bad = X.copy()
    bad[701, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(in chunk 2, rows 600-899\)"):
        gm.fit(da.from_array(bad, chunks=(300, D)))
    with pytest.raises(ValueError, match="non-negative"):
        gm.fit(da.from_array(X, chunks=(300, D)), sample_weight=-da.ones(N, chunks=300))
    gm.fit(da.from_array(X, chunks=(300, D)))
    with pytest.raises(ValueError, match="X has 2 features"):
        gm.predict(da.from_array(X[:, :2], chunks=(300, 2)))
    with pytest.raises(ValueError, match="NaN"):  # found by the library on the worker
        gm.score_samples(da.from_array(bad, chunks=(300, D))).compute()


def test_statistics_cross_processes_cheaply(client):
    model = start("full")
    prec = model["precisions_init"]
    stats = _cuem.statistics(
        X, "full", model["weights_init"], model["means_init"], np.linalg.inv(prec),
        np.linalg.inv(np.linalg.cholesky(np.linalg.inv(prec))).transpose(0, 2, 1),
    )
    arrays = sum(v.nbytes for v in stats.values() if isinstance(v, np.ndarray))
    assert len(pickle.dumps(stats, protocol=5)) < arrays + 1024
    back = pickle.loads(pickle.dumps(stats, protocol=5))
    for key, value in stats.items():
        np.testing.assert_array_equal(back[key], value)


def test_worker_killed_mid_fit_recovers(client):
    # Documented outcome (docs/DISTRIBUTED.md): the nanny restarts the worker, Dask recomputes
    # the lost chunks from their graph and re-runs the lost tasks, and the fit ends as an
    # uninterrupted one, bitwise.
    Xd = da.from_array(X, chunks=(200, D))
    params = dict(start("full"), tol=1e-9, max_iter=6)
    reference = distributed_fit(Xd, "full", **params)
    pids = client.run(os.getpid)
    victim = pids[sorted(pids)[0]]
    killed = []

    def kill_after_second(init, iteration, lower_bound, change):
        if iteration == 2:
            os.kill(victim, signal.SIGKILL)
            killed.append(time.time())

    began = time.time()
    got = distributed_fit(Xd, "full", callback=kill_after_second, **params)
    assert killed, "the callback did not run"
    assert time.time() - began < 60
    assert_same_fit(got, reference, 0)
    client.wait_for_workers(2, timeout=60)  # the nanny's new worker, for the tests after


def test_worker_killed_holding_scattered_data_fails_clearly(client):
    # Documented outcome: chunks scattered from the client have no graph; once their only
    # holder is lost the fit stops with a RuntimeError that says so, without hanging.
    workers = sorted(client.scheduler_info()["workers"])
    pid = client.run(os.getpid)[workers[0]]
    parts = client.scatter([X[i : i + 300] for i in range(0, N, 300)], workers=[workers[0]])
    Xd = da.concatenate([da.from_delayed(p, shape=(300, D), dtype=np.float64) for p in parts])

    def kill_after_second(init, iteration, lower_bound, change):
        if iteration == 2:
            os.kill(pid, signal.SIGKILL)

    began = time.time()
    with pytest.raises(RuntimeError, match="no task graph to recompute them from"):
        distributed_fit(Xd, "full", callback=kill_after_second, tol=0, max_iter=6, **start("full"))
    assert time.time() - began < 60
    client.wait_for_workers(2, timeout=60)


def test_import_and_no_client():
    # In a fresh interpreter: `import cuem` leaves dask unimported; a fit without a Client
    # says what to do.
    code = (
        "import sys, cuem\n"
        "assert 'dask' not in sys.modules\n"
        "import dask.array as da, cuem.dask\n"
        "assert cuem.dask.GaussianMixture is sys.modules['cuem.dask'].GaussianMixture\n"
        "try:\n"
        "    cuem.dask.GaussianMixture(2).fit(da.ones((10, 2), chunks=5))\n"
        "except RuntimeError as e:\n"
        "    assert 'needs a dask.distributed Client' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no error without a Client')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_callback_false_stops(client, capsys):
    seen = []

    def stop_at_three(init, iteration, lower_bound, change):
        seen.append(iteration)
        return iteration < 3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = distributed_fit(da.from_array(X, chunks=(300, D)), "diag", callback=stop_at_three, tol=0, verbose=2,
                             verbose_interval=2, **start("diag"))
    assert seen == [1, 2, 3] and gm.n_iter_ == 3
    printed = capsys.readouterr().out
    assert "Initialization 0" in printed and "Iteration 2\t time lapse" in printed  # scikit-learn's verbose lines
