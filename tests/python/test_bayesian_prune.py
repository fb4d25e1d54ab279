"""cuem.BayesianGaussianMixture's pruning (prune_threshold, prune_patience; beyond
scikit-learn, off by default): off, the fit is the default one bit for bit and agrees with
scikit-learn from the same responsibilities; on, ten components on three well-separated
clusters end as three at the clusters' centres."""

import numpy as np
import pytest

import cuem

CENTRES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


def _clusters(seed=11, per=200):
    rng = np.random.default_rng(seed)
    return np.concatenate([c + rng.normal(size=(per, 2)) for c in CENTRES])


def _estimator(**kw):
    params = dict(n_components=10, weight_concentration_prior=1e-3, max_iter=500, tol=1e-8, random_state=3)
    params.update(kw)
    return cuem.BayesianGaussianMixture(**params)


def test_off_is_bitwise_the_default_fit():
    X = _clusters()
    a = _estimator().fit(X)
    b = _estimator(prune_threshold=0.0, prune_patience=1).fit(X)
    assert a.n_components_ == b.n_components_ == 10
    assert a.lower_bounds_ == b.lower_bounds_
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)
    np.testing.assert_array_equal(b.kept_components_, np.arange(10))
    assert b.prunes_ == []


def test_off_agrees_with_sklearn_from_the_same_start():
    sklearn_mixture = pytest.importorskip("sklearn.mixture")

    class FromResp(sklearn_mixture.BayesianGaussianMixture):
        def _initialize_parameters(self, X, random_state, xp=None):
            self._initialize(X, resp)

    X = _clusters()
    rng = np.random.default_rng(5)
    resp = rng.uniform(size=(X.shape[0], 4))
    resp /= resp.sum(axis=1, keepdims=True)
    ours = cuem.BayesianGaussianMixture(n_components=4, max_iter=5, tol=0.0, prune_threshold=0.0)
    ours._fit(X, None, resp_init=resp)
    ref = FromResp(n_components=4, max_iter=5, tol=0.0).fit(X)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-8)
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-8)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("prior", ["dirichlet_process", "dirichlet_distribution"])
def test_ten_components_on_three_clusters_end_with_three(covariance_type, prior):
    X = _clusters()
    est = _estimator(covariance_type=covariance_type, weight_concentration_prior_type=prior,
                     prune_threshold=0.01, prune_patience=5).fit(X)
    assert est.n_components_ == 3
    assert est.means_.shape == (3, 2)
    assert est.weights_.shape == (3,)
    assert est.mean_precision_.shape == (3,)
    assert est.predict_proba(X).shape == (X.shape[0], 3)
    assert len(est.kept_components_) == 3
    removed = [k for _, ks in est.prunes_ for k in ks]
    assert sorted(removed + list(est.kept_components_)) == list(range(10))
    # one fitted mean near each centre (the sample mean's spread is about 0.07)
    dist = np.linalg.norm(est.means_[:, None, :] - CENTRES[None, :, :], axis=2)
    assert np.all((dist < 0.3).sum(axis=0) == 1), dist
    # the fit went on after the last prune, and the bound rose between iterations of the
    # same model (it may fall across a prune, where the model changes)
    last = est.prunes_[-1][0]
    assert est.n_iter_ > last + 1
    bounds = np.array(est.lower_bounds_)
    assert len(bounds) == est.n_iter_
    after_prune = {it for it, _ in est.prunes_}  # iteration it + 1 follows a prune at it
    for i in range(1, len(bounds)):  # bounds[i] is iteration i + 1
        if i in after_prune:
            continue
        assert bounds[i] >= bounds[i - 1] - 1e-9 * abs(bounds[i - 1]), i + 1
    assert est.converged_


def test_warm_start_continues_from_a_pruned_fit():
    X = _clusters()
    est = _estimator(prune_threshold=0.01, prune_patience=5, warm_start=True).fit(X)
    assert est.n_components_ == 3
    est.fit(X)
    assert est.n_components_ == 3
    assert est.means_.shape == (3, 2)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(prune_threshold=-0.1), "'prune_threshold' parameter"),
        (dict(prune_threshold=1.0), "'prune_threshold' parameter"),
        (dict(prune_threshold=float("nan")), "'prune_threshold' parameter"),
        (dict(prune_threshold=0.01, prune_patience=0), "'prune_patience' parameter"),
        (dict(prune_threshold=0.01, prune_patience=2.5), "'prune_patience' parameter"),
    ],
)
def test_bad_prune_values_are_clear_errors(params, message):
    with pytest.raises(ValueError, match=message):
        _estimator(**params).fit(_clusters())
