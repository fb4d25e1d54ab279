"""cuem.dask.GaussianHMM and cuem.dask.GMMHMM on a dask.distributed LocalCluster (2 worker
processes of one thread): from the same start, the fit of cuem.GaussianHMM (cuem.GMMHMM)
on the computed array, for every covariance type and several chunkings (one chunk: the
same bits); the start's pieces (uniform start and transitions, k-means means, the frames'
covariance) against NumPy; score, Viterbi and 'map' on dask arrays against the local
class; bad input."""
import numpy as np
import pytest

import cuem

da = pytest.importorskip("dask.array", reason="dask is not installed (scripts/test.sh installs dask[distributed])")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
import cuem.dask  # noqa: E402  (imports dask)

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
K, D = 3, 2


def sample_frames():
    """Frames of a 3-state chain, sequences of 1 to 300 frames (lengths crossing chunks)."""
    truth = cuem.GaussianHMM(K, covariance_type="diag", init_params="")
    truth.startprob_ = np.array([0.5, 0.3, 0.2])
    truth.transmat_ = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    truth.means_ = np.array([[0.0, 0.0], [4.0, 4.0], [-4.0, 3.0]]) + 50.0
    truth.covars_ = np.array([[1.0, 0.5], [0.7, 1.2], [1.5, 0.4]])
    lengths = [1, 300, 2, 57, 120, 33, 200, 87, 1, 99]
    X = np.vstack([truth.sample(n, random_state=i)[0] for i, n in enumerate(lengths)])
    return X, lengths


X, LENGTHS = sample_frames()
N = X.shape[0]
CHUNKINGS = {"one": (N,), "even": (300, 300, 300, N - 900), "uneven": (1, 499, 0, 200, N - 700)}


def started(model, covariance_type):
    """A start near the truth, set by hand (init_params='')."""
    model.startprob_ = np.array([0.4, 0.3, 0.3])
    model.transmat_ = np.full((K, K), 0.1) + 0.7 * np.eye(K)
    model.means_ = np.array([[1.0, -1.0], [3.0, 5.0], [-3.0, 2.0]]) + 50.0
    model.covars_ = {
        "full": np.stack([np.eye(D) * (1.0 + 0.2 * k) + 0.1 for k in range(K)]),
        "tied": np.eye(D) * 1.5 + 0.2,
        "diag": np.array([[1.0, 1.1], [0.9, 1.3], [1.2, 0.8]]),
        "spherical": np.array([1.0, 1.2, 0.9]),
    }[covariance_type]
    return model


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("chunking", sorted(CHUNKINGS))
def test_same_start_is_the_local_fit(client, covariance_type, chunking):
    params = dict(covariance_type=covariance_type, n_iter=6, tol=0.0, init_params="", means_weight=0.5,
                  transmat_prior=1.2, precision="float64")
    local = started(cuem.GaussianHMM(K, **params), covariance_type).fit(X, LENGTHS)
    dist = started(cuem.dask.GaussianHMM(K, **params), covariance_type).fit(
        da.from_array(X, chunks=(CHUNKINGS[chunking], D)), LENGTHS)
    assert len(dist.monitor_.history) == len(local.monitor_.history) == 6
    if chunking == "one":  # one chunk: the local E-step itself
        np.testing.assert_array_equal(dist.means_, local.means_)
        np.testing.assert_array_equal(dist._covars_, local._covars_)
        np.testing.assert_array_equal(dist.transmat_, local.transmat_)
        assert list(dist.monitor_.history) == list(local.monitor_.history)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        assert rel(getattr(dist, name), getattr(local, name)) < 1e-10, name
    assert rel(list(dist.monitor_.history), list(local.monitor_.history)) < 1e-12


