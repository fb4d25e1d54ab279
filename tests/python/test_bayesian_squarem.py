"""cuem.BayesianGaussianMixture(acceleration='squarem') (beyond scikit-learn): the same lower
bound as the plain fit in fewer E-step passes, a bound that never falls, and the
combination with pruning refused."""

import numpy as np
import pytest

import cuem
from cuem.mixture import InvalidParameterError


def _overlapping(seed=4, n=600):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    X[::3, 0] += 1.5
    return X


@pytest.mark.parametrize("cov", ["full", "diag"])
def test_squarem_reaches_the_plain_bound_in_fewer_passes(cov):
    X = _overlapping()
    common = dict(n_components=3, covariance_type=cov, tol=1e-7, max_iter=20000, random_state=1)
    plain = cuem.BayesianGaussianMixture(**common).fit(X)
    fast = cuem.BayesianGaussianMixture(acceleration="squarem", **common).fit(X)
    assert plain.converged_ and fast.converged_
    assert plain.n_estep_passes_ == plain.n_iter_
    assert fast.n_estep_passes_ < plain.n_estep_passes_
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-6
    assert fast.lower_bound_ == pytest.approx(plain.lower_bound_, abs=1e-4)
    assert all(b >= a - 1e-9 for a, b in zip(fast.lower_bounds_, fast.lower_bounds_[1:]))
    assert np.isnan(fast.convergence_rate_) or fast.convergence_rate_ > 0


def test_squarem_with_pruning_is_refused():
    est = cuem.BayesianGaussianMixture(n_components=3, acceleration="squarem", prune_threshold=0.01)
    with pytest.raises(InvalidParameterError, match="do not go together"):
        est.fit(_overlapping())


def test_unknown_acceleration_is_refused():
    with pytest.raises(InvalidParameterError, match="acceleration"):
        cuem.BayesianGaussianMixture(acceleration="fast").fit(_overlapping())
