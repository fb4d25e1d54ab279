"""GaussianMixture(acceleration='none'|'squarem') and the fitted convergence_rate_ and
n_estep_passes_.

OVERLAP is two unit-variance Gaussian blobs in 2-D whose centres are 1.6 apart: plain EM
crawls there (its rate is above 0.99), which is where SQUAREM pays. SEPARATED is two blobs
14 apart with spread 0.5: EM from k-means converges in two iterations, too few for a rate.
"""
import math
import pickle
import warnings

import numpy as np
import pytest

import cuem

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

TIGHT = dict(tol=1e-7, max_iter=5000)


def two_blobs(seed, centre, spread, n):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal([0, 0], spread, (n, 2)), rng.normal(centre, spread, (n, 2))])


OVERLAP = two_blobs(0, [1.5, 0.5], 1.0, 1000)
SEPARATED = two_blobs(1, [10, 10], 0.5, 300)


def rate_from_bounds(bounds):
    """EM's rate from one restart's bounds, as convergence_rate_ is defined: the square root
    of the geometric mean of the last three ratios of successive gains (each gain here far
    above rounding, at tol 1e-7)."""
    gains = np.diff(np.asarray(bounds))
    assert (gains[-4:] > 1e-8).all(), gains[-4:]
    ratios = gains[-3:] / gains[-4:-1]
    return math.exp(np.log(ratios).mean() / 2)


@pytest.fixture(scope="module")
def plain_and_squarem():
    plain = cuem.GaussianMixture(2, random_state=0, **TIGHT).fit(OVERLAP)
    fast = cuem.GaussianMixture(2, random_state=0, acceleration="squarem", **TIGHT).fit(OVERLAP)
    return plain, fast


# ---- SQUAREM against plain EM ---------------------------------------------------------


def test_squarem_reaches_plain_em_bound_in_fewer_passes(plain_and_squarem):
    plain, fast = plain_and_squarem
    assert plain.converged_ and fast.converged_
    assert plain.n_estep_passes_ > 100  # EM crawls here: the comparison means something
    # bench/NOTES.md measured 40-67% fewer passes at tol 1e-6 on fits this slow.
    assert fast.n_estep_passes_ < 0.6 * plain.n_estep_passes_, (fast.n_estep_passes_, plain.n_estep_passes_)
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-7
    # The same optimum: both models score the data alike and label it alike.
    assert fast.score(OVERLAP) == pytest.approx(plain.score(OVERLAP), abs=1e-5)
    assert (fast.predict(OVERLAP) == plain.predict(OVERLAP)).mean() > 0.99
    # SQUAREM's trace holds the points it kept, never falling.
    assert len(fast.lower_bounds_) == fast.n_iter_
    assert np.all(np.diff(fast.lower_bounds_) >= 0)


def test_squarem_max_iter_bounds_e_step_passes():
    gm = cuem.GaussianMixture(2, random_state=0, tol=0.0, max_iter=60, acceleration="squarem")
    with pytest.warns(ConvergenceWarning):
        gm.fit(OVERLAP)
    assert gm.n_estep_passes_ == 60
    assert len(gm.lower_bounds_) == gm.n_iter_ < 60  # the points kept, once it extrapolates


def test_placed_data_fit_takes_the_acceleration():
    placed = cuem.PlacedData(OVERLAP)
    on_array = cuem.GaussianMixture(2, random_state=0, acceleration="squarem", **TIGHT).fit(OVERLAP)
    on_placed = cuem.GaussianMixture(2, random_state=0, acceleration="squarem", **TIGHT).fit(placed)
    plain = cuem.GaussianMixture(2, random_state=0, **TIGHT).fit(placed)
    assert on_placed.n_estep_passes_ == on_array.n_estep_passes_ < plain.n_estep_passes_
    assert on_placed.lower_bound_ == on_array.lower_bound_  # the CPU path: bitwise the same
    np.testing.assert_array_equal(on_placed.means_, on_array.means_)


# ---- the fitted attributes ---------------------------------------------------------------


def test_plain_em_passes_are_its_iterations(plain_and_squarem):
    plain, _ = plain_and_squarem
    assert type(plain.n_estep_passes_) is int and type(plain.convergence_rate_) is float
    assert plain.n_estep_passes_ == plain.n_iter_ == len(plain.lower_bounds_)


def test_passes_count_every_restart(capsys):
    # verbose with an interval of 1 prints a line per iteration of every restart, from the
    # library's iteration callback: one E-step pass each for plain EM.
    gm = cuem.GaussianMixture(2, n_init=3, init_params="random", tol=1e-5, random_state=0, verbose=1,
                              verbose_interval=1).fit(OVERLAP)
    lines = capsys.readouterr().out.splitlines()
    iterations = [line for line in lines if line.startswith("  Iteration ")]
    assert sum(line.startswith("Initialization ") and "converge" not in line for line in lines) == 3
    assert gm.n_estep_passes_ == len(iterations) > gm.n_iter_


def test_convergence_rate_is_plain_em_rate_from_its_bounds(plain_and_squarem):
    plain, _ = plain_and_squarem
    expected = rate_from_bounds(plain.lower_bounds_)
    assert 0.99 < expected < 1
    assert plain.convergence_rate_ == pytest.approx(expected, rel=1e-9)


def test_squarem_rate_reads_low(plain_and_squarem):
    # Documented: SQUAREM's own estimate is from its plain steps after extrapolations that
    # removed the slow direction, so it is well below plain EM's.
    plain, fast = plain_and_squarem
    assert 0 < fast.convergence_rate_ < plain.convergence_rate_ - 0.1


def test_convergence_rate_nan_when_too_few_steps():
    gm = cuem.GaussianMixture(2, random_state=0).fit(SEPARATED)
    assert gm.converged_ and gm.n_iter_ == 2  # one change of the bound: no ratio to take
    assert type(gm.convergence_rate_) is float and math.isnan(gm.convergence_rate_)
    assert gm.n_estep_passes_ == 2


# ---- the parameter ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["SQUAREM", "fast", "", None, 1, True])
def test_invalid_acceleration(value):
    with pytest.raises(cuem.InvalidParameterError) as info:
        cuem.GaussianMixture(2, acceleration=value).fit(OVERLAP)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    message = str(info.value)
    assert "'acceleration'" in message and "'none'" in message and "'squarem'" in message, message


def test_default_get_params_clone_and_pickle():
    assert cuem.GaussianMixture().acceleration == "none"
    gm = cuem.GaussianMixture(2, acceleration="squarem", random_state=0)
    assert gm.get_params()["acceleration"] == "squarem"
    assert clone(gm).get_params()["acceleration"] == "squarem"
    assert "acceleration='squarem'" in repr(gm)
    gm.set_params(acceleration="none")
    assert gm.acceleration == "none"
    gm.set_params(acceleration="squarem")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(OVERLAP)
    copy = pickle.loads(pickle.dumps(gm))
    assert copy.acceleration == "squarem"
    assert copy.n_estep_passes_ == gm.n_estep_passes_
    assert copy.convergence_rate_ == gm.convergence_rate_


@parametrize_with_checks([cuem.GaussianMixture(acceleration="squarem")])
def test_sklearn_estimator_checks_with_squarem(estimator, check):
    check(estimator)
