"""Tests of cuem.PlacedData: X (and weights) placed once, passed to GaussianMixture's
methods in place of X. On the CPU every result equals the array path's bitwise.

Run by scripts/test_python.sh with the rest of tests/python.
"""

import gc
import pickle
import warnings
import weakref

import numpy as np
import pytest

import cuem

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from test_mixture import blobs, cuda_build, driver_device_count  # noqa: E402

COV_TYPES = ("full", "tied", "diag", "spherical")


def weights_for(X, seed=5):
    return np.random.default_rng(seed).uniform(0.0, 3.0, size=X.shape[0])


def same(a, b):
    """Bitwise equality of two results (arrays or floats)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def quietly(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return f(*args, **kwargs)


FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "lower_bound_")


def assert_same_fit(a, b):
    for name in FITTED:
        assert same(getattr(a, name), getattr(b, name)), name
    assert a.n_iter_ == b.n_iter_ and a.converged_ == b.converged_ and a.lower_bounds_ == b.lower_bounds_
    assert a.device_ == b.device_ and a.n_features_in_ == b.n_features_in_


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("cov", COV_TYPES)
def test_equals_the_array_path(cov, weighted):
    """fit, fit_predict, predict, predict_proba, score_samples, score, bic and aic on a
    PlacedData equal, bitwise, the same calls on the array (with the same weights)."""
    X = blobs(seed=3, n=600, d=3, k=3)
    w = weights_for(X) if weighted else None
    placed = cuem.PlacedData(X, sample_weight=w)
    params = dict(n_components=3, covariance_type=cov, random_state=0)

    array_gm = quietly(cuem.GaussianMixture(**params).fit, X, sample_weight=w)
    placed_gm = quietly(cuem.GaussianMixture(**params).fit, placed)
    assert_same_fit(placed_gm, array_gm)

    labels = quietly(cuem.GaussianMixture(**params).fit_predict, placed)
    assert same(labels, quietly(cuem.GaussianMixture(**params).fit_predict, X, sample_weight=w))
    assert same(placed_gm.predict(placed), array_gm.predict(X))
    assert same(placed_gm.predict_proba(placed), array_gm.predict_proba(X))
    assert same(placed_gm.score_samples(placed), array_gm.score_samples(X))
    assert same(placed_gm.score(placed), array_gm.score(X, sample_weight=w))
    assert same(placed_gm.bic(placed), array_gm.bic(X, sample_weight=w))
    assert same(placed_gm.aic(placed), array_gm.aic(X, sample_weight=w))
    # The weights are the PlacedData's: a weighted placement scores differently.
    if weighted:
        assert placed_gm.score(placed) != array_gm.score(X)


def test_several_fits_on_one_placement():
    """Fits of different n_components (and evaluations between them) on one PlacedData
    equal their array-path fits: nothing of one fit leaks into the next."""
    X = blobs(seed=4, n=450, d=2, k=3)
    w = weights_for(X, seed=6)
    placed = cuem.PlacedData(X, sample_weight=w)
    for k in (4, 1, 3, 2):
        for cov in ("full", "diag"):
            params = dict(n_components=k, covariance_type=cov, random_state=k)
            on_placed = quietly(cuem.GaussianMixture(**params).fit, placed)
            on_array = quietly(cuem.GaussianMixture(**params).fit, X, sample_weight=w)
            assert_same_fit(on_placed, on_array)
            assert same(on_placed.bic(placed), on_array.bic(X, sample_weight=w))
            assert same(on_placed.predict_proba(placed), on_array.predict_proba(X))


@pytest.mark.parametrize("layout", ["float32", "column_slice", "every_other_row", "fortran", "list"])
def test_inputs_converted_as_fit_converts_them(layout):
    """X is taken as fit takes it: float32 and strided views in place, others converted
    once; the results equal the array path's."""
    base = blobs(seed=7, n=400, d=4, k=2)
    X = {
        "float32": base.astype(np.float32),
        "column_slice": base[:, 1:3],
        "every_other_row": base[::2],
        "fortran": np.asfortranarray(base),
        "list": base.tolist(),
    }[layout]
    placed = cuem.PlacedData(X)
    on_placed = cuem.GaussianMixture(2, random_state=0).fit(placed)
    on_array = cuem.GaussianMixture(2, random_state=0).fit(X)
    assert_same_fit(on_placed, on_array)
    assert same(on_placed.score_samples(placed), on_array.score_samples(X))


