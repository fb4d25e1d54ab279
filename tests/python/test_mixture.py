"""Tests of the Python package: cuem.GaussianMixture against scikit-learn's, the
estimator checks, pickling, errors, no-copy input, the GIL and Ctrl-C.

Run by scripts/test_python.sh (pytest in .venv, after `pip install .`).
"""

import pickle
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import warnings

import numpy as np
import pytest

import cuem
from cuem import _cuem

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.mixture import GaussianMixture as SkGaussianMixture  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import compare_sklearn  # noqa: E402  (scripts/, put on sys.path by conftest.py)

COV_TYPES = ("full", "tied", "diag", "spherical")
RTOL = 1e-8


def blobs(seed=0, n=600, d=2, k=3, spread=6.0):
    """Well separated Gaussian blobs, C-contiguous float64."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=spread, size=(k, d))
    x = np.concatenate([c + rng.normal(size=(n // k, d)) for c in centers])
    rng.shuffle(x)
    return np.ascontiguousarray(x)


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


# ---- agreement with scikit-learn from the same initial parameters -----------------------

DATASETS = compare_sklearn.make_datasets()
CASES = [(di, cov) for di in range(len(DATASETS)) for cov in COV_TYPES]


@pytest.mark.parametrize("di,cov", CASES, ids=[f"{DATASETS[di][0]}-{cov}" for di, cov in CASES])
def test_agrees_with_sklearn(di, cov):
    """weights_, means_, covariances_, precisions_cholesky_, lower_bound_, the lower-bound
    trace, n_iter_ and converged_ agree with scikit-learn to 1e-8 relative (the rules of
    scripts/compare_sklearn.py: the means of empty components are left out)."""
    name, x, k, scheme, tol, reg, max_iter = DATASETS[di]
    w0, m0, p0 = compare_sklearn.initial_parameters(x, k, scheme, cov, reg, seed=100 + di)
    sk = compare_sklearn.fit_sklearn(x, k, cov, tol, reg, max_iter, w0, m0, p0)
    gm = cuem.GaussianMixture(
        k,
        covariance_type=cov,
        tol=tol,
        reg_covar=reg,
        max_iter=max_iter,
        weights_init=w0,
        means_init=m0,
        precisions_init=p0,
        random_state=0,
    )
    fit_quietly(gm, x)
    cu = {
        "converged": gm.converged_,
        "n_iter": gm.n_iter_,
        "lower_bound": gm.lower_bound_,
        "weights": np.ravel(gm.weights_),
        "means": np.ravel(gm.means_),
        "covariances": np.ravel(gm.covariances_),
        "precisions_cholesky": np.ravel(gm.precisions_cholesky_),
        "trace": np.asarray(gm.lower_bounds_),
    }
    diffs, problems = compare_sklearn.compare(sk, cu, RTOL, x.shape[0])
    assert not problems, f"{name}/{cov}: {problems} (diffs {diffs})"
    assert np.linalg.norm(gm.means_) > 0 and gm.n_iter_ >= 1  # not vacuous
    # The shapes are scikit-learn's, and precisions_ is derived as scikit-learn derives it.
    ref = SkGaussianMixture(k, covariance_type=cov, weights_init=w0, means_init=m0, precisions_init=p0)
    fit_quietly(ref.set_params(max_iter=1), x)
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(gm, attr).shape == getattr(ref, attr).shape, attr
        assert getattr(gm, attr).dtype == np.float64, attr
    np.testing.assert_allclose(gm.precisions_, precisions_as_sklearn_derives(gm), rtol=1e-12, atol=0)


def precisions_as_sklearn_derives(gm):
    pc = gm.precisions_cholesky_
    if gm.covariance_type == "full":
        return np.stack([p @ p.T for p in pc])
    if gm.covariance_type == "tied":
        return pc @ pc.T
    return pc**2


@pytest.mark.parametrize("cov", COV_TYPES)
def test_model_methods_equal_sklearn_on_the_same_parameters(cov):
    """predict, predict_proba, score_samples, score, bic and aic equal scikit-learn's
    when scikit-learn is given cuem's fitted parameters."""
    X = blobs(seed=3, n=900, d=3, k=3)
    gm = fit_quietly(cuem.GaussianMixture(3, covariance_type=cov, random_state=1), X)
    sk = SkGaussianMixture(3, covariance_type=cov)
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        setattr(sk, attr, getattr(gm, attr).copy())
    sk.n_features_in_ = X.shape[1]
    sk.converged_ = True
    Xt = blobs(seed=4, n=300, d=3, k=3)
    np.testing.assert_array_equal(gm.predict(Xt), sk.predict(Xt))
    np.testing.assert_allclose(gm.predict_proba(Xt), sk.predict_proba(Xt), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gm.score_samples(Xt), sk.score_samples(Xt), rtol=1e-10)
    assert gm.score(Xt) == pytest.approx(sk.score(Xt), rel=1e-10)
    assert gm.bic(Xt) == pytest.approx(sk.bic(Xt), rel=1e-10)
    assert gm.aic(Xt) == pytest.approx(sk.aic(Xt), rel=1e-10)
    assert gm.predict(Xt).dtype == np.int64


