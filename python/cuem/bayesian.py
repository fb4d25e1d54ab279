"""cuem.BayesianGaussianMixture: scikit-learn's BayesianGaussianMixture, computed by cuem.

The constructor parameters, their defaults and meanings, the fitted attributes and the
methods are scikit-learn's (``sklearn.mixture.BayesianGaussianMixture``), plus ``device``,
``precision`` and ``device_memory_limit`` as in ``cuem.GaussianMixture``. The variational
E-step is the engine's Gaussian E-step with the posterior's expected parameters, so it
runs on the CPU (float64) or a CUDA device; the M-step (the Normal-Wishart update) and the
lower bound are float64 on the host. Input data, ``random_state``, ``verbose`` and
``sample_weight`` are taken as ``cuem.GaussianMixture`` takes them.

Differences from scikit-learn
-----------------------------
- ``init_params`` uses cuem's random numbers: the same ``random_state`` gives a different
  (equally valid) start. From the same responsibilities the fits agree with
  scikit-learn's to rounding (tests/test_vb_gmm.cpp, tests/python/test_bayesian.py).
- ``max_iter`` must be at least 1.
- ``warm_start``: the next fit continues from the fitted posterior, but its first
  iteration is never counted as converged.
- ``fit``, ``fit_predict`` and ``score`` take ``sample_weight`` (a row of integer weight w
  counts as w copies of it; the default priors are then the weighted mean and covariance).
- A ``cuem.PlacedData`` is not taken yet.

Beyond scikit-learn
-------------------
- Pruning (scikit-learn lists it as a TODO): with ``prune_threshold`` > 0, a component
  whose share of the data (N_k / sum_j N_j, from the E-step) stays below it for
  ``prune_patience`` consecutive iterations is removed and the fit goes on with the rest.
  Off by default (``prune_threshold=0.0``), so the default fit is scikit-learn's. After a
  prune the fitted arrays have ``n_components_`` rows, and ``kept_components_`` gives each
  row's index among the ``n_components`` the fit started with; ``prunes_`` lists
  ``(iteration, [components])``. ``lower_bounds_`` then bounds different models before
  and after a prune: it may fall there, and nowhere else.
- ``acceleration='squarem'`` extrapolates the variational iterations as
  ``cuem.GaussianMixture`` does EM's (SQUAREM on the posterior's parameters, with the same
  safeguard: the lower bound never falls); not with pruning. ``convergence_rate_`` and
  ``n_estep_passes_`` are ``cuem.GaussianMixture``'s.
"""

import numbers
import warnings

import numpy as np

from . import _cuem
from .mixture import (
    _ACCELERATION,
    ConvergenceWarning,
    GaussianMixture,
    InvalidParameterError,
    PlacedData,
    _Bases,
    _seed_from,
    _VerbosePrinter,
    check_is_fitted,
)

_WEIGHT_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


