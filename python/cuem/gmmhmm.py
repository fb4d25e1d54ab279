"""cuem.GMMHMM: hmmlearn's GMMHMM (0.3), a Gaussian mixture of ``n_mix`` components per
state, computed by the cuem library (include/cuem/gmm_hmm.hpp; docs/HMM.md, "GMMHMM").

The constructor parameters, fitted attributes (``weights_`` (n_components, n_mix),
``means_`` (n_components, n_mix, n_features), ``covars_`` in hmmlearn's shape per
covariance type, ``tied`` being one matrix per state) and methods are hmmlearn's; the
M-step is hmmlearn's, priors and their per-type defaults included. Differences:

- The priors take a scalar or an array in hmmlearn's shapes (weights_prior (n_components,
  n_mix), means_prior (n_components, n_mix, n_features), covars_prior and covars_weight
  per covariance type), or anything that broadcasts to them.
- The 'm' start is cuem's k-means with n_components * n_mix centres, state k taking
  centres k * n_mix .. (k + 1) * n_mix - 1 (hmmlearn runs scikit-learn's KMeans for the
  states and again within each state's frames): from init_params containing 'm' the fits
  differ; from the same start parameters they agree with hmmlearn to rounding.
- NaN entries are not supported yet; ``implementation`` is ignored; ``sample`` draws from
  cuem's counter-based generator (not NumPy's).
"""

import numbers
import warnings

import numpy as np

from . import _cuem
from .hmm import _COVARIANCE_TYPES, _DECODERS, ConvergenceMonitor, GaussianHMM
from .mixture import ConvergenceWarning, InvalidParameterError, NotFittedError, _seed_from