# ---- scikit-learn's estimator checks ------------------------------------------------------

# Checks that cuem.GaussianMixture is expected to fail, with the reason. None: it passes
# every check of the installed scikit-learn (see the module docstring of cuem.mixture),
# the sample-weight checks included (fit takes sample_weight).
EXPECTED_FAILED_CHECKS = {}


def test_bic_and_aic_come_from_one_criteria_pass_on_the_estimators_device():
    """bic and aic are one pass on the estimator's device (criteria); on the CPU that is
    bitwise the float64 bic() and aic() of the library, and its score is score()'s."""
    X = blobs(seed=5, n=600, d=3, k=3)
    gm = fit_quietly(cuem.GaussianMixture(3, covariance_type="diag", random_state=2), X)
    score, bic, aic, total = _cuem.criteria(X, *gm._model_arrays(), **gm._where())
    assert gm.bic(X) == bic == _cuem.bic(X, *gm._model_arrays())
    assert gm.aic(X) == aic == _cuem.aic(X, *gm._model_arrays())
    assert gm.score(X) == score
    assert total == len(X)


@parametrize_with_checks([cuem.GaussianMixture()], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_is_a_sklearn_density_estimator():
    from sklearn.base import BaseEstimator, DensityMixin, clone, is_clusterer

    gm = cuem.GaussianMixture(4, covariance_type="diag", device="auto")
    assert isinstance(gm, BaseEstimator) and isinstance(gm, DensityMixin)
    assert not is_clusterer(gm)  # as scikit-learn's GaussianMixture
    assert sklearn.utils.get_tags(gm).estimator_type == "density_estimator"
    assert clone(gm).get_params() == gm.get_params()
    sk_params = set(SkGaussianMixture().get_params())
    assert sk_params <= set(gm.get_params())
    assert set(gm.get_params()) - sk_params == {
        "device", "precision", "device_memory_limit", "missing", "acceleration",
        "incremental_blocks", "first_pass", "max_block_steps", "learning_decay", "learning_offset"}


# ---- pickling ---------------------------------------------------------------------------


@pytest.mark.parametrize("cov", COV_TYPES)
def test_pickle_round_trip(cov):
    X = blobs(seed=5, n=600, d=3, k=3)
    gm = fit_quietly(cuem.GaussianMixture(3, covariance_type=cov, random_state=0), X)
    copy = pickle.loads(pickle.dumps(gm))
    assert copy.get_params() == gm.get_params()
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        a, b = getattr(gm, attr), getattr(copy, attr)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), attr
    for attr in ("converged_", "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_"):
        assert getattr(gm, attr) == getattr(copy, attr), attr
    np.testing.assert_array_equal(gm.predict(X), copy.predict(X))
    assert gm.predict_proba(X).tobytes() == copy.predict_proba(X).tobytes()
    assert gm.score_samples(X).tobytes() == copy.score_samples(X).tobytes()
    s1, s2 = gm.sample(50), copy.sample(50)
    assert s1[0].tobytes() == s2[0].tobytes() and s1[1].tobytes() == s2[1].tobytes()
    # An unfitted estimator pickles too.
    assert pickle.loads(pickle.dumps(cuem.GaussianMixture(2))).get_params() == cuem.GaussianMixture(2).get_params()


# ---- errors -------------------------------------------------------------------------------


