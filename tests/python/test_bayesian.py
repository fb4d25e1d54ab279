"""cuem.BayesianGaussianMixture against scikit-learn's BayesianGaussianMixture.

Both start from the same responsibilities (scikit-learn through its _initialize(X, resp),
cuem through resp_init), run the same iterations, and must agree to 1e-8 relative on the
CPU: the lower bounds, the posterior, the resolved priors and the evaluations, for the four
covariance types, both weight priors, default and given priors.
"""

import warnings

import numpy as np
import pytest

import cuem

sklearn_mixture = pytest.importorskip("sklearn.mixture")

TYPES = ("full", "tied", "diag", "spherical")
PRIORS = ("dirichlet_process", "dirichlet_distribution")


class _SklearnFromResp(sklearn_mixture.BayesianGaussianMixture):
    resp_init = None

    def _initialize_parameters(self, X, random_state, xp=None):
        self._initialize(X, self.resp_init)


def _data(seed=3, n=400, d=5, k=6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(4, d))
    labels = rng.integers(0, 4, size=n)
    X = centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5, size=d) + 50.0
    resp = rng.uniform(size=(n, k)) + 2.0 * (labels[:, None] == np.arange(k)[None, :])
    resp /= resp.sum(axis=1, keepdims=True)
    X_new = centres[rng.integers(0, 4, size=50)] + rng.normal(size=(50, d)) + 50.0
    return X, resp, X_new


def _given_priors(covariance_type, d):
    rng = np.random.default_rng(11)
    A = rng.normal(size=(d, d))
    cov = A @ A.T / d + np.eye(d)
    return dict(
        weight_concentration_prior=2.0,
        mean_precision_prior=0.3,
        mean_prior=np.full(d, 49.0),
        degrees_of_freedom_prior=d + 0.25,
        covariance_prior={"full": cov, "tied": cov, "diag": np.diag(cov).copy(), "spherical": 0.8}[covariance_type],
    )


def _close(got, want, what, rtol=1e-8):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, what
    assert np.max(np.abs(want)) > 0, f"{what}: the reference is all zero"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12 * np.max(np.abs(want)), err_msg=what)


def _pair(covariance_type, prior_type, given, iterations, X, resp):
    params = dict(
        n_components=resp.shape[1],
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        max_iter=iterations,
        tol=0.0,
    )
    if given:
        params.update(_given_priors(covariance_type, X.shape[1]))
    ref = _SklearnFromResp(**params)
    ref.resp_init = resp
    ours = cuem.BayesianGaussianMixture(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged after a few iterations, both
        ref.fit(X)
        ours._fit(X, None, resp_init=resp)
    return ref, ours


@pytest.mark.parametrize("given", [False, True], ids=["default_priors", "given_priors"])
@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_agrees_with_sklearn_from_the_same_responsibilities(covariance_type, prior_type, given):
    X, resp, X_new = _data()
    ref, ours = _pair(covariance_type, prior_type, given, 7, X, resp)
    assert ours.n_iter_ == ref.n_iter_ == 7
    # scikit-learn's tied bounds are arrays of shape (1,) (its _log_wishart_norm of a scalar)
    _close(ours.lower_bounds_, np.ravel(ref.lower_bounds_), "lower_bounds_")
    _close(ours.lower_bound_, np.ravel(ref.lower_bound_)[0], "lower_bound_")
    if prior_type == "dirichlet_process":
        assert isinstance(ours.weight_concentration_, tuple) and len(ours.weight_concentration_) == 2
        _close(ours.weight_concentration_[0], ref.weight_concentration_[0], "weight_concentration_[0]")
        _close(ours.weight_concentration_[1], ref.weight_concentration_[1], "weight_concentration_[1]")
    else:
        _close(ours.weight_concentration_, ref.weight_concentration_, "weight_concentration_")
    for name in ("mean_precision_", "means_", "degrees_of_freedom_", "covariances_", "precisions_cholesky_",
                 "precisions_", "weights_", "mean_prior_", "covariance_prior_"):
        _close(getattr(ours, name), getattr(ref, name), name)
    assert np.shape(ours.degrees_of_freedom_) == np.shape(ref.degrees_of_freedom_)
    assert np.shape(ours.covariance_prior_) == np.shape(ref.covariance_prior_)
    for name in ("weight_concentration_prior_", "mean_precision_prior_", "degrees_of_freedom_prior_"):
        assert getattr(ours, name) == pytest.approx(getattr(ref, name), rel=1e-15), name
    _close(ours.score_samples(X_new), ref.score_samples(X_new), "score_samples")
    _close(ours.predict_proba(X_new), ref.predict_proba(X_new), "predict_proba")
    assert ours.score(X_new) == pytest.approx(ref.score(X_new), rel=1e-8)
    np.testing.assert_array_equal(ours.predict(X_new), ref.predict(X_new))


@pytest.mark.parametrize("covariance_type", TYPES)
def test_warm_start_continues_the_iterations(covariance_type):
    """Three warm-started fits of one iteration each are the three-iteration fit."""
    X, resp, _ = _data(seed=5)
    ref, _ = _pair(covariance_type, "dirichlet_process", False, 3, X, resp)
    ours = cuem.BayesianGaussianMixture(
        n_components=resp.shape[1], covariance_type=covariance_type, max_iter=1, tol=0.0, warm_start=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours._fit(X, None, resp_init=resp)
        ours.fit(X)
        ours.fit(X)
    _close(ours.lower_bound_, np.ravel(ref.lower_bounds_[-1])[0], "lower_bound_")
    _close(ours.means_, ref.means_, "means_")
    _close(ours.covariances_, ref.covariances_, "covariances_")


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("covariance_type", TYPES)
def test_lower_bound_never_decreases(covariance_type, init_params):
    X, _, _ = _data(seed=8)
    est = cuem.BayesianGaussianMixture(
        n_components=8, covariance_type=covariance_type, init_params=init_params, random_state=0, max_iter=500, tol=1e-8
    ).fit(X)
    bounds = np.array(est.lower_bounds_)
    assert len(bounds) >= 3
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[:-1])), np.diff(bounds).min()
    assert est.converged_
    # The Dirichlet process leaves the surplus components (8 for 4 clusters) nearly empty.
    assert np.sum(est.weights_ > 0.02) <= 6