def test_convergence_stops_where_the_local_fit_does(client):
    params = dict(covariance_type="diag", n_iter=100, tol=1e-2, init_params="", precision="float64")
    local = started(cuem.GaussianHMM(K, **params), "diag").fit(X, LENGTHS)
    dist = started(cuem.dask.GaussianHMM(K, **params), "diag").fit(da.from_array(X, chunks=(400, D)), LENGTHS)
    assert dist.monitor_.converged and local.monitor_.converged
    assert dist.monitor_.iter == local.monitor_.iter < 100
    assert rel(dist.means_, local.means_) < 1e-10


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_the_start(client, covariance_type):
    """One iteration from init_params='stmc' against the M-step from the start NumPy
    computes: uniform start and transitions, the fit's k-means centres, np.cov + min_covar."""
    m = cuem.dask.GaussianHMM(K, covariance_type=covariance_type, n_iter=1, random_state=3, precision="float64")
    arr = da.from_array(X, chunks=(500, D))
    client_data = cuem.dask._DaskData(client, arr.rechunk({0: cuem.dask._sequence_chunks(
        np.concatenate([[0], np.cumsum(LENGTHS)]), arr.chunks[0])}), None)
    arrays = m._dask_start(client, client_data, D, np.random.default_rng(cuem.dask._seed_from(3)))
    start = dict(zip(("covariance_type", "startprob", "transmat", "means", "covars"), arrays))
    np.testing.assert_array_equal(start["startprob"], np.full(K, 1 / K))
    np.testing.assert_array_equal(start["transmat"], np.full((K, K), 1 / K))
    cv = np.cov(X.T) + 1e-3 * np.eye(D)
    want = {"full": np.tile(cv, (K, 1, 1)), "tied": cv, "diag": np.tile(np.diag(cv), (K, 1)),
            "spherical": np.full(K, cv.mean())}[covariance_type]
    assert rel(start["covars"], want) < 1e-12
    # The means: k-means centres, each the mean of the frames nearest to it.
    labels = np.argmin(((X[:, None, :] - start["means"][None]) ** 2).sum(axis=2), axis=1)
    for k in range(K):
        assert rel(start["means"][k], X[labels == k].mean(axis=0)) < 1e-3
    # The fit's first iteration is the M-step from that start.
    fitted = m.fit(arr, LENGTHS)
    local = cuem.GaussianHMM(K, covariance_type=covariance_type, n_iter=1, init_params="", precision="float64")
    local.startprob_, local.transmat_, local.means_ = start["startprob"], start["transmat"], start["means"]
    local._covars_ = start["covars"]
    local.fit(X, LENGTHS)
    assert rel(fitted.means_, local.means_) < 1e-10
    assert rel(fitted.covars_, local.covars_) < 1e-10


def test_score_and_decode_on_dask_arrays(client):
    m = started(cuem.dask.GaussianHMM(K, covariance_type="full", n_iter=3, init_params="", precision="float64"),
                "full").fit(da.from_array(X, chunks=(250, D)), LENGTHS)
    local = cuem.GaussianHMM(K, covariance_type="full", precision="float64", init_params="")
    local.startprob_, local.transmat_, local.means_, local._covars_ = m.startprob_, m.transmat_, m.means_, m._covars_
    arr = da.from_array(X, chunks=(333, D))
    assert abs(m.score(arr, LENGTHS) - local.score(X, LENGTHS)) < 1e-9 * abs(local.score(X, LENGTHS))
    assert m.score(X, LENGTHS) == local.score(X, LENGTHS)  # NumPy input: the local method
    log_prob, states = m.decode(arr, LENGTHS)
    want_lp, want = local.decode(X, LENGTHS)
    assert isinstance(states, da.Array)
    np.testing.assert_array_equal(states.compute(), want)
    assert abs(log_prob - want_lp) < 1e-9 * abs(want_lp)
    np.testing.assert_array_equal(m.predict(arr, LENGTHS).compute(), want)
    # 'map' (the estimator's algorithm, or named): the local class's states and log probability.
    map_lp, map_states = m.decode(arr, LENGTHS, algorithm="map")
    want_lp, want = local.decode(X, LENGTHS, algorithm="map")
    np.testing.assert_array_equal(map_states.compute(), want)
    assert abs(map_lp - want_lp) < 1e-9 * abs(want_lp)
    m.algorithm = "map"
    np.testing.assert_array_equal(m.predict(arr, LENGTHS).compute(), want)
    with pytest.raises(ValueError, match="Unknown decoder"):
        m.decode(arr, LENGTHS, algorithm="forward")
    bad = X.copy()
    bad[700, 1] = np.nan
    with pytest.raises(ValueError, match=r"rows \d+-\d+ of X \(the row below counts from"):
        m.score(da.from_array(bad, chunks=(333, D)), LENGTHS)


def test_a_state_without_weight_is_kept_with_the_local_warning(client):
    """A state whose density underflows at every frame: kept, and the local class's warning."""
    params = dict(covariance_type="diag", n_iter=2, tol=0.0, init_params="", precision="float64")

    def far(model):
        started(model, "diag")
        model.means_ = model.means_ + np.array([[0, 0], [0, 0], [1e4, 1e4]])
        return model

    with pytest.warns(cuem.ConvergenceWarning, match=r"state 2 \(0-based\) received no weight"):
        local = far(cuem.GaussianHMM(K, **params)).fit(X, LENGTHS)
    with pytest.warns(cuem.ConvergenceWarning, match=r"state 2 \(0-based\) received no weight"):
        dist = far(cuem.dask.GaussianHMM(K, **params)).fit(da.from_array(X, chunks=(400, D)), LENGTHS)
    assert rel(dist.means_, local.means_) < 1e-10