def test_nan_and_inf_are_value_errors():
    X = blobs()
    X[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cuem.GaussianMixture(2).fit(X)
    X[7, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        cuem.GaussianMixture(2).fit(X)
    gm = cuem.GaussianMixture(2, random_state=0).fit(blobs())
    with pytest.raises(ValueError, match="NaN"):
        gm.predict(np.array([[0.0, np.nan]]))


def test_more_components_than_points():
    X = blobs(n=30)[:5]
    with pytest.raises(ValueError, match="more than the 5 points"):
        cuem.GaussianMixture(6).fit(X)
    with pytest.raises(cuem.DataError):
        cuem.GaussianMixture(6).fit(X)


def test_wrong_number_of_features_at_predict():
    gm = cuem.GaussianMixture(2, random_state=0).fit(blobs(d=2))
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(ValueError, match="3 features"):
            getattr(gm, method)(np.ones((4, 3)))


def test_not_fitted():
    gm = cuem.GaussianMixture(2)
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(NotFittedError):
            getattr(gm, method)(blobs())
    with pytest.raises(NotFittedError):
        gm.sample(3)
    assert issubclass(cuem.NotFittedError, ValueError) and issubclass(cuem.NotFittedError, AttributeError)


def test_convergence_warning():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        gm = cuem.GaussianMixture(3, max_iter=1, random_state=0).fit(blobs())
    assert gm.converged_ is False and gm.n_iter_ == 1
    assert cuem.ConvergenceWarning is ConvergenceWarning


def test_not_positive_definite_is_a_value_error():
    # Two distinct points, each repeated: with reg_covar = 0 every full covariance is
    # singular; scikit-learn raises ValueError here too.
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 10, axis=0)
    gm = cuem.GaussianMixture(2, reg_covar=0.0, init_params="random_from_data", random_state=0)
    with pytest.raises(cuem.NumericalError, match="reg_covar") as info:
        gm.fit(X)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "params",
    [
        {"n_components": 0},
        {"n_components": 1.5},
        {"covariance_type": "banded"},
        {"tol": -1.0},
        {"reg_covar": float("nan")},
        {"max_iter": 0},
        {"n_init": 0},
        {"init_params": "kmeans+"},
        {"random_state": -1},
        {"random_state": "seed"},
        {"verbose_interval": 0},
        {"device": "gpu"},
        {"precision": "float16"},
        {"device_memory_limit": 0},
        {"device_memory_limit": -1},
        {"device_memory_limit": 1.5e9},
        {"device_memory_limit": True},
    ],
)
def test_invalid_parameters(params):
    with pytest.raises(cuem.InvalidParameterError) as info:
        cuem.GaussianMixture(**params).fit(blobs())
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    assert next(iter(params)) in str(info.value)


def test_invalid_initial_parameters():
    X = blobs(d=2)
    with pytest.raises(ValueError, match="means_init"):
        cuem.GaussianMixture(3, means_init=np.zeros((2, 3))).fit(X)
    with pytest.raises(ValueError, match="weights_init must sum to 1"):
        cuem.GaussianMixture(3, weights_init=[0.5, 0.5, 0.5]).fit(X)
    with pytest.raises(ValueError, match="positive definite"):
        cuem.GaussianMixture(3, precisions_init=-np.stack([np.eye(2)] * 3)).fit(X)


def driver_device_count():
    """CUDA devices as the NVIDIA driver itself counts them (libcuda through ctypes, not
    cuem): which of the device tests below applies is decided without the code they test.
    0 where there is no driver."""
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def cuda_build():
    """Whether the package was built with the CUDA backend: scripts/test_python.sh passes
    the build's choice in CUEM_WITH_CUDA, and the library must say the same."""
    import os

    given = os.environ.get("CUEM_WITH_CUDA")
    if given is not None:
        assert cuem.built_with_cuda() == (given.upper() in ("ON", "1", "TRUE")), given
    return cuem.built_with_cuda()


NOT_BUILT = ("this cuem was built without CUDA; use device 'cpu' or 'auto', or rebuild with -DCUEM_WITH_CUDA=ON "
             "on a machine with nvcc.")
NO_DEVICE = re.compile(r"device 'cuda' was requested but no CUDA device is usable \((.+)\)\. Use device 'cpu' or 'auto'\.")


def fit_auto(X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = cuem.GaussianMixture(3, random_state=0, device="auto").fit(X)
    return auto, [str(w.message) for w in caught]


def devices_and_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = cuem.devices()
    return found, [(w.category, str(w.message)) for w in caught]


def test_device_cuda_in_a_build_without_cuda():
    if cuda_build():
        pytest.skip("this package was built with the CUDA backend")
    X = blobs()
    with pytest.raises(cuem.DeviceError) as info:
        cuem.GaussianMixture(3, random_state=0, device="cuda").fit(X)
    assert isinstance(info.value, RuntimeError)
    assert str(info.value) == NOT_BUILT
    found, caught = devices_and_warnings()
    assert found == [] and caught == [(RuntimeWarning, "no CUDA device: this cuem was built without CUDA")]
    auto, messages = fit_auto(X)
    assert auto.device_ == "cpu"
    assert messages == ["device 'auto': this cuem was built without CUDA, running on the CPU"]
    cpu = cuem.GaussianMixture(3, random_state=0).fit(X)
    assert auto.means_.tobytes() == cpu.means_.tobytes()


def test_device_cuda_without_a_device():
    if not cuda_build():
        pytest.skip("this package was built without CUDA (test_device_cuda_in_a_build_without_cuda applies)")
    if driver_device_count() > 0:
        pytest.skip("the NVIDIA driver reports a CUDA device (test_device_cuda_with_a_device applies)")
    X = blobs()
    with pytest.raises(cuem.DeviceError) as info:
        cuem.GaussianMixture(3, random_state=0, device="cuda").fit(X)
    assert isinstance(info.value, RuntimeError)
    match = NO_DEVICE.fullmatch(str(info.value))
    assert match, str(info.value)
    reason = match.group(1)
    found, caught = devices_and_warnings()
    assert found == [] and caught == [(RuntimeWarning, f"no CUDA device: {reason}")]
    auto, messages = fit_auto(X)
    assert auto.device_ == "cpu"
    assert messages == [f"device 'auto': no usable CUDA device ({reason}), running on the CPU"]
    cpu = cuem.GaussianMixture(3, random_state=0).fit(X)
    assert auto.means_.tobytes() == cpu.means_.tobytes()


def test_device_cuda_with_a_device():
    count = driver_device_count()
    if not cuda_build() or count == 0:
        pytest.skip("needs a CUDA build and a CUDA device (the NVIDIA driver reports none, or the build has no CUDA)")
    found, caught = devices_and_warnings()
    assert caught == [] and len(found) == count
    for i, d in enumerate(found):
        assert d["index"] == i and d["name"] and d["total_memory"] > 0
        assert len(d["compute_capability"]) == 2
    X = blobs()
    cpu = cuem.GaussianMixture(3, random_state=0).fit(X)
    gpu = cuem.GaussianMixture(3, random_state=0, device="cuda").fit(X)
    assert gpu.device_.startswith("cuda:0"), gpu.device_
    # float32 on the device against the float64 CPU path, on well-separated blobs.
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-4)
    np.testing.assert_allclose(gpu.weights_, cpu.weights_, rtol=1e-4)
    np.testing.assert_allclose(gpu.covariances_, cpu.covariances_, rtol=1e-3)
    auto, messages = fit_auto(X)
    assert auto.device_.startswith("cuda:0"), auto.device_
    assert not [m for m in messages if "CPU" in m], messages
    np.testing.assert_allclose(auto.means_, cpu.means_, rtol=1e-4)
    np.testing.assert_array_equal(auto.predict(X), cpu.predict(X))


