"""Incremental EM (GaussianMixture(incremental_blocks=B)), stepwise EM
(GaussianMixture.partial_fit) and the statistics functions a distributed driver uses
(cuem._cuem.statistics, add_statistics, m_step), against scikit-learn and plain NumPy."""
import warnings

import numpy as np
import pytest

import cuem
from cuem import _cuem

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture as SkGaussianMixture  # noqa: E402


def three_blobs(seed, n):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 7.0]])
    X = np.vstack([rng.normal(c, [1.0, 0.7], (n, 2)) for c in centres])
    return X[rng.permutation(len(X))]


X3 = three_blobs(0, 2000)


def log_joint(X, weights, means, covariances):
    """log w_k + log N(x | mu_k, Sigma_k) for full covariances, by NumPy."""
    out = np.empty((len(X), len(weights)))
    for k, (w, mu, cov) in enumerate(zip(weights, means, covariances)):
        L = np.linalg.cholesky(cov)
        z = np.linalg.solve(L, (X - mu).T)
        out[:, k] = np.log(w) - 0.5 * (X.shape[1] * np.log(2 * np.pi) + 2 * np.log(np.diag(L)).sum()) - 0.5 * (z * z).sum(0)
    return out


def responsibilities(X, weights, means, covariances):
    lj = log_joint(X, weights, means, covariances)
    lj -= lj.max(1, keepdims=True)
    r = np.exp(lj)
    return r / r.sum(1, keepdims=True)


# ---- incremental EM ------------------------------------------------------------------


def test_one_block_is_plain_em_bitwise():
    a = cuem.GaussianMixture(3, random_state=1, tol=1e-8, max_iter=500).fit(X3)
    b = cuem.GaussianMixture(3, random_state=1, tol=1e-8, max_iter=500, incremental_blocks=1).fit(X3)
    assert np.array_equal(a.means_, b.means_) and np.array_equal(a.covariances_, b.covariances_)
    assert a.lower_bounds_ == b.lower_bounds_


@pytest.mark.parametrize("blocks", [4, 10])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_incremental_reaches_the_batch_optimum(blocks, covariance_type):
    batch = SkGaussianMixture(3, covariance_type=covariance_type, tol=1e-12, max_iter=10000, random_state=0).fit(X3)
    gm = cuem.GaussianMixture(
        3, covariance_type=covariance_type, tol=1e-12, max_iter=10000, random_state=0, incremental_blocks=blocks
    ).fit(X3)
    assert gm.converged_
    bounds = np.asarray(gm.lower_bounds_)
    assert len(bounds) == 1 + (gm.n_iter_ - 1) * blocks  # one entry per block step after the first pass
    assert (np.diff(bounds) >= -1e-12).all(), np.diff(bounds).min()
    assert gm.score(X3) == pytest.approx(batch.score(X3), abs=1e-8)
    assert gm.lower_bound_ == pytest.approx(batch.score(X3), abs=1e-8)


def test_incremental_option_errors():
    with pytest.raises(ValueError, match="incremental_blocks"):
        cuem.GaussianMixture(2, incremental_blocks=0).fit(X3)
    with pytest.raises(ValueError, match="cannot be combined"):
        cuem.GaussianMixture(2, incremental_blocks=3, acceleration="squarem").fit(X3)
    with pytest.raises(ValueError, match="more than the"):
        cuem.GaussianMixture(2, incremental_blocks=10).fit(X3[:5])


# ---- incremental EM's incremental first pass -----------------------------------------