def test_defaults_and_parameters_are_sklearns():
    ours = cuem.BayesianGaussianMixture().get_params()
    ref = sklearn_mixture.BayesianGaussianMixture().get_params()
    extra = {"device": "cpu", "precision": "float32", "device_memory_limit": None, "prune_threshold": 0.0,
             "prune_patience": 10, "acceleration": "none"}
    assert ours == {**ref, **extra}


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(weight_concentration_prior=0.0), "weight_concentration_prior"),
        (dict(weight_concentration_prior=-1.0), "weight_concentration_prior"),
        (dict(mean_precision_prior=0.0), "mean_precision_prior"),
        (dict(degrees_of_freedom_prior=4.0), r"'degrees_of_freedom_prior' should be greater than 4, but got 4.000"),
        (dict(degrees_of_freedom_prior=-1.0), "degrees_of_freedom_prior"),
        (dict(covariance_prior=np.diag([1.0, 1.0, -1.0, 1.0, 1.0])), "'full covariance_prior' should be symmetric, positive-definite"),
        (dict(covariance_type="diag", covariance_prior=np.array([1.0, 0.0, 1.0, 1.0, 1.0])), "'diag covariance_prior' should be positive"),
        (dict(covariance_type="spherical", covariance_prior=-2.0), "covariance_prior"),
        (dict(mean_prior=np.zeros(3)), "should have the shape of"),
        (dict(weight_concentration_prior_type="stick"), "weight_concentration_prior_type"),
    ],
)
def test_bad_priors_are_clear_errors(params, message):
    X, _, _ = _data()
    with pytest.raises(ValueError, match=message):
        cuem.BayesianGaussianMixture(n_components=2, **params).fit(X)
    # scikit-learn refuses the same parameters
    with pytest.raises(ValueError):
        sklearn_mixture.BayesianGaussianMixture(n_components=2, **params).fit(X)


def test_sample_weight_counts_as_repeated_rows():
    X, resp, X_new = _data(seed=9, n=120)
    w = np.arange(X.shape[0]) % 3
    est_w = cuem.BayesianGaussianMixture(n_components=resp.shape[1], max_iter=5, tol=0.0)
    est_r = cuem.BayesianGaussianMixture(n_components=resp.shape[1], max_iter=5, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est_w._fit(X, w.astype(np.float64), resp_init=resp)
        est_r._fit(np.repeat(X, w, axis=0), None, resp_init=np.repeat(resp, w, axis=0))
    _close(est_w.means_, est_r.means_, "means_", rtol=1e-10)
    _close(est_w.covariance_prior_, est_r.covariance_prior_, "covariance_prior_", rtol=1e-10)
    _close(est_w.lower_bound_, est_r.lower_bound_, "lower_bound_", rtol=1e-10)
    _close(est_w.score_samples(X_new), est_r.score_samples(X_new), "score_samples", rtol=1e-10)


from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402


@parametrize_with_checks([cuem.BayesianGaussianMixture()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_is_a_sklearn_density_estimator_not_a_gaussian_mixture():
    from sklearn.base import BaseEstimator, DensityMixin

    est = cuem.BayesianGaussianMixture()
    assert isinstance(est, (BaseEstimator, DensityMixin))
    assert not isinstance(est, cuem.GaussianMixture)
    assert not hasattr(est, "bic")  # scikit-learn's BayesianGaussianMixture has none