class GMMHMM(GaussianHMM):
    """Hidden Markov model with Gaussian mixture emissions (hmmlearn.hmm.GMMHMM's interface).

    Parameters are hmmlearn's (``n_mix``, ``weights_prior``, ``covars_prior=None`` and
    ``covars_weight=None`` for its per-type defaults, ``params``/``init_params`` with the
    letter 'w' for the mixture weights), plus ``device``, ``precision`` and ``n_threads``
    as cuem.GaussianHMM's.
    """

    missing = "error"  # NaN entries are not taken (GaussianHMM's missing='marginalize' is not here yet)

    def __init__(
        self,
        n_components=1,
        n_mix=1,
        min_covar=1e-3,
        startprob_prior=1.0,
        transmat_prior=1.0,
        weights_prior=1.0,
        means_prior=0.0,
        means_weight=0.0,
        covars_prior=None,
        covars_weight=None,
        algorithm="viterbi",
        covariance_type="diag",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stmcw",
        init_params="stmcw",
        implementation="log",
        *,
        device="cpu",
        precision="float32",
        n_threads=0,
    ):
        self.n_components = n_components
        self.n_mix = n_mix
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.weights_prior = weights_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.covariance_type = covariance_type
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.device = device
        self.precision = precision
        self.n_threads = n_threads
        self.monitor_ = ConvergenceMonitor(tol, n_iter, verbose)

    _PARAM_NAMES = (
        "n_components n_mix min_covar startprob_prior transmat_prior weights_prior means_prior means_weight "
        "covars_prior covars_weight algorithm covariance_type random_state n_iter tol verbose params init_params "
        "implementation device precision n_threads"
    ).split()

    def __repr__(self):
        return f"GMMHMM(n_components={self.n_components}, n_mix={self.n_mix}, covariance_type={self.covariance_type!r})"

    # hmmlearn's GMMHMM keeps covars_ as it is given, in its per-type shape.
    @property
    def covars_(self):
        return self._covars_

    @covars_.setter
    def covars_(self, covars):
        self._covars_ = np.array(covars, dtype=float, copy=True)

    def _check_parameters(self):
        def bad(name, what):
            raise InvalidParameterError(f"The {name!r} parameter of GMMHMM must be {what}. Got {getattr(self, name)!r} instead.")

        for name in ("n_components", "n_mix", "n_iter"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or value < 1:
                bad(name, "an int >= 1")
        if self.covariance_type not in _COVARIANCE_TYPES:
            bad("covariance_type", f"one of {_COVARIANCE_TYPES}")
        if self.algorithm not in _DECODERS:
            bad("algorithm", f"one of {_DECODERS}")
        if not isinstance(self.tol, numbers.Real) or not np.isfinite(self.tol) or self.tol < 0:
            bad("tol", "a float >= 0")
        for name in ("params", "init_params"):
            value = getattr(self, name)
            if not isinstance(value, str) or any(c not in "stmcw" for c in value):
                bad(name, "a string of the letters 's', 't', 'm', 'c' and 'w'")
        for name in ("weights_prior", "means_prior", "means_weight", "covars_prior", "covars_weight"):
            value = getattr(self, name)
            if value is not None and not np.all(np.isfinite(np.asarray(value, dtype=float))):
                bad(name, "finite numbers (None for covars_prior and covars_weight: hmmlearn's default)")

    def _check_fitted(self):
        for name in ("startprob_", "transmat_", "weights_", "means_", "_covars_"):
            if not hasattr(self, name):
                raise NotFittedError(
                    "This GMMHMM instance is not fitted yet. Call 'fit' with appropriate arguments before using this estimator."
                )
        self.n_features = np.asarray(self.means_).shape[2]

    def _model_arrays(self):
        return (
            self.covariance_type,
            np.ascontiguousarray(self.startprob_, dtype=np.float64),
            np.ascontiguousarray(self.transmat_, dtype=np.float64),
            np.ascontiguousarray(self.weights_, dtype=np.float64),
            np.ascontiguousarray(self.means_, dtype=np.float64),
            np.ascontiguousarray(self._covars_, dtype=np.float64),
        )

    def _given_arrays(self):
        """The start arrays that init_params leaves to the caller (hmmlearn's shapes)."""
        given = {}
        for letter, name in (("s", "startprob_"), ("t", "transmat_"), ("w", "weights_"), ("m", "means_"),
                             ("c", "_covars_")):
            if letter not in self.init_params:
                if not hasattr(self, name):
                    raise ValueError(f"{name.lstrip('_')} must be set before fit when init_params leaves out {letter!r}")
                given[name.strip("_")] = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
        return given

    def _prior_arrays(self, D):
        """The priors as flat arrays for D features (covars_prior and covars_weight None:
        hmmlearn's default for the type, as a single NaN)."""
        K, M = int(self.n_components), int(self.n_mix)
        covars_prior_shape, covars_weight_shape = {
            "full": ((K, M, D, D), (K, M)),
            "tied": ((K, D, D), (K,)),
            "diag": ((K, M, D), (K, M, D)),
            "spherical": ((K, M), (K, M)),
        }[self.covariance_type]

        def prior(value, shape, name):
            return np.array([np.nan]) if value is None else self._array(value, shape, name)

        return (
            self._array(self.startprob_prior, (K,), "startprob_prior"),
            self._array(self.transmat_prior, (K, K), "transmat_prior"),
            self._array(self.weights_prior, (K, M), "weights_prior"),
            self._array(self.means_prior, (K, M, D), "means_prior"),
            self._array(self.means_weight, (K, M), "means_weight"),
            prior(self.covars_prior, covars_prior_shape, "covars_prior"),
            prior(self.covars_weight, covars_weight_shape, "covars_weight"),
        )

    def fit(self, X, lengths=None):
        """Estimate the parameters by Baum-Welch from the init_params start."""
        self._check_parameters()
        X = self._check_X(X, fitted=False)
        lengths = self._lengths(lengths, X.shape[0])
        N = X.shape[0]
        given = self._given_arrays()
        self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)

        def on_iteration(init, iteration, mean_log_likelihood, change, seconds):
            print(f"{iteration:>10d} {mean_log_likelihood * N:>16.8f} {change * N:>+16.8f}")
            return True

        result = _cuem.fit_gmm_hmm(
            X,
            lengths,
            int(self.n_components),
            int(self.n_mix),
            self.covariance_type,
            float(self.min_covar),
            int(self.n_iter),
            float(self.tol) / N,
            _seed_from(self.random_state),
            self.params,
            self.init_params,
            *self._prior_arrays(X.shape[1]),
            **given,
            device=self.device,
            precision=self.precision,
            n_threads=int(self.n_threads),
            on_iteration=on_iteration if self.verbose else None,
        )
        self.n_features = X.shape[1]
        self.startprob_ = result["startprob"]
        self.transmat_ = result["transmat"]
        self.weights_ = result["weights"]
        self.means_ = result["means"]
        self._covars_ = result["covars"]
        for value in result["history"]:
            self.monitor_.report(float(value) * N)
        self.device_ = result["device"]
        for notice in result["notices"]:
            warnings.warn(notice, ConvergenceWarning, stacklevel=2)
        return self

    def partial_fit(self, X, lengths=None):
        """Not for the GMMHMM yet: cuem.GaussianHMM has stepwise EM."""
        raise NotImplementedError("GMMHMM has no partial_fit yet (cuem.GaussianHMM has one)")

    def _evaluate(self, what, X, lengths):
        self._check_fitted()
        X = self._check_X(X, fitted=True)
        lengths = self._lengths(lengths, X.shape[0])
        return _cuem.gmm_hmm_evaluate(what, X, lengths, *self._model_arrays(), device=self.device,
                                      precision=self.precision)

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """(X n_samples x n_features, state sequence) from cuem's generator (seeded by
        random_state, or the estimator's); currstate fixes the first state."""
        self._check_fitted()
        kind, startprob, transmat, weights, means, covars = self._model_arrays()
        if currstate is not None:
            startprob = np.zeros(self.n_components)
            startprob[int(currstate)] = 1.0
        seed = _seed_from(self.random_state if random_state is None else random_state)
        X, states = _cuem.gmm_hmm_sample(int(n_samples), seed, kind, startprob, transmat, weights, means, covars)
        return X, states.astype(np.int64)

    def _n_parameters(self):
        K, M, D = self.n_components, self.n_mix, self.n_features
        counts = {
            "s": K - 1,
            "t": K * (K - 1),
            "m": K * M * D,
            "c": {"spherical": K * M, "diag": K * M * D, "full": K * M * D * (D + 1) // 2,
                  "tied": K * D * (D + 1) // 2}[self.covariance_type],
            "w": M - 1,  # as hmmlearn counts them
        }
        return sum(counts.values())
