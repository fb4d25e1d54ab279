"""cuem.GaussianMixture with missing data (issue 15): the `missing` parameter, NaN as missing
at random, `missing_summary_`, `impute`, and PlacedData(missing=...).

The references are computed here in NumPy from the fitted parameters (each row's observed
marginal, Gaussian conditionals), never by cuem itself.
"""
import pickle
import warnings

import numpy as np
import pytest

import cuem

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

COV_TYPES = ["full", "tied", "diag", "spherical"]
TRUE_MEANS = np.array([[0.0, 0.0, 0.0], [8.0, 8.0, -8.0], [-8.0, 8.0, 8.0]])


def blobs(seed=0, n=900, spread=1.0):
    """Three well separated correlated Gaussian clusters in 3-d."""
    rng = np.random.default_rng(seed)
    A = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.2, 0.9]])
    labels = rng.integers(0, 3, size=n)
    X = TRUE_MEANS[labels] + spread * rng.normal(size=(n, 3)) @ A.T
    return X, labels


def with_holes(X, fraction=0.2, seed=1, empty_rows=()):
    """X with `fraction` of its entries NaN at random (MCAR), never a whole row unless listed
    in `empty_rows`."""
    rng = np.random.default_rng(seed)
    X = X.copy()
    mask = rng.random(X.shape) < fraction
    mask[mask.all(axis=1), 0] = False
    X[mask] = np.nan
    for r in empty_rows:
        X[r] = np.nan
    return X