def test_feature_names_from_a_dataframe():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(blobs(n=300, d=2), columns=["a", "b"])
    gm = cuem.GaussianMixture(2, random_state=0).fit(cuem.PlacedData(frame))
    assert list(gm.feature_names_in_) == ["a", "b"]
    gm.fit(cuem.PlacedData(frame.to_numpy()))
    assert not hasattr(gm, "feature_names_in_")


def test_keeps_its_arrays_alive():
    """The PlacedData reads X and the weights in place, so it holds them."""
    X = blobs(seed=8, n=300, d=2)
    w = weights_for(X)
    expected = cuem.GaussianMixture(3, random_state=0).fit(X.copy(), sample_weight=w.copy())
    x_ref, w_ref = weakref.ref(X), weakref.ref(w)
    placed = cuem.PlacedData(X, sample_weight=w)
    del X, w
    gc.collect()
    assert x_ref() is not None and w_ref() is not None
    assert_same_fit(cuem.GaussianMixture(3, random_state=0).fit(placed), expected)
    del placed
    gc.collect()
    assert x_ref() is None and w_ref() is None


@pytest.mark.parametrize("method", ["fit", "fit_predict", "score", "bic", "aic"])
def test_sample_weight_given_twice(method):
    X = blobs(n=300)
    placed = cuem.PlacedData(X, sample_weight=weights_for(X))
    gm = cuem.GaussianMixture(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="sample_weight must be None when X is a cuem.PlacedData"):
        getattr(gm, method)(placed, sample_weight=np.ones(X.shape[0]))


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score", "bic", "aic"])
def test_wrong_feature_count(method):
    """The array path's message for a PlacedData of the wrong width."""
    gm = cuem.GaussianMixture(3, random_state=0).fit(blobs(n=300, d=2))
    X3 = blobs(n=300, d=3)
    with pytest.raises(ValueError) as from_array:
        getattr(gm, method)(X3)
    with pytest.raises(ValueError) as from_placed:
        getattr(gm, method)(cuem.PlacedData(X3))
    assert str(from_placed.value) == str(from_array.value)
    assert "X has 3 features, but GaussianMixture is expecting 2 features" in str(from_placed.value)


def nan_rows():
    X = blobs(n=300)
    X[7, 1] = np.nan
    return X