# ---- input conversion and no copies -------------------------------------------------------


def test_fit_does_not_copy_c_contiguous_float64():
    """tracemalloc sees every NumPy allocation; a copy of X (or a same-sized temporary)
    would show as a peak of at least X.nbytes."""
    X = np.random.default_rng(0).normal(size=(1_000_000, 4))
    gm = cuem.GaussianMixture(2, covariance_type="diag", max_iter=2, init_params="random_from_data", random_state=0)
    tracemalloc.start()
    try:
        fit_quietly(gm, X)
        gm.predict(X)
        gm.score_samples(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 20, f"peak Python allocation {peak} B during fit of a {X.nbytes} B array"


def test_float32_is_read_in_place():
    """A C-contiguous float32 array is not copied either, and since cuem computes in
    float64 the fit equals, bitwise, the fit of its exact float64 conversion."""
    X = np.random.default_rng(1).normal(size=(500_000, 4)).astype(np.float32)
    gm = cuem.GaussianMixture(2, covariance_type="diag", max_iter=2, init_params="random_from_data", random_state=0)
    tracemalloc.start()
    try:
        fit_quietly(gm, X)
        gm.predict(X)
        gm.score_samples(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 20, f"peak Python allocation {peak} B during fit of a {X.nbytes} B float32 array"
    ref = fit_quietly(gm.__class__(**gm.get_params()), X.astype(np.float64))
    assert gm.means_.dtype == np.float64
    assert gm.means_.tobytes() == ref.means_.tobytes()
    assert gm.score_samples(X).tobytes() == ref.score_samples(X.astype(np.float64)).tobytes()


def test_low_level_fit_refuses_what_it_would_have_to_copy():
    X = blobs()
    args = dict(n_components=2, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=5, n_init=1,
                init_params="kmeans", seed=0)
    for bad in (X.astype(np.int64), np.asfortranarray(X), X[::-1], X.tolist()):
        with pytest.raises(TypeError):
            _cuem.fit(bad, **args)
    assert _cuem.fit(X, **args)["n_iter"] >= 1
    assert _cuem.fit(X.astype(np.float32), **args)["n_iter"] >= 1
    # A read-only array is fine: cuem only reads the data.
    X.setflags(write=False)
    assert _cuem.fit(X, **args)["n_iter"] >= 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_strided_views_are_read_in_place(dtype):
    """Column slices and every other row reach cuem without a copy: the binding views
    the array's own memory (its data pointer and row stride), the estimator's validation
    hands the same object on, and the results equal, bitwise, those on a C-ordered copy."""
    wide = np.ascontiguousarray(np.repeat(blobs(seed=5, n=900, d=3), 2, axis=0)[:, [0, 1, 2, 0, 1, 2, 2]], dtype=dtype)
    wide[:, 3:] += 1e3
    views = {"columns": wide[:, :3], "every_other_row": wide[::2], "rows_and_columns": wide[1::2, 1:4],
             "one_column": wide[:, 2:3]}
    for name, V in views.items():
        assert not V.flags.c_contiguous, name
        info = _cuem._data_view(V)
        assert info["pointer"] == V.__array_interface__["data"][0], name
        assert (info["n_rows"], info["n_cols"]) == V.shape, name
        assert info["row_stride"] == V.strides[0] // V.itemsize, name
        assert info["dtype"] == np.dtype(dtype).name, name
        gm = cuem.GaussianMixture(3, covariance_type="full", random_state=0)
        assert gm._validate_X(V, reset=True) is V, name
        ref = fit_quietly(cuem.GaussianMixture(3, covariance_type="full", random_state=0), np.ascontiguousarray(V))
        fit_quietly(gm, V)
        assert gm.means_.tobytes() == ref.means_.tobytes(), name
        assert gm.covariances_.tobytes() == ref.covariances_.tobytes(), name
        np.testing.assert_array_equal(gm.predict(V), ref.predict(np.ascontiguousarray(V)))
        assert gm.score_samples(V).tobytes() == ref.score_samples(np.ascontiguousarray(V)).tobytes(), name
        assert gm.score(V) == ref.score(np.ascontiguousarray(V)), name


def test_a_strided_view_is_not_copied():
    """tracemalloc, as for C-contiguous input: a column slice of every other row of a
    large matrix is fitted and evaluated with no allocation the size of the view."""
    wide = np.random.default_rng(3).normal(size=(1_000_000, 6))
    V = wide[::2, 1:5]
    gm = cuem.GaussianMixture(2, covariance_type="diag", max_iter=2, init_params="random_from_data", random_state=0)
    tracemalloc.start()
    try:
        fit_quietly(gm, V)
        gm.predict(V)
        gm.score_samples(V)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < V.nbytes / 20, f"peak Python allocation {peak} B during fit of a {V.nbytes} B view"


def test_layouts_cuem_cannot_view_are_converted_once():
    """Fortran order and negative strides have no row stride cuem can read: the binding
    refuses them (TypeError) and the estimator converts them once to C order, keeping
    float32 as float32."""
    X = blobs(seed=6)
    ref = fit_quietly(cuem.GaussianMixture(3, random_state=0), X)
    gm = cuem.GaussianMixture(3, random_state=0)
    for other, same in ((np.asfortranarray(X), X), (X[::-1], X[::-1].copy()),
                        (np.asfortranarray(X.astype(np.float32)), X.astype(np.float32))):
        with pytest.raises(TypeError):
            _cuem._data_view(other)
        converted = gm._validate_X(other, reset=True)
        assert converted.flags.c_contiguous and converted.dtype == other.dtype
        assert not np.shares_memory(converted, other)
        assert fit_quietly(cuem.GaussianMixture(3, random_state=0), other).means_.tobytes() == \
            fit_quietly(cuem.GaussianMixture(3, random_state=0), same).means_.tobytes()
    assert ref.means_.tobytes() == fit_quietly(cuem.GaussianMixture(3, random_state=0), np.asfortranarray(X)).means_.tobytes()


class HostDLPack:
    """An object that exports only DLPack (as a torch CPU tensor does), over a NumPy array."""

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_host_dlpack_objects_are_read_in_place(dtype):
    """A CPU DLPack export, strided included, reaches cuem as a view of the same memory:
    the binding's DLPack import (as for a torch CPU tensor) and the estimator's path both
    keep the array's pointer, and the fit equals the NumPy array's bitwise."""
    wide = np.ascontiguousarray(np.repeat(blobs(seed=7, n=600, d=3), 2, axis=0), dtype=dtype)
    for V in (np.ascontiguousarray(wide[:, :2]), wide[:, :2], wide[::2, 1:]):
        info = _cuem._data_view(HostDLPack(V))
        assert info["pointer"] == V.__array_interface__["data"][0]
        assert info["row_stride"] == V.strides[0] // V.itemsize and info["device"] == "cpu"
        gm = cuem.GaussianMixture(3, random_state=0)
        assert np.shares_memory(gm._validate_X(HostDLPack(V), reset=True), V)
        ref = fit_quietly(cuem.GaussianMixture(3, random_state=0), V)
        fit_quietly(gm, HostDLPack(V))
        assert gm.means_.tobytes() == ref.means_.tobytes()
        assert gm.score_samples(HostDLPack(V)).tobytes() == ref.score_samples(V).tobytes()


def test_cuda_array_interface_without_dlpack_is_a_clear_error():
    class InterfaceOnly:
        __cuda_array_interface__ = {"shape": (4, 2), "typestr": "<f4", "data": (0, True), "version": 3}
        shape = (4, 2)

    with pytest.raises(TypeError, match="__dlpack__"):
        cuem.GaussianMixture(2).fit(InterfaceOnly())


def _cuda_arrays():
    """CUDA array modules importable here with a device (CuPy, torch), and why none is."""
    found, why = [], []
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            found.append(("cupy", lambda a: cupy.asarray(a)))
    except Exception as e:  # not installed, or no driver or device
        why.append(f"cupy: {type(e).__name__}")
    try:
        import torch

        if torch.cuda.is_available():
            found.append(("torch", lambda a: torch.as_tensor(a, device="cuda")))
        else:
            why.append("torch: no CUDA device")
    except Exception as e:
        why.append(f"torch: {type(e).__name__}")
    return found, "; ".join(why)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_arrays_are_fitted_on_the_device(dtype):
    """torch.cuda / CuPy tensors (strided too) are fitted and evaluated in place on their
    device: the binding sees a device view at the tensor's own pointer, and the results
    agree with the host array's to the working precision (the device computes the
    column means in another order). Needs a CUDA device and CuPy or torch."""
    found, why = _cuda_arrays()
    if not found:
        pytest.skip(f"no CUDA array module with a device ({why})")
    X = np.ascontiguousarray(np.repeat(blobs(seed=8, n=3000, d=4), 2, axis=0), dtype=dtype)
    for name, to_device in found:
        whole = to_device(X)
        for V, D in ((X, whole), (X[::2, 1:], whole[::2, 1:])):
            info = _cuem._data_view(D)
            assert info["device"].startswith("cuda:"), name
            gm = cuem.GaussianMixture(3, random_state=0, device="cuda")
            ref = fit_quietly(cuem.GaussianMixture(3, random_state=0, device="cuda"), V)
            fit_quietly(gm, D)
            np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-4, atol=1e-4)
            np.testing.assert_array_equal(gm.predict(D), ref.predict(V))
            with pytest.raises(ValueError, match="CPU backend"):
                cuem.GaussianMixture(3, random_state=0, device="cpu").fit(D)


def test_array_likes_are_converted():
    X = blobs(seed=2)
    ref = cuem.GaussianMixture(3, random_state=0).fit(X)
    for other in (X.tolist(), np.asfortranarray(X), np.repeat(X, 2, axis=0)[::2]):
        gm = cuem.GaussianMixture(3, random_state=0).fit(other)
        assert gm.means_.tobytes() == ref.means_.tobytes()


@pytest.mark.parametrize("with_sklearn_validation", [True, False], ids=["sklearn-validation", "own-validation"])
def test_dataframe_feature_names(monkeypatch, with_sklearn_validation):
    pd = pytest.importorskip("pandas", reason="pandas is not installed (scripts/test.sh puts it in the test venv)")
    if not with_sklearn_validation:  # the path taken where scikit-learn is not installed
        monkeypatch.setattr(cuem.mixture, "_HAVE_SKLEARN", False)
    X = blobs(seed=2)
    ref = cuem.GaussianMixture(3, random_state=0).fit(X)
    # Mixed column dtypes: the frame is converted to the float64 array, column by column.
    df = pd.DataFrame({"a": X[:, 0], "b": X[:, 1].astype(np.float32)})
    Xf = np.column_stack([X[:, 0], X[:, 1].astype(np.float32).astype(np.float64)])
    gm = cuem.GaussianMixture(3, random_state=0).fit(df)
    assert list(gm.feature_names_in_) == ["a", "b"]
    assert gm.means_.tobytes() == cuem.GaussianMixture(3, random_state=0).fit(Xf).means_.tobytes()
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-6)  # the float32 column's rounding only
    with warnings.catch_warnings():  # an array for a model fitted with names: checked below
        warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
        labels = gm.predict(Xf)
        proba = gm.predict_proba(Xf)
        log_density = gm.score_samples(Xf)
    np.testing.assert_array_equal(gm.predict(df), labels)
    np.testing.assert_array_equal(gm.predict_proba(df), proba)
    np.testing.assert_array_equal(gm.score_samples(df), log_density)
    # A frame whose rows carry an index other than 0..N-1 is read by position.
    shuffled = df.sample(frac=1.0, random_state=1)
    np.testing.assert_array_equal(gm.predict(shuffled), labels[shuffled.index.to_numpy()])
    # Fitting an array afterwards forgets the names.
    assert not hasattr(cuem.GaussianMixture(3, random_state=0).fit(df).fit(X), "feature_names_in_")
    if with_sklearn_validation:  # scikit-learn's own name checks, as its GaussianMixture makes them
        with pytest.warns(UserWarning, match="feature names"):
            gm.predict(Xf)
        with pytest.raises(ValueError, match="feature names"):
            gm.predict(df[["b", "a"]])
        with pytest.warns(UserWarning, match="feature names"):
            ref.predict(df)