def plain_first_pass(X, w, blocks, tile, weights, means, covariances, reg_covar=1e-6):
    """Neal and Hinton's first pass by NumPy: block b's responsibilities (times the sample
    weights) under the parameters so far, then scikit-learn's M-step (N_k + 10 eps) on
    the rows of blocks 0..b, from the ceil(B / 5)-th block on. Blocks as fit() interleaves
    them: tiles of `tile` consecutive rows, tile t in block t mod B."""
    block_of_row = (np.arange(len(X)) // tile) % blocks
    resp, rows = [], []
    eps10 = 10 * np.finfo(float).eps
    for b in range(blocks):
        idx = np.flatnonzero(block_of_row == b)
        rows.append(idx)
        resp.append(responsibilities(X[idx], weights, means, covariances) * w[idx, None])
        if b + 1 < (blocks + 4) // 5:
            continue
        R, seen = np.vstack(resp), X[np.concatenate(rows)]
        nk = R.sum(0) + eps10
        means = R.T @ seen / nk[:, None]
        covariances = np.array([((R[:, k, None] * (seen - means[k])).T @ (seen - means[k])) / nk[k]
                                + reg_covar * np.eye(X.shape[1]) for k in range(len(nk))])
        weights = nk / nk.sum()
    return weights, means, covariances


@pytest.mark.parametrize("blocks", [4, 23])
@pytest.mark.parametrize("weighted", [False, True])
def test_incremental_first_pass_is_the_plain_loop(weighted, blocks):
    X = X3[:1003]  # blocks of unequal size
    w = np.random.default_rng(5).uniform(0.2, 3.0, len(X)) if weighted else np.ones(len(X))
    start_w = np.full(3, 1 / 3)
    start_mu = np.array([[1.0, 1.0], [5.0, 0.0], [3.0, 6.0]])
    start_cov = np.array([np.eye(2) * 2.0] * 3)
    init = dict(weights_init=start_w, means_init=start_mu, precisions_init=np.linalg.inv(start_cov))
    kw = dict(precision="float64", max_iter=1, tol=0.0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = cuem.GaussianMixture(3, incremental_blocks=blocks, first_pass="incremental", **kw).fit(
            X, sample_weight=w if weighted else None)
        batch = cuem.GaussianMixture(3, **kw).fit(X, sample_weight=w if weighted else None)
    tile = {4: 15, 23: 2}[blocks]  # 1003 // (16 B), the last tile shorter
    weights, means, covariances = plain_first_pass(X, w, blocks, tile, start_w, start_mu, start_cov)
    assert len(gm.lower_bounds_) == blocks
    np.testing.assert_allclose(gm.weights_, weights, rtol=1e-10)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-10)
    np.testing.assert_allclose(gm.covariances_, covariances, rtol=1e-10)
    assert np.abs(gm.means_ - batch.means_).max() > 1e-3  # the M-steps within the pass happened


def test_max_block_steps_stops_part_way_through_the_first_pass():
    X = X3[:1003]
    start_mu = np.array([[1.0, 1.0], [5.0, 0.0], [3.0, 6.0]])
    init = dict(weights_init=np.full(3, 1 / 3), means_init=start_mu,
                precisions_init=np.linalg.inv(np.array([np.eye(2) * 2.0] * 3)))
    kw = dict(precision="float64", max_iter=3, tol=0.0, incremental_blocks=10, first_pass="incremental", **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        every = cuem.GaussianMixture(3, **kw).fit(X)
        part = cuem.GaussianMixture(3, max_block_steps=4, **kw).fit(X)
        first = cuem.GaussianMixture(3, max_block_steps=10, **kw).fit(X)
        one_pass = cuem.GaussianMixture(3, **dict(kw, max_iter=1)).fit(X)
    assert len(every.lower_bounds_) == 30 and len(part.lower_bounds_) == 4
    assert list(part.lower_bounds_) == list(every.lower_bounds_[:4])
    assert not part.converged_
    np.testing.assert_array_equal(first.means_, one_pass.means_)  # B steps are the first pass
    assert np.abs(part.means_ - first.means_).max() > 1e-6  # stopped part-way, after its M-steps began
    with pytest.raises(ValueError, match="max_block_steps"):
        cuem.GaussianMixture(3, max_block_steps=-1).fit(X)
    with pytest.raises(ValueError, match="max_block_steps"):
        cuem.GaussianMixture(3, max_block_steps=2).fit(X)  # needs incremental_blocks > 1


@pytest.mark.parametrize("blocks", [4, 10])
def test_incremental_first_pass_reaches_the_batch_optimum(blocks):
    batch = SkGaussianMixture(3, tol=1e-12, max_iter=10000, random_state=0).fit(X3)
    gm = cuem.GaussianMixture(3, tol=1e-12, max_iter=10000, random_state=0, incremental_blocks=blocks,
                              first_pass="incremental").fit(X3)
    assert gm.converged_
    bounds = np.asarray(gm.lower_bounds_)
    assert len(bounds) == gm.n_iter_ * blocks  # the first pass has one entry per block too
    assert (np.diff(bounds[blocks - 1:]) >= -1e-12).all(), np.diff(bounds[blocks - 1:]).min()
    assert gm.score(X3) == pytest.approx(batch.score(X3), abs=1e-8)


def test_incremental_first_pass_one_block_and_errors():
    a = cuem.GaussianMixture(3, random_state=1, tol=1e-8, max_iter=500).fit(X3)
    b = cuem.GaussianMixture(3, random_state=1, tol=1e-8, max_iter=500, first_pass="incremental").fit(X3)
    assert np.array_equal(a.means_, b.means_) and a.lower_bounds_ == b.lower_bounds_
    assert cuem.GaussianMixture(2).first_pass == "full"
    with pytest.raises(ValueError, match="first_pass"):
        cuem.GaussianMixture(2, incremental_blocks=3, first_pass="half").fit(X3)


# ---- stepwise EM -----------------------------------------------------------------------


def batches(X, size, epochs, seed):
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        Xs = X[rng.permutation(len(X))]
        for start in range(0, len(Xs), size):
            yield Xs[start : start + size]


@pytest.mark.parametrize("decay", [0.6, 0.8, 1.0])
def test_partial_fit_reaches_batch_em_within_a_margin(decay):
    """Shuffled batches of 200 for 5 epochs: the mean log-likelihood ends within 2e-3 nats
    per point of batch EM's optimum (scikit-learn's fit), never above it by more than
    rounding."""
    batch = SkGaussianMixture(3, tol=1e-10, max_iter=1000, random_state=0).fit(X3)
    gm = cuem.GaussianMixture(3, random_state=0, learning_decay=decay)
    steps = 0
    for B in batches(X3, 200, 5, seed=3):
        gm.partial_fit(B)
        steps += 1
    assert gm.n_steps_ == steps and gm.n_points_seen_ == 5 * len(X3)
    assert not gm.converged_
    best = batch.score(X3)
    assert best - 2e-3 < gm.score(X3) <= best + 1e-9


def test_partial_fit_with_rho_one_over_t_is_the_running_mean():
    """learning_decay 1, offset 0: the statistics are the running mean of each batch's
    statistics (per point) under the parameters of its step, so the model after step t is
    the M-step of that mean; the batches' statistics by NumPy."""
    start = SkGaussianMixture(3, random_state=0, max_iter=2).fit(X3[:300])
    gm = cuem.GaussianMixture(
        3,
        learning_decay=1.0,
        learning_offset=0.0,
        reg_covar=1e-6,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
    )
    weights, means, covs = start.weights_, start.means_, start.covariances_
    nk = np.zeros(3)
    s1 = np.zeros((3, 2))
    s2 = np.zeros((3, 2, 2))
    for t, B in enumerate(batches(X3, 250, 1, seed=5), start=1):
        r = responsibilities(B, weights, means, covs)
        nk += (r.sum(0) / len(B) - nk) / t
        s1 += ((r.T @ B) / len(B) - s1) / t
        s2 += (np.einsum("nk,ni,nj->kij", r, B, B) / len(B) - s2) / t
        gm.partial_fit(B)
        mu = s1 / nk[:, None]
        cov = s2 / nk[:, None, None] - np.einsum("ki,kj->kij", mu, mu) + 1e-6 * np.eye(2)
        np.testing.assert_allclose(gm.weights_, nk / nk.sum(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gm.means_, mu, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gm.covariances_, cov, rtol=1e-8, atol=1e-10)
        weights, means, covs = gm.weights_, gm.means_, gm.covariances_
    assert t == 24


def test_partial_fit_bad_batches():
    gm = cuem.GaussianMixture(2, random_state=0)
    gm.partial_fit(X3[:100])
    means = gm.means_.copy()
    with pytest.raises(ValueError, match="features"):
        gm.partial_fit(X3[:50, :1])
    with pytest.raises(ValueError):
        gm.partial_fit(np.empty((0, 2)))
    bad = X3[:10].copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError):
        gm.partial_fit(bad)
    assert gm.n_steps_ == 1 and np.array_equal(gm.means_, means)
    gm.partial_fit(X3[100:101])  # a later batch may be a single row
    assert gm.n_steps_ == 2
    for decay in (0.5, 1.5):
        with pytest.raises(ValueError, match="learning_decay"):
            cuem.GaussianMixture(2, learning_decay=decay).partial_fit(X3)
    with pytest.raises(ValueError, match="learning_offset"):
        cuem.GaussianMixture(2, learning_offset=-1.0).partial_fit(X3)
    # The variational mixture has no online form: no partial_fit (scikit-learn's signal).
    assert not hasattr(cuem.BayesianGaussianMixture(n_components=2), "partial_fit")
    # The mixture that marginalises missing entries has one (tests/python/test_online_missing.py).
    assert hasattr(cuem.GaussianMixture(2, missing="marginalize"), "partial_fit")
    assert hasattr(cuem.GaussianMixture(2), "partial_fit")


def test_partial_fit_after_fit_continues_from_the_fit():
    gm = cuem.GaussianMixture(3, random_state=0, tol=1e-10, max_iter=1000).fit(X3)
    before = gm.score(X3)
    gm.partial_fit(X3)
    assert gm.n_steps_ == 1
    # The first step (rho = 1) on all the data is an EM step from the fitted optimum: it
    # stays there (a start of its own, k-means on the batch, would be far from it).
    assert gm.score(X3) == pytest.approx(before, abs=1e-9)


def test_pickled_after_partial_fit_continues_from_its_parameters():
    import pickle

    gm = cuem.GaussianMixture(3, random_state=0)
    for B in batches(X3, 500, 1, seed=1):
        gm.partial_fit(B)
    again = pickle.loads(pickle.dumps(gm))
    np.testing.assert_array_equal(again.means_, gm.means_)
    assert again.score(X3) == gm.score(X3)
    again.partial_fit(X3)  # one EM step from the pickled parameters
    assert again.n_steps_ == 1 and again.score(X3) >= gm.score(X3) - 1e-12


# ---- the statistics API ------------------------------------------------------------------


def test_statistics_add_and_m_step():
    gm = cuem.GaussianMixture(3, random_state=0, max_iter=3).fit(X3)
    model = (gm.covariance_type, gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)
    parts = [_cuem.statistics(np.ascontiguousarray(X3[i : i + 1500]), *model) for i in range(0, len(X3), 1500)]
    total = parts[0]
    for p in parts[1:]:
        total = _cuem.add_statistics(total, p)
    assert total["n_points"] == len(X3) and total["weight"] == len(X3)
    step = _cuem.m_step(total, 1e-6)
    r = responsibilities(X3, gm.weights_, gm.means_, gm.covariances_)
    nk = r.sum(0)
    mu = (r.T @ X3) / nk[:, None]
    np.testing.assert_allclose(step["weights"], nk / nk.sum(), rtol=1e-10)
    np.testing.assert_allclose(step["means"], mu, rtol=1e-10, atol=1e-12)
    ll = np.log(np.exp(log_joint(X3, gm.weights_, gm.means_, gm.covariances_)).sum(1)).sum()
    assert total["log_likelihood"] == pytest.approx(ll, rel=1e-10)