class BayesianGaussianMixture(*_Bases):
    """Variational Bayesian estimation of a Gaussian mixture, by the cuem library.

    Parameters (scikit-learn's, see ``sklearn.mixture.BayesianGaussianMixture``)
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params,
    weight_concentration_prior_type, weight_concentration_prior, mean_precision_prior,
    mean_prior, degrees_of_freedom_prior, covariance_prior, random_state, warm_start,
    verbose, verbose_interval
        As scikit-learn's. ``tol`` applies to the change of the whole lower bound (not per
        sample), as scikit-learn's does.
    device, precision, device_memory_limit
        Where the E-step runs, as for ``cuem.GaussianMixture``.
    prune_threshold : float, default 0.0, prune_patience : int, default 10
        Beyond scikit-learn (off by default): remove components whose share of the data
        stays below ``prune_threshold`` (0 <= it < 1) for ``prune_patience`` (>= 1)
        consecutive iterations.
    acceleration : {'none', 'squarem'}, default='none'
        Beyond scikit-learn: SQUAREM extrapolation of the iterations (not with pruning).

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
    converged_, n_iter_, lower_bound_, lower_bounds_
    weight_concentration_prior_, weight_concentration_ : float or tuple, ndarray
        For 'dirichlet_process' weight_concentration_ is the tuple of the sticks' Beta
        parameters, as scikit-learn's.
    mean_precision_prior_, mean_precision_, mean_prior_, degrees_of_freedom_prior_,
    degrees_of_freedom_, covariance_prior_
    device_ : str
    n_components_ : int
        The fitted posterior's components (``n_components`` unless pruned).
    kept_components_ : ndarray of int, prunes_ : list of (int, list of int)
        Each fitted component's index at the start, and the removals (empty unless pruned).
    convergence_rate_ : float, n_estep_passes_ : int
        As ``cuem.GaussianMixture``'s: the iteration's linear rate near the end (NaN when
        too few steps to tell), and the E-step passes over all restarts.
    n_features_in_, feature_names_in_
    """

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        device="cpu",
        precision="float32",
        device_memory_limit=None,
        prune_threshold=0.0,
        prune_patience=10,
        acceleration="none",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.precision = precision
        self.device_memory_limit = device_memory_limit
        self.prune_threshold = prune_threshold
        self.prune_patience = prune_patience
        self.acceleration = acceleration

    # The parts shared with cuem.GaussianMixture: parameter checks of the common
    # parameters, input validation, where evaluations run.
    _check_common_parameters = GaussianMixture._check_shared_parameters
    _validate_cuda_X = GaussianMixture._validate_cuda_X
    _validate_X_without_sklearn = GaussianMixture._validate_X_without_sklearn
    _validate_sample_weight = GaussianMixture._validate_sample_weight
    _precisions_from_cholesky = GaussianMixture._precisions_from_cholesky
    _check_option = GaussianMixture._check_option

    def _validate_X(self, X, reset, allow_nan=False):
        """GaussianMixture's validation; NaN is always an error here (no missing data yet)."""
        return GaussianMixture._validate_X(self, X, reset, allow_nan=allow_nan)

    def _where(self):
        """Where the fitted model is evaluated: the estimator's own device settings."""
        return {
            "device": self.device,
            "precision": self.precision,
            "device_memory_limit": int(self.device_memory_limit or 0),
        }

    def _check_parameters(self):
        self._check_common_parameters()
        name = type(self).__name__

        def bad(param, what):
            value = getattr(self, param)
            raise InvalidParameterError(f"The {param!r} parameter of {name} must be {what}. Got {value!r} instead.")

        if self.weight_concentration_prior_type not in _WEIGHT_PRIOR_TYPES:
            bad("weight_concentration_prior_type", "a str among {'dirichlet_distribution', 'dirichlet_process'}")
        for param in ("weight_concentration_prior", "mean_precision_prior", "degrees_of_freedom_prior"):
            v = getattr(self, param)
            if v is not None and (
                not isinstance(v, numbers.Real) or isinstance(v, bool) or not np.isfinite(v) or v <= 0
            ):
                bad(param, "None or a float in the range (0.0, inf)")
        t = self.prune_threshold
        if not isinstance(t, numbers.Real) or isinstance(t, bool) or not (0.0 <= t < 1.0):
            bad("prune_threshold", "a float in the range [0.0, 1.0) (0.0: no pruning)")
        p = self.prune_patience
        if not isinstance(p, numbers.Integral) or isinstance(p, bool) or p < 1:
            bad("prune_patience", "an int in the range [1, inf)")
        self._check_option("acceleration", _ACCELERATION)
        if self.acceleration == "squarem" and t > 0:
            raise InvalidParameterError(
                f"acceleration='squarem' and pruning (prune_threshold > 0) do not go together in {name}: an "
                "extrapolation needs the same components at both ends; leave one out"
            )
        cp = self.covariance_prior
        if isinstance(cp, numbers.Real) and not isinstance(cp, bool) and not (np.isfinite(cp) and cp > 0):
            bad("covariance_prior", "None, an array-like or a float in the range (0.0, inf)")

    def _priors(self, n_features):
        """mean_prior and covariance_prior as float64 arrays of their shapes (None where
        not given); cuem checks their values."""
        D = n_features
        mean_prior = None
        if self.mean_prior is not None:
            mean_prior = np.ascontiguousarray(self.mean_prior, dtype=np.float64)
            if mean_prior.shape != (D,):
                raise ValueError(
                    f"The parameter 'means' should have the shape of {(D,)}, but got {mean_prior.shape}"
                )
        covariance_prior = None
        if self.covariance_prior is not None:
            shape = {"full": (D, D), "tied": (D, D), "diag": (D,), "spherical": ()}[self.covariance_type]
            covariance_prior = np.asarray(self.covariance_prior, dtype=np.float64)
            if covariance_prior.shape != shape:
                raise ValueError(
                    f"The parameter '{self.covariance_type} covariance_prior' should have the shape of {shape}, "
                    f"but got {covariance_prior.shape}"
                )
            covariance_prior = np.ascontiguousarray(covariance_prior.reshape(-1))
        return mean_prior, covariance_prior

    def _posterior_arrays(self):
        wc = self.weight_concentration_
        wc = np.concatenate(wc) if isinstance(wc, tuple) else wc
        return (
            self.covariance_type,
            self.weight_concentration_prior_type,
            np.ascontiguousarray(wc, dtype=np.float64),
            self.mean_precision_,
            self.means_,
            np.atleast_1d(np.asarray(self.degrees_of_freedom_, dtype=np.float64)),
            self.covariances_,
            self.precisions_cholesky_,
        )

    # ---- fitting ---------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the variational posterior with variational EM (n_init starts, the
        best lower bound kept). X as for ``cuem.GaussianMixture.fit``.

        Returns
        -------
        self : BayesianGaussianMixture
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then the most probable component of every sample (int64)."""
        X = self._fit(X, sample_weight)
        return self._evaluate("predict", X)

    def _fit(self, X, sample_weight, resp_init=None):
        self._check_parameters()
        if isinstance(X, PlacedData):
            raise TypeError("BayesianGaussianMixture does not take a cuem.PlacedData yet; pass the array")
        X = self._validate_X(X, reset=True)
        if X.shape[0] < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                f"n_samples = {X.shape[0]}"
            )
        sample_weight = self._validate_sample_weight(sample_weight, X)
        mean_prior, covariance_prior = self._priors(X.shape[1])

        warm = None
        n_init = self.n_init
        n_components = int(self.n_components)
        if self.warm_start and hasattr(self, "converged_"):
            n_init = 1
            n_components = int(self.n_components_)  # fewer where the last fit pruned
            names = ("weight_concentration", "mean_precision", "means", "degrees_of_freedom", "covariances",
                     "precisions_cholesky")
            warm = dict(zip(names, self._posterior_arrays()[2:]))
        if resp_init is not None:
            resp_init = np.ascontiguousarray(resp_init, dtype=np.float64)

        on_iteration = None
        if self.verbose:
            on_iteration = _VerbosePrinter(int(self.verbose), self.verbose_interval, self.tol, self.max_iter)

        result = _cuem.fit_bayesian(
            X,
            n_components=n_components,
            covariance_type=self.covariance_type,
            tol=float(self.tol),
            reg_covar=float(self.reg_covar),
            max_iter=int(self.max_iter),
            n_init=int(n_init),
            init_params=self.init_params,
            seed=_seed_from(self.random_state),
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration_prior=None
            if self.weight_concentration_prior is None
            else float(self.weight_concentration_prior),
            mean_precision_prior=None if self.mean_precision_prior is None else float(self.mean_precision_prior),
            mean_prior=mean_prior,
            degrees_of_freedom_prior=None
            if self.degrees_of_freedom_prior is None
            else float(self.degrees_of_freedom_prior),
            covariance_prior=covariance_prior,
            resp_init=resp_init,
            warm_start=warm,
            device=self.device,
            precision=self.precision,
            device_memory_limit=int(self.device_memory_limit or 0),
            on_iteration=on_iteration,
            sample_weight=sample_weight,
            prune_threshold=float(self.prune_threshold),
            prune_patience=int(self.prune_patience),
            acceleration=self.acceleration,
        )

        K = int(result["mean_precision"].shape[0])
        self.n_components_ = K
        self.kept_components_ = np.asarray(result["kept_components"], dtype=np.intp)
        self.prunes_ = [(int(it), [int(k) for k in ks]) for it, ks in result["prunes"]]
        wc = result["weight_concentration"]
        self.weight_concentration_ = (wc[:K].copy(), wc[K:].copy()) if wc.shape[0] == 2 * K else wc
        self.mean_precision_ = result["mean_precision"]
        self.means_ = result["means"]
        dof = result["degrees_of_freedom"]
        self.degrees_of_freedom_ = np.float64(dof[0]) if self.covariance_type == "tied" else dof
        self.covariances_ = result["covariances"]
        self.precisions_cholesky_ = result["precisions_cholesky"]
        self.precisions_ = self._precisions_from_cholesky(self.precisions_cholesky_)
        self.weights_ = result["weights"]
        wcp = float(result["weight_concentration_prior"])
        self.weight_concentration_prior_ = wcp
        self.mean_precision_prior_ = float(result["mean_precision_prior"])
        self.mean_prior_ = result["mean_prior"]
        self.degrees_of_freedom_prior_ = float(result["degrees_of_freedom_prior"])
        cp = result["covariance_prior"]
        self.covariance_prior_ = float(cp[0]) if self.covariance_type == "spherical" else cp
        self.converged_ = bool(result["converged"])
        self.n_iter_ = int(result["n_iter"])
        self.lower_bound_ = np.float64(result["lower_bound"])
        self.lower_bounds_ = [float(v) for v in result["lower_bounds"]]
        self.convergence_rate_ = float(result["convergence_rate"])
        self.n_estep_passes_ = int(result["n_estep_passes"])
        self.device_ = result["device"]
        for notice in result["notices"]:
            warnings.warn(notice, UserWarning, stacklevel=3)
        if not self.converged_:
            warnings.warn(
                "Best performing initialization did not converge. Try different init parameters, "
                "or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return X

    # ---- using the fitted model ------------------------------------------------------

    def _fitted_X(self, X):
        check_is_fitted(self)
        if isinstance(X, PlacedData):
            raise TypeError("BayesianGaussianMixture does not take a cuem.PlacedData yet; pass the array")
        return self._validate_X(X, reset=False)

    def _evaluate(self, what, X, sample_weight=None):
        return _cuem.bayesian_evaluate(what, X, *self._posterior_arrays(), **self._where(), sample_weight=sample_weight)

    def predict(self, X):
        """Most probable component of every sample (int64), under the variational
        posterior (scikit-learn's: expected log weights and log densities)."""
        return self._evaluate("predict", self._fitted_X(X))

    def predict_proba(self, X):
        """Responsibilities of every component for every sample, n_samples x n_components."""
        return self._evaluate("predict_proba", self._fitted_X(X))

    def score_samples(self, X):
        """log sum_k rho_k(x) of every sample, scikit-learn's score_samples for this model."""
        return self._evaluate("score_samples", self._fitted_X(X))

    def score(self, X, y=None, sample_weight=None):
        """Mean of score_samples (weighted by sample_weight where given)."""
        X = self._fitted_X(X)
        sample_weight = self._validate_sample_weight(sample_weight, X)
        return float(self._evaluate("score", X, sample_weight))

    def sample(self, n_samples=1):
        """Draw samples from the mixture of the fitted weights_, means_ and covariances_
        (scikit-learn's), seeded by random_state with cuem's generator."""
        check_is_fitted(self)
        if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(
                "Invalid value for 'n_samples': %r . The sampling requires at least one sample." % (n_samples,)
            )
        return _cuem.sample(
            int(n_samples),
            _seed_from(self.random_state),
            self.covariance_type,
            self.weights_,
            self.means_,
            self.covariances_,
            self.precisions_cholesky_,
        )