# ---- the GIL and Ctrl-C -------------------------------------------------------------------


def long_fit_data():
    return np.random.default_rng(0).normal(size=(100_000, 6))


def test_gil_is_released_during_fit():
    """A Python thread that ticks every millisecond keeps ticking while the main thread
    fits; with the GIL held it would be frozen for the whole fit (apart from the brief
    signal checks). Fits are repeated until they have run for at least half a second."""
    X = long_fit_data()
    gm = cuem.GaussianMixture(6, tol=0.0, max_iter=8, init_params="random_from_data", random_state=0)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    windows = []
    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        time.sleep(0.05)
        while sum(t1 - t0 for t0, t1 in windows) < 0.5:
            t0 = time.perf_counter()
            fit_quietly(gm, X)
            windows.append((t0, time.perf_counter()))
    finally:
        stop.set()
        thread.join()
    fitting = sum(t1 - t0 for t0, t1 in windows)
    during = 0
    longest_gap = 0.0
    for t0, t1 in windows:
        inside = [t for t in ticks if t0 <= t <= t1]
        during += len(inside)
        longest_gap = max(longest_gap, max(np.diff([t0] + inside + [t1])))
    assert during > 0.2 * fitting / 0.001, f"{during} ticks in {fitting:.2f} s of fitting"
    assert longest_gap < 0.25, f"the ticking thread stalled for {longest_gap:.3f} s"