BAD = {
    "nan": (nan_rows, None, {}),
    "one_sample": (lambda: np.ones((1, 2)), None, {}),
    "three_dims": (lambda: np.ones((4, 2, 2)), None, {}),
    "no_features": (lambda: np.ones((4, 0)), None, {}),
    "negative_weight": (lambda: blobs(n=300), lambda n: -np.ones(n), {}),
    "all_zero_weights": (lambda: blobs(n=300), lambda n: np.zeros(n), {}),
    "short_weights": (lambda: blobs(n=300), lambda n: np.ones(n - 1), {}),
    "bad_device": (lambda: blobs(n=300), None, {"device": "gpu"}),
    "bad_precision": (lambda: blobs(n=300), None, {"precision": "float16"}),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_data_refused_at_construction(case):
    """Refused by the constructor with the exception fit raises, and its message."""
    make_X, make_w, settings = BAD[case]
    X = make_X()
    w = make_w(X.shape[0]) if make_w else None
    with pytest.raises(Exception) as from_fit:
        cuem.GaussianMixture(2, **settings).fit(X, sample_weight=w)
    with pytest.raises(Exception) as from_placed:
        cuem.PlacedData(X, sample_weight=w, **settings)
    assert type(from_placed.value) is type(from_fit.value)
    assert isinstance(from_placed.value, ValueError)
    assert str(from_placed.value) == str(from_fit.value)


def test_the_data_device_wins():
    """A PlacedData on the CPU runs on the CPU whatever the estimator's device says (here
    one no build has), with the results of a CPU estimator."""
    X = blobs(n=300)
    placed = cuem.PlacedData(X)
    assert placed.device == "cpu" and placed.shape == (300, 2) and placed.notice == ""
    gm = cuem.GaussianMixture(3, random_state=0, device="cuda:999", precision="float64").fit(placed)
    cpu = cuem.GaussianMixture(3, random_state=0).fit(X)
    assert_same_fit(gm, cpu)
    assert gm.device_ == "cpu"
    assert same(gm.predict_proba(placed), cpu.predict_proba(X))
    with pytest.raises(cuem.DeviceError):
        gm.predict_proba(X)  # the estimator's own device, for arrays


def test_auto_without_a_gpu_says_so():
    """device='auto' resolves at the first use: without a GPU the notice says the CPU
    runs it (as fit's warning says), and device tells what ran."""
    if cuda_build() and driver_device_count() > 0:
        pytest.skip("a CUDA device is there: 'auto' picks it")
    placed = cuem.PlacedData(blobs(n=300), device="auto")
    assert placed.device == "auto" and placed.notice == ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm = cuem.GaussianMixture(3, random_state=0).fit(placed)
    assert placed.device == "cpu" and gm.device_ == "cpu"
    assert "running on the CPU" in placed.notice
    assert [str(w.message) for w in caught] == [placed.notice]


def test_pickle_clone_and_params():
    """A fit on a PlacedData stores none: the estimator pickles, clones and reports its
    parameters as after an array fit; the PlacedData itself refuses to be pickled."""
    X = blobs(n=300)
    placed = cuem.PlacedData(X)
    gm = cuem.GaussianMixture(3, random_state=0).fit(placed)
    assert not any(isinstance(v, cuem.PlacedData) for v in vars(gm).values())
    restored = pickle.loads(pickle.dumps(gm))
    assert same(restored.predict_proba(X), gm.predict_proba(placed))
    assert clone(gm).get_params() == cuem.GaussianMixture(3, random_state=0).get_params()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(placed)


def test_on_a_gpu():
    """A PlacedData on the device: fits of several sizes and the evaluations equal the
    array path's on the same device to its precision, and run on the device."""
    if not cuda_build() or driver_device_count() == 0:
        pytest.skip("needs a CUDA build and a CUDA device")
    X = blobs(seed=9, n=3000, d=3, k=3)
    w = weights_for(X)
    placed = cuem.PlacedData(X, sample_weight=w, device="cuda")
    assert placed.device == "cuda"
    for k in (2, 3):
        params = dict(n_components=k, random_state=0)
        on_placed = quietly(cuem.GaussianMixture(**params).fit, placed)
        on_array = quietly(cuem.GaussianMixture(**params, device="cuda").fit, X, sample_weight=w)
        assert on_placed.device_.startswith("cuda:0"), on_placed.device_
        assert placed.device.startswith("cuda:0"), placed.device
        np.testing.assert_allclose(on_placed.means_, on_array.means_, rtol=1e-6)
        np.testing.assert_allclose(on_placed.covariances_, on_array.covariances_, rtol=1e-6)
        np.testing.assert_allclose(on_placed.predict_proba(placed), on_array.predict_proba(X), atol=1e-6)
        np.testing.assert_allclose(on_placed.score(placed), on_array.score(X, sample_weight=w), rtol=1e-6)
        np.testing.assert_allclose(on_placed.bic(placed), on_array.bic(X, sample_weight=w), rtol=1e-6)