def test_bad_input(client):
    arr = da.from_array(X, chunks=(400, D))
    with pytest.raises(ValueError, match="lengths sum to"):
        cuem.dask.GaussianHMM(K).fit(arr, [5, 5])
    with pytest.raises(ValueError, match="is not distributed"):
        cuem.dask.GaussianHMM(K, acceleration="squarem").fit(arr, LENGTHS)
    with pytest.raises(ValueError, match="is not distributed"):
        cuem.dask.GaussianHMM(K, missing="marginalize").fit(arr, LENGTHS)
    bad = X.copy()
    bad[700, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        cuem.dask.GaussianHMM(K).fit(da.from_array(bad, chunks=(400, D)), LENGTHS)
    with pytest.raises(ValueError, match="more than the"):
        cuem.dask.GaussianHMM(N + 1).fit(arr, LENGTHS)
    with pytest.raises(ValueError, match="at least 2 frames"):
        cuem.dask.GaussianHMM(1).fit(da.from_array(X[:1], chunks=(1, D)))
    with pytest.raises(TypeError, match="use cuem.GaussianHMM"):
        cuem.dask.GaussianHMM(K).fit(X, LENGTHS)


def gmm_started(model, covariance_type, M=2):
    """A GMMHMM start near the truth: the Gaussian start's states, each split in two."""
    g = started(cuem.GaussianHMM(K, covariance_type="diag"), "diag")
    model.startprob_, model.transmat_ = g.startprob_, g.transmat_
    model.weights_ = np.full((K, M), 1.0 / M)
    model.means_ = np.stack([g.means_ + 0.5 * (m - 0.5) for m in range(M)], axis=1)
    model.covars_ = {
        "full": np.tile(np.eye(D) * 1.2, (K, M, 1, 1)),
        "tied": np.tile(np.eye(D) * 1.2, (K, 1, 1)),
        "diag": np.full((K, M, D), 1.2),
        "spherical": np.full((K, M), 1.2),
    }[covariance_type]
    return model


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("chunking", ("one", "uneven"))
def test_gmmhmm_same_start_is_the_local_fit(client, covariance_type, chunking):
    params = dict(n_mix=2, covariance_type=covariance_type, n_iter=4, tol=0.0, init_params="", precision="float64")
    local = gmm_started(cuem.GMMHMM(K, **params), covariance_type).fit(X, LENGTHS)
    dist = gmm_started(cuem.dask.GMMHMM(K, **params), covariance_type).fit(
        da.from_array(X, chunks=(CHUNKINGS[chunking], D)), LENGTHS)
    if chunking == "one":
        for name in ("startprob_", "transmat_", "weights_", "means_", "_covars_"):
            np.testing.assert_array_equal(getattr(dist, name), getattr(local, name), err_msg=name)
    for name in ("startprob_", "transmat_", "weights_", "means_", "_covars_"):
        assert rel(getattr(dist, name), getattr(local, name)) < 1e-10, name
    assert rel(list(dist.monitor_.history), list(local.monitor_.history)) < 1e-12
    arr = da.from_array(X, chunks=(300, D))
    assert abs(dist.score(arr, LENGTHS) - local.score(X, LENGTHS)) < 1e-9 * abs(local.score(X, LENGTHS))
    np.testing.assert_array_equal(dist.predict(arr, LENGTHS).compute(), local.predict(X, LENGTHS))


def test_gmmhmm_start_and_refusals(client):
    """From init_params 'stmcw': uniform start, transitions and weights, k-means means (K x M
    centres), the frames' covariance; the fit runs and improves the log-likelihood."""
    arr = da.from_array(X, chunks=(400, D))
    m = cuem.dask.GMMHMM(K, n_mix=2, covariance_type="diag", n_iter=5, tol=0.0, random_state=1, precision="float64")
    arrays = m._dask_start(client, cuem.dask._DaskData(client, arr.rechunk({0: cuem.dask._sequence_chunks(
        np.concatenate([[0], np.cumsum(LENGTHS)]), arr.chunks[0])}), None), D, np.random.default_rng(
        cuem.dask._seed_from(1)))
    _, startprob, transmat, weights, means, covars = arrays
    np.testing.assert_array_equal(weights, np.full((K, 2), 0.5))
    assert means.shape == (K, 2, D)
    assert rel(covars, np.tile(np.diag(np.cov(X.T) + 1e-3 * np.eye(D)), (K, 2, 1))) < 1e-12
    m.fit(arr, LENGTHS)
    assert m.monitor_.history[-1] > m.monitor_.history[0]
    with pytest.raises(TypeError, match="use cuem.GMMHMM"):
        cuem.dask.GMMHMM(K).fit(X, LENGTHS)
    with pytest.raises(ValueError, match="more than the"):
        cuem.dask.GMMHMM(K, n_mix=N).fit(arr, LENGTHS)