CTRL_C_CHILD = textwrap.dedent(
    """
    import signal, sys, time, warnings
    import numpy as np
    import cuem
    # Python leaves SIGINT ignored when it starts ignored, as it does under a background
    # job of a non-interactive shell (a CI runner's, say): take Ctrl-C as a user would.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    X = np.random.default_rng(0).normal(size=(200_000, 8))
    gm = cuem.GaussianMixture(8, tol=0.0, max_iter=100000, init_params="{init}", random_state=0)
    print("fitting", flush=True)
    try:
        gm.fit(X)
    except KeyboardInterrupt:
        print("interrupted", time.time(), hasattr(gm, "weights_"), flush=True)
        sys.exit(0)
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("init", ["random_from_data", "kmeans"])
def test_ctrl_c_stops_a_long_fit(init):
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD.format(init=init)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "fitting"
        time.sleep(1.0)
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    fields = out.split()
    assert fields[0] == "interrupted", out + err
    latency = float(fields[1]) - sent
    assert latency < 2.0, f"KeyboardInterrupt came {latency:.2f} s after SIGINT"
    assert fields[2] == "False", "an interrupted fit must leave the estimator unfitted"


def test_iteration_callback_errors_propagate():
    X = blobs()
    args = dict(n_components=2, covariance_type="full", tol=0.0, reg_covar=1e-6, max_iter=50, n_init=1,
                init_params="kmeans", seed=0)

    def boom(*_):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _cuem.fit(X, on_iteration=boom, **args)
    seen = []
    r = _cuem.fit(X, on_iteration=lambda init, it, ll, change, s: seen.append(it) or it < 3, **args)
    assert seen == [1, 2, 3] and r["n_iter"] == 3 and not r["converged"]


# ---- random_state, warm_start, fit_predict, sample, verbose -------------------------------


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_int_random_state_is_deterministic(init_params):
    X = blobs(seed=6, n=900, d=3, k=4)
    a = fit_quietly(cuem.GaussianMixture(4, init_params=init_params, random_state=7, n_init=2), X)
    b = fit_quietly(cuem.GaussianMixture(4, init_params=init_params, random_state=7, n_init=2), X)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert getattr(a, attr).tobytes() == getattr(b, attr).tobytes(), attr
    assert a.n_iter_ == b.n_iter_ and a.lower_bounds_ == b.lower_bounds_


def test_random_state_none_and_instances():
    X = blobs(seed=6, n=900, d=3, k=4)

    def means(rs):
        return fit_quietly(cuem.GaussianMixture(4, init_params="random", max_iter=3, random_state=rs), X).means_

    np.random.seed(3)
    first = means(None)
    np.random.seed(3)
    assert means(None).tobytes() == first.tobytes()  # None draws from NumPy's global state
    rs = np.random.RandomState(0)
    a, b = means(rs), means(rs)
    assert a.tobytes() != b.tobytes()  # a RandomState advances between fits
    assert means(np.random.RandomState(0)).tobytes() == a.tobytes()
    assert means(1).tobytes() != means(2).tobytes()


def test_warm_start_continues_the_fit():
    X, k = blobs(seed=8, n=900, d=2, k=3, spread=2.0), 3
    w0, m0, p0 = compare_sklearn.initial_parameters(X, k, "points", "full", 1e-6, seed=1)
    init = dict(weights_init=w0, means_init=m0, precisions_init=p0, tol=0.0)
    whole = fit_quietly(cuem.GaussianMixture(k, max_iter=10, **init), X)
    warm = cuem.GaussianMixture(k, max_iter=5, warm_start=True, n_init=3, **init)
    fit_quietly(warm, X)
    first_bound = warm.lower_bound_
    fit_quietly(warm, X)
    assert warm.n_iter_ == 5 and warm.lower_bounds_[0] >= first_bound - 1e-12
    np.testing.assert_allclose(warm.lower_bounds_, whole.lower_bounds_[5:], rtol=1e-10)
    for attr in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(warm, attr), getattr(whole, attr), rtol=RTOL)
    # scikit-learn's warm start reaches the same parameters.
    sk = SkGaussianMixture(k, max_iter=5, warm_start=True, **init)
    fit_quietly(sk, X)
    fit_quietly(sk, X)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(warm, attr), getattr(sk, attr), rtol=RTOL)
    assert warm.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-12)


@pytest.mark.parametrize("cov", COV_TYPES)
def test_fit_predict_equals_fit_then_predict(cov):
    X = blobs(seed=9, n=600, d=3, k=3, spread=2.5)
    labels = fit_quietly(cuem.GaussianMixture(3, covariance_type=cov, max_iter=3, random_state=0), X).predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fp = cuem.GaussianMixture(3, covariance_type=cov, max_iter=3, random_state=0).fit_predict(X)
    np.testing.assert_array_equal(fp, labels)
    assert fp.dtype == np.int64


@pytest.mark.parametrize("cov", COV_TYPES)
def test_sample(cov):
    X = blobs(seed=10, n=900, d=3, k=3)
    gm = fit_quietly(cuem.GaussianMixture(3, covariance_type=cov, random_state=0), X)
    S, y = gm.sample(3000)
    assert S.shape == (3000, 3) and S.dtype == np.float64
    assert y.shape == (3000,) and y.dtype == np.int64
    assert np.all(np.diff(y) >= 0), "samples are grouped by component, as scikit-learn's"
    np.testing.assert_allclose(np.bincount(y, minlength=3) / 3000, gm.weights_, atol=0.05)
    for k in range(3):
        np.testing.assert_allclose(S[y == k].mean(axis=0), gm.means_[k], atol=0.25)
    again = gm.sample(3000)
    assert again[0].tobytes() == S.tobytes()  # an int random_state repeats its draws
    assert gm.sample(1)[0].shape == (1, 3)
    with pytest.raises(ValueError, match="n_samples"):
        gm.sample(0)


def test_verbose_output_matches_sklearn(capsys):
    X, k = blobs(seed=11, n=600, d=2, k=3, spread=3.0), 3
    w0, m0, p0 = compare_sklearn.initial_parameters(X, k, "points", "diag", 1e-6, seed=2)
    params = dict(covariance_type="diag", weights_init=w0, means_init=m0, precisions_init=p0, verbose=1,
                  verbose_interval=2, tol=1e-6)
    fit_quietly(SkGaussianMixture(k, **params), X)
    expected = capsys.readouterr().out
    fit_quietly(cuem.GaussianMixture(k, **params), X)
    assert capsys.readouterr().out == expected
    assert "Initialization converged." in expected

    fit_quietly(cuem.GaussianMixture(k, **dict(params, verbose=2, max_iter=4, tol=0.0)), X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Initialization 0"
    assert re.fullmatch(r"  Iteration 2\t time lapse \d+\.\d{5}s\t ll change -?\d+\.\d{5}", lines[1])
    assert re.fullmatch(r"Initialization did not converge\. time lapse \d+\.\d{5}s\t lower bound -?\d+\.\d{5}\.",
                        lines[-1])


# ---- without scikit-learn -----------------------------------------------------------------

WITHOUT_SKLEARN = textwrap.dedent(
    """
    import sys, warnings, pickle
    sys.modules["sklearn"] = None  # any import of scikit-learn fails
    import numpy as np
    import cuem

    def raises(kind, fn, text):
        try:
            fn()
        except kind as e:
            assert text in str(e), str(e)
            return e
        raise AssertionError(f"no {kind.__name__} raised")

    X = np.random.default_rng(0).normal(size=(300, 2))
    gm = cuem.GaussianMixture(2, random_state=0)
    e = raises(cuem.NotFittedError, lambda: gm.predict(X), "not fitted")
    assert isinstance(e, ValueError) and isinstance(e, AttributeError)
    gm.fit(X)
    assert gm.n_features_in_ == 2 and gm.predict(X).shape == (300,)
    assert repr(gm) == "GaussianMixture(n_components=2, random_state=0)", repr(gm)
    assert gm.get_params()["device"] == "cpu" and gm.set_params(tol=1e-4) is gm
    assert pickle.loads(pickle.dumps(gm)).means_.tobytes() == gm.means_.tobytes()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        cuem.GaussianMixture(2, max_iter=1, random_state=0).fit(X)
    assert any(issubclass(x.category, cuem.ConvergenceWarning) for x in w)
    raises(ValueError, lambda: gm.predict(np.ones((3, 5))), "5 features")
    raises(ValueError, lambda: cuem.GaussianMixture(2).fit(X[:1]), "1 sample")
    raises(ValueError, lambda: gm.predict(np.ones(3)), "2D array")
    X[3, 1] = np.nan
    raises(ValueError, lambda: cuem.GaussianMixture(2).fit(X), "row 3, column 1")
    assert not any(m == "sklearn" or m.startswith("sklearn.") for m, v in sys.modules.items() if v is not None)
    print("ok")
    """
)


def test_works_without_sklearn():
    proc = subprocess.run([sys.executable, "-c", WITHOUT_SKLEARN], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


def test_version():
    assert cuem.__version__ == "0.1.0" == cuem.library_version()
    assert isinstance(cuem.built_with_cuda(), bool)
