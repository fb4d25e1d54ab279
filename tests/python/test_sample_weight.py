"""sample_weight on cuem.GaussianMixture: fit, fit_predict, score, bic and aic.

The weighted score, bic and aic against sums written out here over score_samples; the
conversions (list, pandas Series, scalar; no copy of a float64 array; the caller's array
left as it was); every bad weight refused with a ValueError that names it, with and
without scikit-learn; and for fits, integer weights against repeated rows, zero weights
against dropped rows and ones against no weights.

Run by scripts/test_python.sh (pytest in .venv, after `pip install .`).
"""

import inspect
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import cuem
from cuem import _cuem

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

COV_TYPES = ("full", "tied", "diag", "spherical")
ZERO_WEIGHT = r"(.*weight.*zero.*)|(.*zero.*weight.*)"  # scikit-learn's check_all_zero_sample_weights_error


def blobs(seed=0, n=300, d=2, k=3, spread=6.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=spread, size=(k, d))
    x = np.concatenate([c + rng.normal(size=(n // k, d)) for c in centers])
    rng.shuffle(x)
    return np.ascontiguousarray(x)


def fitted(X, cov="full", k=3, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cuem.GaussianMixture(k, covariance_type=cov, random_state=0, **kw).fit(X)


def n_parameters(K, D, cov):
    """scikit-learn's GaussianMixture._n_parameters, written out."""
    cov_params = {"full": K * D * (D + 1) / 2, "tied": D * (D + 1) / 2, "diag": K * D, "spherical": K}[cov]
    return cov_params + K * D + K - 1


def test_signatures_turn_on_sklearn_sample_weight_checks():
    from sklearn.utils.validation import has_fit_parameter

    assert has_fit_parameter(cuem.GaussianMixture(), "sample_weight")
    for method in ("fit", "fit_predict", "score", "bic", "aic"):
        params = inspect.signature(getattr(cuem.GaussianMixture, method)).parameters
        assert "sample_weight" in params and params["sample_weight"].default is None, method


# ---- score, bic and aic -------------------------------------------------------------------------


@pytest.mark.parametrize("cov", COV_TYPES)
def test_weighted_score_bic_aic_against_a_loop(cov):
    X = blobs(seed=1, d=3)
    gm = fitted(X, cov)
    lp = gm.score_samples(X)
    # Heavier on the less likely half, so that weighting moves the mean well away.
    w = np.random.default_rng(2).uniform(0.0, 1.0, len(X)) + 3.0 * (lp < np.median(lp))
    w[:5] = 0.0
    total, sum_w = 0.0, 0.0
    for wi, lpi in zip(w, lp):
        total += wi * lpi
        sum_w += wi
    p = n_parameters(3, 3, cov)
    assert gm.score(X, sample_weight=w) == pytest.approx(total / sum_w, rel=1e-12)
    assert gm.bic(X, sample_weight=w) == pytest.approx(-2 * total + p * np.log(sum_w), rel=1e-12)
    assert gm.aic(X, sample_weight=w) == pytest.approx(-2 * total + 2 * p, rel=1e-12)
    assert abs(gm.score(X, sample_weight=w) - gm.score(X)) > 0.1  # the weights are not ignored
    # Ones are no weights, exactly; the unweighted bic/aic are scikit-learn's formulas.
    ones = np.ones(len(X))
    assert gm.score(X, sample_weight=ones) == gm.score(X)
    assert gm.bic(X, sample_weight=ones) == gm.bic(X) == pytest.approx(-2 * lp.sum() + p * np.log(len(X)), rel=1e-12)
    assert gm.aic(X, sample_weight=ones) == gm.aic(X)


def test_score_accepts_array_likes_and_scalars():
    pd = pytest.importorskip("pandas", reason="pandas is not installed (scripts/test.sh puts it in the test venv)")
    X = blobs(seed=3)
    gm = fitted(X)
    w = np.arange(len(X)) % 5
    ref = gm.score(X, sample_weight=w.astype(np.float64))
    assert gm.score(X, sample_weight=w) == ref  # int64
    assert gm.score(X, sample_weight=w.tolist()) == ref
    assert gm.score(X, sample_weight=pd.Series(w, index=np.arange(len(X))[::-1])) == ref  # by position
    assert gm.score(X, sample_weight=w.astype(np.float32)) == ref  # small integers are exact in float32
    assert gm.score(X, sample_weight=1.0) == gm.score(X)
    assert gm.score(X, sample_weight=2.5) == pytest.approx(gm.score(X), rel=1e-13)
    assert gm.bic(X, sample_weight=w.tolist()) == gm.bic(X, sample_weight=w.astype(np.float64))


class Stop(Exception):
    pass


def test_weights_reach_the_library_uncopied(monkeypatch):
    """A C-contiguous float64 array goes to the binding as it is (with X uncopied too);
    anything else arrives converted once to one."""
    X = blobs(seed=4)
    gm = fitted(X)
    seen = {}

    def spy(name):
        def f(X_arg, *args, **kwargs):
            seen[name] = (X_arg, kwargs["sample_weight"])
            raise Stop

        return f

    monkeypatch.setattr(_cuem, "fit", spy("fit"))
    monkeypatch.setattr(_cuem, "score", spy("score"))
    monkeypatch.setattr(_cuem, "criteria", spy("criteria"))  # bic and aic: one criteria pass
    w = np.linspace(0.5, 2.0, len(X))
    for name, call in (
        ("fit", lambda w: cuem.GaussianMixture(3).fit(X, sample_weight=w)),
        ("score", lambda w: gm.score(X, sample_weight=w)),
        ("criteria", lambda w: gm.bic(X, sample_weight=w)),
    ):
        with pytest.raises(Stop):
            call(w)
        assert seen[name][0] is X and seen[name][1] is w, name
        with pytest.raises(Stop):
            call(list(range(len(X))))
        given = seen[name][1]
        assert given.dtype == np.float64 and given.flags.c_contiguous and given.shape == (len(X),), name
        with pytest.raises(Stop):
            call(None)
        assert seen[name][1] is None, name


def test_low_level_weights_refuse_what_would_be_copied():
    X = blobs(seed=4)
    gm = fitted(X)
    w = np.linspace(0.5, 2.0, len(X))
    args = (X, *gm._model_arrays())
    assert _cuem.score(*args, sample_weight=w) == gm.score(X, sample_weight=w)
    for bad in (w.tolist(), w.astype(np.float32), w[::-1], np.repeat(w, 2)[::2]):
        with pytest.raises(TypeError):
            _cuem.score(*args, sample_weight=bad)


def test_caller_weights_are_left_as_they_were():
    X = blobs(seed=5)
    gm = fitted(X)
    w = np.linspace(0.0, 3.0, len(X))
    keep = w.copy()
    gm.score(X, sample_weight=w)
    gm.bic(X, sample_weight=w)
    gm.aic(X, sample_weight=w)
    cuem.GaussianMixture(3, random_state=0).fit(X, sample_weight=w)
    cuem.GaussianMixture(3, random_state=0).fit_predict(X, sample_weight=w)
    assert w.tobytes() == keep.tobytes()


# ---- bad weights ------------------------------------------------------------------------------

def bad_weights(n):
    """(weights, exception text) for every kind of bad weight, scikit-learn installed."""
    neg = np.ones(n)
    neg[3] = -1.0
    nan = np.ones(n)
    nan[4] = np.nan
    inf = np.ones(n)
    inf[5] = np.inf
    return [
        (neg, r"^sample_weight\[3\] is -1; weights must be finite and non-negative$"),
        (np.zeros(n), r"^sample_weight is zero for every row; at least one weight must be positive$"),
        (nan, r"^Input sample_weight contains NaN\.$"),  # scikit-learn's check_array
        (inf, r"^Input sample_weight contains infinity"),
        (np.ones(n + 1), r"^sample_weight\.shape == \(%d,\), expected \(%d,\)!$" % (n + 1, n)),
        (np.ones(n - 1).tolist(), r"^sample_weight\.shape == \(%d,\), expected \(%d,\)!$" % (n - 1, n)),
        (np.ones((n, 2)), r"^Sample weights must be 1D array or scalar, got 2D array"),
    ]


@pytest.mark.parametrize("method", ["fit", "fit_predict", "score", "bic", "aic"])
def test_bad_weights_are_value_errors(method):
    X = blobs(seed=6)
    gm = fitted(X)
    for w, text in bad_weights(len(X)):
        target = cuem.GaussianMixture(3) if method.startswith("fit") else gm
        with pytest.raises(ValueError, match=text):
            getattr(target, method)(X, sample_weight=w)
    with pytest.raises(ValueError, match=ZERO_WEIGHT):
        getattr(cuem.GaussianMixture(3) if method.startswith("fit") else gm, method)(X, sample_weight=np.zeros(len(X)))


def test_fit_with_more_components_than_weighted_rows():
    X = blobs(seed=7)
    w = np.zeros(len(X))
    w[:2] = 1.0
    with pytest.raises(cuem.DataError, match="n_components = 3 is more than the 2 rows with a positive sample_weight"):
        cuem.GaussianMixture(3).fit(X, sample_weight=w)


WITHOUT_SKLEARN = textwrap.dedent(
    """
    import sys
    sys.modules["sklearn"] = None  # any import of scikit-learn fails
    import numpy as np
    import cuem

    def raises(fn, text):
        try:
            fn()
        except ValueError as e:
            assert text in str(e), str(e)
            return
        raise AssertionError("no ValueError raised")

    X = np.random.default_rng(0).normal(size=(300, 2))
    gm = cuem.GaussianMixture(2, random_state=0).fit(X)
    lp = gm.score_samples(X)
    w = np.arange(300) % 4
    assert abs(gm.score(X, sample_weight=w.tolist()) - np.sum(w * lp) / w.sum()) < 1e-12 * abs(gm.score(X))
    assert gm.score(X, sample_weight=np.ones(300)) == gm.score(X) == gm.score(X, sample_weight=1)
    assert abs(gm.score(X, sample_weight=3.0) - gm.score(X)) < 1e-13 * abs(gm.score(X))
    assert gm.bic(X, sample_weight=np.ones(300)) == gm.bic(X)
    bad = np.ones(300)
    bad[2] = np.nan
    raises(lambda: gm.score(X, sample_weight=bad), "sample_weight[2] is nan; weights must be finite")
    bad[2] = -np.inf
    raises(lambda: gm.aic(X, sample_weight=bad), "sample_weight[2] is -inf; weights must be finite")
    raises(lambda: gm.score(X, sample_weight=np.zeros(300)), "sample_weight is zero for every row")
    raises(lambda: gm.score(X, sample_weight=np.ones(299)), "sample_weight.shape == (299,), expected (300,)!")
    raises(lambda: gm.bic(X, sample_weight=np.ones((300, 1))), "Sample weights must be 1D array or scalar")
    raises(lambda: cuem.GaussianMixture(2).fit(X, sample_weight=-np.ones(300)), "sample_weight[0] is -1")
    assert not any(m == "sklearn" or m.startswith("sklearn.") for m, v in sys.modules.items() if v is not None)
    print("ok")
    """
)


def test_sample_weight_without_sklearn():
    proc = subprocess.run([sys.executable, "-c", WITHOUT_SKLEARN], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


# ---- weighted fits ------------------------------------------------------------------------------

FIT_ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bound_")


@pytest.mark.parametrize("cov", COV_TYPES)
@pytest.mark.parametrize("init", ["kmeans", "k-means++", "means_init"])
def test_integer_weights_equal_repeated_rows(cov, init):
    X = blobs(seed=8, n=240, d=3)
    w = np.random.default_rng(9).integers(1, 4, size=len(X))
    # Repeated in place, so that seeding over cumulative weights picks the same points.
    X_rep = np.repeat(X, w, axis=0)
    kw = {"means_init": X[[0, 80, 160]]} if init == "means_init" else {"init_params": init}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = cuem.GaussianMixture(3, covariance_type=cov, random_state=0, **kw).fit(X, sample_weight=w)
        repeated = cuem.GaussianMixture(3, covariance_type=cov, random_state=0, **kw).fit(X_rep)
    for name in FIT_ATTRIBUTES:
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-10, atol=1e-13,
                                   err_msg=name)
    assert weighted.n_iter_ == repeated.n_iter_
    assert weighted.score(X, sample_weight=w) == pytest.approx(repeated.score(X_rep), rel=1e-12)
    assert weighted.bic(X, sample_weight=w) == pytest.approx(repeated.bic(X_rep), rel=1e-12)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_zero_weights_drop_rows(cov):
    X = blobs(seed=10, n=240, d=2)
    w = np.ones(len(X))
    w[::4] = 0.0
    X[::4] += 50.0  # far away: kept in by mistake, they would pull a component
    weighted = cuem.GaussianMixture(3, covariance_type=cov, random_state=0).fit(X, sample_weight=w)
    dropped = cuem.GaussianMixture(3, covariance_type=cov, random_state=0).fit(X[w > 0])
    for name in FIT_ATTRIBUTES:
        np.testing.assert_allclose(getattr(weighted, name), getattr(dropped, name), rtol=1e-10, atol=1e-13,
                                   err_msg=name)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_ones_equal_no_weights(cov):
    X = blobs(seed=11, n=300, d=3)
    plain = cuem.GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    ones = cuem.GaussianMixture(3, covariance_type=cov, random_state=0).fit(X, sample_weight=np.ones(len(X)))
    for name in FIT_ATTRIBUTES + ("lower_bounds_", "n_iter_"):
        assert np.asarray(getattr(ones, name)).tobytes() == np.asarray(getattr(plain, name)).tobytes(), name


def test_fit_predict_with_weights():
    X = blobs(seed=12)
    w = np.random.default_rng(13).integers(0, 3, size=len(X))
    labels = cuem.GaussianMixture(3, random_state=0).fit_predict(X, sample_weight=w)
    gm = cuem.GaussianMixture(3, random_state=0).fit(X, sample_weight=w)
    np.testing.assert_array_equal(labels, gm.predict(X))
    unweighted = cuem.GaussianMixture(3, random_state=0).fit(X)
    assert not np.array_equal(gm.means_, unweighted.means_)  # the weights reached the fit
