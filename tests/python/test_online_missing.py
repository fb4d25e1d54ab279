"""partial_fit and incremental EM with missing entries (GaussianMixture(missing='marginalize')):
stepwise EM over batches with NaN ends near the batch fit's optimum, a first step from given
parameters is one EM step of the batch fit, data without NaN take the complete path, and
incremental EM over NaN data reaches batch EM's optimum."""
import numpy as np
import pytest

import cuem


def blobs_with_holes(seed, n, rate):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 1.0, -1.0], [2.0, 7.0, 3.0]])
    X = np.vstack([rng.normal(c, [1.0, 0.7, 1.2], (n, 3)) for c in centres])
    X = X[rng.permutation(len(X))]
    X[rng.random(X.shape) < rate] = np.nan
    return X


X = blobs_with_holes(0, 2000, 0.15)


def test_partial_fit_with_missing_ends_near_the_batch_optimum():
    best = cuem.GaussianMixture(3, missing="marginalize", tol=1e-10, max_iter=2000, random_state=0).fit(X)
    for decay in (0.6, 1.0):
        gm = cuem.GaussianMixture(3, missing="marginalize", learning_decay=decay, random_state=0)
        rng = np.random.default_rng(1)
        for _ in range(5):
            order = rng.permutation(len(X))
            for start in range(0, len(X), 200):
                gm.partial_fit(X[order[start:start + 200]])
        assert gm.n_steps_ == 5 * 30
        # Scored by the same estimator (observed entries only), per point.
        assert best.score(X) - 3e-3 < gm.score(X) <= best.score(X) + 1e-9, decay


def test_first_partial_fit_from_given_parameters_is_one_em_step():
    start = cuem.GaussianMixture(3, tol=1e-10, max_iter=2000, random_state=0).fit(np.nan_to_num(X[:300]))
    init = dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)
    batch = X[:1000]
    one_step = cuem.GaussianMixture(3, missing="marginalize", max_iter=1, tol=0.0, **init).fit(batch)
    online = cuem.GaussianMixture(3, missing="marginalize", **init).partial_fit(batch)
    np.testing.assert_allclose(online.means_, one_step.means_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(online.covariances_, one_step.covariances_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(online.weights_, one_step.weights_, rtol=1e-12, atol=1e-12)


def test_partial_fit_without_nan_is_the_complete_path():
    complete = np.nan_to_num(X[:2000])
    a = cuem.GaussianMixture(3, missing="marginalize", random_state=4)
    b = cuem.GaussianMixture(3, random_state=4)
    for start in range(0, 2000, 500):
        a.partial_fit(complete[start:start + 500])
        b.partial_fit(complete[start:start + 500])
    assert np.array_equal(a.means_, b.means_) and np.array_equal(a.covariances_, b.covariances_)


def test_partial_fit_missing_bad_batches_leave_the_state():
    gm = cuem.GaussianMixture(3, missing="marginalize", random_state=0)
    with pytest.raises(ValueError):  # fewer informative rows than components in the first batch
        gm.partial_fit(np.full((5, 3), np.nan))
    assert not hasattr(gm, "means_")
    gm.partial_fit(X[:500])
    means = gm.means_.copy()
    with pytest.raises(ValueError):  # a batch with nothing observed
        gm.partial_fit(np.full((4, 3), np.nan))
    assert np.array_equal(gm.means_, means) and gm.n_steps_ == 1
    with pytest.raises(ValueError):  # still refused with the default policy
        cuem.GaussianMixture(3).partial_fit(X[:500])


@pytest.mark.parametrize("blocks", [3, 10])
def test_incremental_em_with_missing_reaches_the_batch_optimum(blocks):
    common = dict(missing="marginalize", tol=1e-13, max_iter=5000, random_state=0)
    batch = cuem.GaussianMixture(3, **common).fit(X)
    inc = cuem.GaussianMixture(3, incremental_blocks=blocks, **common).fit(X)
    assert inc.converged_
    assert abs(inc.lower_bound_ - batch.lower_bound_) < 1e-8
    bounds = np.asarray(inc.lower_bounds_)
    assert (np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])).all()
    assert inc.n_iter_ < batch.n_iter_