def quiet_fit(estimator, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return estimator.fit(X, **kwargs)


def full_covariances(gm):
    K, D = gm.means_.shape
    c = gm.covariances_
    if gm.covariance_type == "full":
        return c
    if gm.covariance_type == "tied":
        return np.broadcast_to(c, (K, D, D))
    if gm.covariance_type == "diag":
        return np.stack([np.diag(v) for v in c])
    return np.stack([v * np.eye(D) for v in c])


def gaussian_logpdf(x, mean, cov):
    L = np.linalg.cholesky(cov)
    z = np.linalg.solve(L, x - mean)
    return -0.5 * len(x) * np.log(2 * np.pi) - np.log(np.diag(L)).sum() - 0.5 * z @ z


def reference(gm, X):
    """Per row: log p(x_obs), the posteriors given x_obs, the imputed row and the variance of
    each entry given x_obs (law of total variance), from the fitted parameters."""
    covs = full_covariances(gm)
    K, D = gm.means_.shape
    n = X.shape[0]
    logp = np.zeros(n)
    post = np.zeros((n, K))
    filled = np.array(X, dtype=np.float64)
    var = np.zeros((n, D))
    for i in range(n):
        m = np.isnan(X[i])
        o = ~m
        if not o.any():
            post[i] = gm.weights_
            cond_mean = gm.means_
            cond_var = np.stack([np.diag(c) for c in covs])
        else:
            lj = np.array([np.log(gm.weights_[k]) + gaussian_logpdf(X[i, o], gm.means_[k, o], covs[k][np.ix_(o, o)])
                           for k in range(K)])
            top = lj.max()
            logp[i] = top + np.log(np.exp(lj - top).sum())
            post[i] = np.exp(lj - logp[i])
            cond_mean = np.tile(gm.means_, 1)
            cond_var = np.zeros((K, D))
            if m.any():
                for k in range(K):
                    S = covs[k]
                    G = S[np.ix_(m, o)] @ np.linalg.inv(S[np.ix_(o, o)])
                    cond_mean[k, m] = gm.means_[k, m] + G @ (X[i, o] - gm.means_[k, o])
                    cond_var[k, m] = np.diag(S[np.ix_(m, m)] - G @ S[np.ix_(o, m)])
        mean = post[i] @ cond_mean
        filled[i, m] = mean[m]
        second = post[i] @ (cond_var + cond_mean**2)
        var[i, m] = (second - mean**2)[m]
    return logp, post, filled, var


def expected_summary(X):
    mask = np.isnan(X)
    incomplete = mask.any(axis=1)
    empty = mask.all(axis=1)
    partial = incomplete & ~empty
    patterns = {tuple(row) for row in mask[partial]}
    return {
        "missing_entries": int(mask.sum()),
        "incomplete_rows": int(incomplete.sum()),
        "empty_rows": int(empty.sum()),
        "n_patterns": len(patterns),
    }, [int(r) for r in np.flatnonzero(empty)]


def n_parameters(gm):
    K, D = gm.means_.shape
    cov = {"full": K * D * (D + 1) / 2, "tied": D * (D + 1) / 2, "diag": K * D, "spherical": K}[gm.covariance_type]
    return int(cov + K * D + K - 1)


# ---- the parameter ----------------------------------------------------------------------


def test_missing_parameter_default_and_validation():
    assert cuem.GaussianMixture().missing == "error"
    assert cuem.GaussianMixture().get_params()["missing"] == "error"
    X, _ = blobs(n=60)
    for bad in ("drop", "Marginalize", None, True, 1):
        with pytest.raises(cuem.InvalidParameterError) as e:
            cuem.GaussianMixture(2, missing=bad).fit(X)
        assert str(e.value) == (
            "The 'missing' parameter of GaussianMixture must be a str among {'error', 'marginalize'}. "
            f"Got {bad!r} instead."
        )
    with pytest.raises(ValueError, match="'missing' parameter"):
        cuem.PlacedData(X, missing="drop")


def test_get_params_clone_repr_and_pickle_keep_missing():
    gm = cuem.GaussianMixture(3, missing="marginalize", random_state=0)
    assert gm.get_params()["missing"] == "marginalize"
    assert clone(gm).missing == "marginalize"
    assert "missing='marginalize'" in repr(gm)
    assert "missing" not in repr(cuem.GaussianMixture(3))
    assert gm.set_params(missing="error").missing == "error"
    gm.set_params(missing="marginalize")
    X = with_holes(blobs()[0], empty_rows=[5])
    quiet_fit(gm, X)
    copy = pickle.loads(pickle.dumps(gm))
    assert copy.missing == "marginalize" and copy.get_params() == gm.get_params()
    assert copy.missing_summary_ == gm.missing_summary_
    assert copy.means_.tobytes() == gm.means_.tobytes()
    assert copy.score_samples(X).tobytes() == gm.score_samples(X).tobytes()
    assert copy.impute(X).tobytes() == gm.impute(X).tobytes()


def test_sklearn_tags_allow_nan_only_when_marginalizing():
    assert sklearn.utils.get_tags(cuem.GaussianMixture()).input_tags.allow_nan is False
    assert sklearn.utils.get_tags(cuem.GaussianMixture(missing="marginalize")).input_tags.allow_nan is True


@parametrize_with_checks([cuem.GaussianMixture(missing="marginalize")])
def test_sklearn_estimator_checks_with_marginalize(estimator, check):
    check(estimator)


# ---- NaN refused by default, Inf always ------------------------------------------------


def test_nan_refused_by_default_with_sklearns_message():
    X, _ = blobs(n=90)
    gm = cuem.GaussianMixture(2, random_state=0).fit(X)
    Xn = X.copy()
    Xn[7, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        cuem.GaussianMixture(2).fit(Xn)
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            getattr(gm, method)(Xn)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        cuem.PlacedData(Xn)


def test_inf_is_an_error_with_marginalize():
    X = with_holes(blobs(n=90)[0])
    X[3, 2] = np.inf
    gm = cuem.GaussianMixture(2, missing="marginalize")
    with pytest.raises(ValueError, match="infinity"):
        gm.fit(X)
    fitted = quiet_fit(cuem.GaussianMixture(2, missing="marginalize", random_state=0), with_holes(blobs(n=90)[0]))
    for method in ("predict", "score_samples", "score", "bic", "impute"):
        with pytest.raises(ValueError, match="infinity"):
            getattr(fitted, method)(X)


# ---- fitting -------------------------------------------------------------------------


def test_marginalize_without_nan_is_the_same_fit_bitwise():
    X, _ = blobs()
    a = cuem.GaussianMixture(3, random_state=4).fit(X)
    b = cuem.GaussianMixture(3, random_state=4, missing="marginalize").fit(X)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert getattr(a, attr).tobytes() == getattr(b, attr).tobytes(), attr
    assert a.lower_bound_ == b.lower_bound_ and a.n_iter_ == b.n_iter_
    zero = {"missing_entries": 0, "incomplete_rows": 0, "empty_rows": 0, "n_patterns": 0, "first_empty_rows": []}
    assert a.missing_summary_ == zero and b.missing_summary_ == zero


@pytest.mark.parametrize("cov", COV_TYPES)
def test_marginalize_fit_recovers_the_clusters_and_is_monotone(cov):
    X, labels = blobs(seed=2, n=1500)
    Xm = with_holes(X, fraction=0.25, seed=3)
    gm = cuem.GaussianMixture(3, covariance_type=cov, missing="marginalize", random_state=0, tol=1e-6,
                              max_iter=500).fit(Xm)
    assert gm.converged_
    # Each true centre is found, to within a few standard errors.
    for mu in TRUE_MEANS:
        assert np.min(np.abs(gm.means_ - mu).max(axis=1)) < 0.25, (mu, gm.means_)
    np.testing.assert_allclose(np.sort(gm.weights_), np.sort(np.bincount(labels) / len(labels)), atol=0.02)
    # EM on the observed-data likelihood never lowers it.
    lb = np.array(gm.lower_bounds_)
    assert len(lb) >= 2 and np.all(np.diff(lb) >= -1e-9 * np.abs(lb[1:])), lb
    # The final model's mean observed log-likelihood: at least the last bound, and close to it.
    score = gm.score(Xm)
    assert gm.lower_bound_ - 1e-9 <= score <= gm.lower_bound_ + 1e-5
    # ... which is the NumPy marginal's.
    logp, post, _, _ = reference(gm, Xm)
    np.testing.assert_allclose(score, logp.mean(), rtol=1e-10)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_evaluations_are_the_observed_marginals(cov):
    X = with_holes(blobs(seed=4)[0], fraction=0.3, seed=5, empty_rows=[0, 17])
    gm = quiet_fit(cuem.GaussianMixture(3, covariance_type=cov, missing="marginalize", random_state=1), X)
    logp, post, _, _ = reference(gm, X)
    np.testing.assert_allclose(gm.score_samples(X), logp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gm.predict_proba(X), post, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(gm.predict(X), np.argmax(post, axis=1))
    # A row with nothing observed: log p = 0 and the posteriors are the weights.
    assert gm.score_samples(X)[0] == 0.0 and gm.score_samples(X)[17] == 0.0
    np.testing.assert_allclose(gm.predict_proba(X)[[0, 17]], np.tile(gm.weights_, (2, 1)), rtol=1e-12)
    # score: the mean over the rows with an observed entry (a fit skips the others).
    np.testing.assert_allclose(gm.score(X), logp.sum() / (len(X) - 2), rtol=1e-10)
    # fit_predict is fit, then predict on the same rows.
    again = cuem.GaussianMixture(3, covariance_type=cov, missing="marginalize", random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(again.fit_predict(X), gm.predict(X))


@pytest.mark.parametrize("cov", ["full", "diag"])
def test_bic_and_aic_use_the_observed_log_likelihood(cov):
    X = with_holes(blobs(seed=6)[0], fraction=0.2, seed=7, empty_rows=[1, 2])
    gm = quiet_fit(cuem.GaussianMixture(3, covariance_type=cov, missing="marginalize", random_state=0), X)
    logp, _, _, _ = reference(gm, X)
    p = n_parameters(gm)
    # The data's size is the number of rows with an observed entry, as in the fit.
    np.testing.assert_allclose(gm.bic(X), -2 * logp.sum() + p * np.log(len(X) - 2), rtol=1e-10)
    np.testing.assert_allclose(gm.aic(X), -2 * logp.sum() + 2 * p, rtol=1e-10)


def test_missing_summary_and_the_empty_row_warning():
    X = with_holes(blobs(seed=8)[0], fraction=0.15, seed=9, empty_rows=[3, 50, 51])
    expected, empty = expected_summary(X)
    assert expected["empty_rows"] == 3 and expected["n_patterns"] >= 4  # the test's own premise
    gm = cuem.GaussianMixture(3, missing="marginalize", random_state=0)
    with pytest.warns(UserWarning, match=r"3 rows have every entry missing and carry no information: skipped "
                                         r"\(row 3, 50, 51, 0-based\)"):
        gm.fit(X)
    summary = dict(gm.missing_summary_)
    first = summary.pop("first_empty_rows")
    assert summary == expected
    assert first == empty[: len(first)] and len(first) >= 1
    # No empty row: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cuem.GaussianMixture(3, missing="marginalize", random_state=0).fit(with_holes(blobs(seed=8)[0]))


def test_empty_rows_do_not_change_the_fit():
    X = with_holes(blobs(seed=10)[0], fraction=0.2, seed=11)
    init = cuem.GaussianMixture(3, random_state=0).fit(blobs(seed=10)[0])
    params = dict(weights_init=init.weights_, means_init=init.means_, precisions_init=init.precisions_,
                  missing="marginalize", tol=1e-8, max_iter=300)
    a = cuem.GaussianMixture(3, **params).fit(X)
    padded = np.vstack([np.full((4, 3), np.nan), X, np.full((2, 3), np.nan)])
    b = quiet_fit(cuem.GaussianMixture(3, **params), padded)
    assert b.missing_summary_["empty_rows"] == 6
    for attr in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(b, attr), getattr(a, attr), rtol=1e-10, atol=1e-12, err_msg=attr)
    np.testing.assert_allclose(b.lower_bound_, a.lower_bound_, rtol=1e-10)


def test_float32_input_fits_as_its_float64_conversion():
    X = with_holes(blobs(seed=12)[0], fraction=0.2, seed=13).astype(np.float32)
    a = cuem.GaussianMixture(3, missing="marginalize", random_state=0).fit(X)
    b = cuem.GaussianMixture(3, missing="marginalize", random_state=0).fit(X.astype(np.float64))
    assert a.n_iter_ == b.n_iter_
    # Complete float32 data fit bitwise as their float64 conversion; with missing entries the
    # fits agree to rounding only (the float32 copy's column-mean fill is rounded to float32).
    for attr in ("weights_", "means_", "covariances_"):
        assert getattr(a, attr).dtype == np.float64
        np.testing.assert_allclose(getattr(a, attr), getattr(b, attr), rtol=1e-9, atol=1e-12, err_msg=attr)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-12)
    # The same model evaluates float32 data bitwise as their float64 conversion.
    assert a.score_samples(X).tobytes() == a.score_samples(X.astype(np.float64)).tobytes()
    assert a.predict_proba(X).tobytes() == a.predict_proba(X.astype(np.float64)).tobytes()
    filled = a.impute(X)
    assert filled.dtype == np.float64
    assert filled.tobytes() == a.impute(X.astype(np.float64)).tobytes()


def test_sample_weight_with_missing_data_counts_as_repeated_rows():
    X = with_holes(blobs(seed=14, n=300)[0], fraction=0.25, seed=15)
    w = np.random.default_rng(16).integers(0, 4, size=len(X)).astype(np.float64)
    w[np.flatnonzero(np.isnan(X).any(axis=1))[:5]] = 3.0  # some incomplete rows repeated
    start = cuem.GaussianMixture(3, random_state=0).fit(blobs(seed=14, n=300)[0])
    params = dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_,
                  missing="marginalize", tol=1e-9, max_iter=400)
    weighted = cuem.GaussianMixture(3, **params).fit(X, sample_weight=w)
    repeated = cuem.GaussianMixture(3, **params).fit(np.repeat(X, w.astype(int), axis=0))
    for attr in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(weighted, attr), getattr(repeated, attr), rtol=1e-8, atol=1e-10,
                                   err_msg=attr)
    np.testing.assert_allclose(weighted.lower_bound_, repeated.lower_bound_, rtol=1e-9)
    logp = weighted.score_samples(X)
    np.testing.assert_allclose(weighted.score(X, sample_weight=w), (w * logp).sum() / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(weighted.bic(X, sample_weight=w),
                               -2 * (w * logp).sum() + n_parameters(weighted) * np.log(w.sum()), rtol=1e-10)


# ---- impute --------------------------------------------------------------------------


@pytest.mark.parametrize("cov", COV_TYPES)
def test_impute_fills_conditional_means_and_keeps_observed_entries(cov):
    X = with_holes(blobs(seed=18)[0], fraction=0.3, seed=19, empty_rows=[2])
    gm = quiet_fit(cuem.GaussianMixture(3, covariance_type=cov, missing="marginalize", random_state=0), X)
    filled, variance = gm.impute(X, return_variance=True)
    assert filled.shape == X.shape and variance.shape == X.shape
    assert filled.dtype == np.float64 and variance.dtype == np.float64
    mask = np.isnan(X)
    assert np.isfinite(filled).all()
    assert filled[~mask].tobytes() == X[~mask].tobytes()  # observed entries untouched, bit for bit
    assert np.all(variance[~mask] == 0.0) and np.all(variance[mask] > 0.0)
    _, _, ref_filled, ref_var = reference(gm, X)
    np.testing.assert_allclose(filled[mask], ref_filled[mask], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(variance[mask], ref_var[mask], rtol=1e-8, atol=1e-9)
    # The row with nothing observed gets the mixture's mean.
    np.testing.assert_allclose(filled[2], gm.weights_ @ gm.means_, rtol=1e-12)
    # Without return_variance: the same filled array alone.
    alone = gm.impute(X)
    assert isinstance(alone, np.ndarray) and alone.tobytes() == filled.tobytes()


def test_impute_is_close_to_the_truth_and_its_variances_are_calibrated():
    X, _ = blobs(seed=20, n=2000, spread=1.0)
    Xm = with_holes(X, fraction=0.2, seed=21)
    gm = cuem.GaussianMixture(3, missing="marginalize", random_state=0).fit(Xm)
    mask = np.isnan(Xm)
    filled, variance = gm.impute(Xm, return_variance=True)
    err = filled[mask] - X[mask]
    # Conditional means beat the column means, which ignore the clusters and correlations.
    column_means = np.nanmean(Xm, axis=0)
    naive = np.broadcast_to(column_means, X.shape)[mask] - X[mask]
    assert np.sqrt(np.mean(err**2)) < 0.5 * np.sqrt(np.mean(naive**2))
    # On data drawn from a mixture, the squared errors average to the predicted variances
    # (large where a row's observed entries cannot tell two clusters apart).
    np.testing.assert_allclose(np.mean(err**2), np.mean(variance[mask]), rtol=0.1)
    # Rows whose observed entries do pin down the cluster are imputed to within the spread.
    sure = np.broadcast_to((gm.predict_proba(Xm).max(axis=1) > 0.999)[:, None], X.shape)[mask]
    assert sure.mean() > 0.8 and np.sqrt(np.mean(err[sure] ** 2)) < 1.0


def test_impute_from_a_model_fitted_on_complete_data_and_without_holes():
    X, _ = blobs(seed=22)
    gm = cuem.GaussianMixture(3, random_state=0).fit(X)  # missing='error'
    Xm = with_holes(X, fraction=0.1, seed=23)
    filled = gm.impute(Xm)
    _, _, ref_filled, _ = reference(gm, Xm)
    np.testing.assert_allclose(filled, ref_filled, rtol=1e-9, atol=1e-9)
    assert gm.impute(X).tobytes() == X.tobytes()
    _, var = gm.impute(X, return_variance=True)
    assert not var.any()


def test_impute_checks_its_input():
    X, _ = blobs(n=90)
    with pytest.raises(cuem.NotFittedError):
        cuem.GaussianMixture(2).impute(X)
    gm = cuem.GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="3 features"):
        gm.impute(np.ones((4, 4)))
    with pytest.raises(TypeError, match="host array"):
        gm.impute(cuem.PlacedData(X))


# ---- PlacedData ------------------------------------------------------------------------


def test_placed_data_with_missing_entries():
    X = with_holes(blobs(seed=24)[0], fraction=0.2, seed=25, empty_rows=[9])
    placed = cuem.PlacedData(X, missing="marginalize")
    assert placed.missing == "marginalize" and "missing='marginalize'" in repr(placed)
    a = quiet_fit(cuem.GaussianMixture(3, missing="marginalize", random_state=0), X)
    b = quiet_fit(cuem.GaussianMixture(3, missing="marginalize", random_state=0), placed)
    for attr in ("weights_", "means_", "covariances_"):
        assert getattr(a, attr).tobytes() == getattr(b, attr).tobytes(), attr
    assert a.missing_summary_ == b.missing_summary_
    assert b.score_samples(placed).tobytes() == a.score_samples(X).tobytes()
    assert b.predict_proba(placed).tobytes() == a.predict_proba(X).tobytes()
    np.testing.assert_allclose(b.bic(placed), a.bic(X), rtol=1e-12)
    # An estimator that refuses NaN does not take data placed with them.
    refusing = cuem.GaussianMixture(3, random_state=0)
    with pytest.raises(ValueError, match="missing='marginalize'"):
        refusing.fit(placed)
    refusing.fit(blobs(seed=24)[0])
    with pytest.raises(ValueError, match="missing='marginalize'"):
        refusing.score_samples(placed)


def test_a_column_with_nothing_observed_is_a_data_error():
    X = with_holes(blobs(n=90)[0])
    X[:, 1] = np.nan
    with pytest.raises(cuem.DataError, match=r"column 1 \(0-based\) has no observed value"):
        cuem.GaussianMixture(2, missing="marginalize").fit(X)


WITHOUT_SKLEARN = """
import sys, warnings
sys.modules["sklearn"] = None  # any import of scikit-learn fails
import numpy as np
import cuem
rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
X[::7, 0] = np.nan
X[5] = np.nan
try:
    cuem.GaussianMixture(2).fit(X)
    raise SystemExit("NaN accepted with missing='error'")
except ValueError as e:
    assert "NaN at row 0, column 0" in str(e), str(e)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    gm = cuem.GaussianMixture(2, missing="marginalize", random_state=0).fit(X)
assert any("every entry missing" in str(x.message) for x in w)
assert gm.missing_summary_["empty_rows"] == 1 and gm.missing_summary_["missing_entries"] == int(np.isnan(X).sum()) == 31
filled = gm.impute(X)
assert not np.isnan(filled).any() and (filled[~np.isnan(X)] == X[~np.isnan(X)]).all()
assert np.isfinite(gm.score_samples(X)).all()
X[3, 1] = np.inf
try:
    gm.predict(X)
    raise SystemExit("Inf accepted")
except ValueError as e:
    assert "Inf" in str(e) or "inf" in str(e), str(e)
assert not any(m == "sklearn" or m.startswith("sklearn.") for m, v in sys.modules.items() if v is not None)
print("ok")
"""


def test_missing_data_without_sklearn():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", WITHOUT_SKLEARN], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
