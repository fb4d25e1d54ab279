"""cuem.GaussianHMM: hmmlearn's GaussianHMM (0.3) computed by the cuem library.

The constructor parameters, fitted attributes and methods are hmmlearn's, so that swapping
``from hmmlearn.hmm import GaussianHMM`` for ``from cuem import GaussianHMM`` keeps a
script working; ``device`` and ``precision`` choose where the emission densities and
statistics run (the chain runs on the host in float64). Differences:

- ``implementation`` is accepted and ignored: the forward-backward pass is always the
  scaled one on per-frame normalised emissions, which neither underflows like hmmlearn's
  'scaling' nor pays for log-space sums like its 'log'.
- The 'm' start is cuem's k-means (k-means++ seeds, one run), not scikit-learn's KMeans
  with n_init=10: from init_params containing 'm' the fits differ; from the same start
  parameters they agree with hmmlearn to rounding.
- A state that receives no weight keeps its parameters (hmmlearn divides by zero) and
  the fit warns.
- ``covars_`` is always n_components full matrices, as hmmlearn's getter intends (its
  spherical getter returns n_components * n_features of them after a fit).
"""

import numbers
import warnings
from collections import deque

import numpy as np

from . import _cuem
from .mixture import _ACCELERATION, ConvergenceWarning, InvalidParameterError, NotFittedError, _seed_from

_COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")
_DECODERS = ("viterbi", "map")


class ConvergenceMonitor:
    """hmmlearn's ConvergenceMonitor: the log-likelihood history of the last fit (totals
    over all frames), its iteration count, and whether it converged."""

    def __init__(self, tol, n_iter, verbose):
        self.tol = tol
        self.n_iter = n_iter
        self.verbose = verbose
        self.history = deque()
        self.iter = 0

    def _reset(self):
        self.iter = 0
        self.history.clear()

    def report(self, log_prob):
        self.history.append(log_prob)
        self.iter += 1

    @property
    def converged(self):
        return self.iter == self.n_iter or (
            len(self.history) >= 2 and self.history[-1] - self.history[-2] < self.tol
        )


def _fill_covars(covars, covariance_type, n_components, n_features):
    """Full n_components x D x D matrices from a covariance in its type's layout."""
    if covariance_type == "full":
        return np.array(covars)
    if covariance_type == "diag":
        return np.array([np.diag(c) for c in covars])
    if covariance_type == "tied":
        return np.tile(covars, (n_components, 1, 1))
    return np.eye(n_features)[None, :, :] * np.ravel(covars)[:, None, None]


class GaussianHMM:
    """Hidden Markov model with Gaussian emissions, fitted by Baum-Welch.

    Parameters (hmmlearn's, see ``hmmlearn.hmm.GaussianHMM``)
    ----------
    n_components, covariance_type, min_covar, startprob_prior, transmat_prior,
    means_prior, means_weight, covars_prior, covars_weight, algorithm, random_state,
    n_iter, tol, verbose, params, init_params, implementation

    device : str, default="cpu"
        Where the emission log-densities and statistics run: "cpu" (float64), "cuda",
        "cuda:N" or "auto".
    precision : {"float32", "float64"}, default="float32"
        The arithmetic of a CUDA device (the CPU is always float64).
    n_threads : int, default=0
        CPU threads (0: OpenMP's default); results do not depend on it.
    acceleration : {"none", "squarem"}, default="none"
        Beyond hmmlearn: SQUAREM extrapolation of Baum-Welch's iterations (the
        log-likelihood never falls; ``n_iter`` then bounds forward-backward passes).
        ``n_estep_passes_`` and ``convergence_rate_`` after a fit, as
        ``cuem.GaussianMixture``'s.
    segment_frames : int or None, default=None
        Beyond hmmlearn: bounded memory for long sequences. The E-step takes the
        emissions and the chain a segment of about this many frames at a time (a
        checkpointed forward pass, each segment recomputed beside the backward pass),
        keeping no frames x states array. None: automatic (segments once those arrays
        would pass 1 GiB, on the CPU); -1: never.
    incremental_blocks : int, default=1
        Beyond hmmlearn: incremental EM (Neal and Hinton) over this many blocks of whole
        sequences (at most the number of sequences; a block never cuts one): one block
        re-estimated at a time, the statistics of the others kept. ``n_iter`` counts
        passes over the data and ``monitor_.history`` has one entry per block step (the
        free energy with the log prior, which never falls). As ``cuem.GaussianMixture``'s.
    max_block_steps : int, default=0
        Beyond hmmlearn: with ``incremental_blocks`` > 1, each restart ends after this
        many block steps (the history's entries; the first pass counts as one), keeping
        the parameters of its last M-step: a budget finer than ``n_iter``'s passes.
        0: no limit.
    learning_decay, learning_offset : float, default=0.6, 0.0
        The step sizes of ``partial_fit`` (stepwise EM): rho_t = (t + learning_offset)
        ^ (-learning_decay), learning_decay in (0.5, 1], as ``cuem.GaussianMixture``'s.
    missing : {"error", "marginalize"}, default="error"
        Beyond hmmlearn (which refuses NaN): "marginalize" takes NaN entries as missing
        at random. A frame's emission is the marginal density of its observed entries,
        Baum-Welch uses the conditional expectations of the missing ones, and a frame
        with nothing observed has emission 1 in every state (the chain passes through
        it, with a warning). A feature never observed is an error. The evaluations
        (score, decode, ...) take NaN the same way. docs/HMM.md.
    """

    def __init__(
        self,
        n_components=1,
        covariance_type="diag",
        min_covar=1e-3,
        startprob_prior=1.0,
        transmat_prior=1.0,
        means_prior=0,
        means_weight=0,
        covars_prior=1e-2,
        covars_weight=1,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stmc",
        init_params="stmc",
        implementation="log",
        *,
        device="cpu",
        precision="float32",
        n_threads=0,
        acceleration="none",
        segment_frames=None,
        missing="error",
        incremental_blocks=1,
        max_block_steps=0,
        learning_decay=0.6,
        learning_offset=0.0,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
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
        self.acceleration = acceleration
        self.segment_frames = segment_frames
        self.missing = missing
        self.incremental_blocks = incremental_blocks
        self.max_block_steps = max_block_steps
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.monitor_ = ConvergenceMonitor(tol, n_iter, verbose)

    # ---- scikit-learn's estimator protocol ---------------------------------------------

    _PARAM_NAMES = (
        "n_components covariance_type min_covar startprob_prior transmat_prior means_prior means_weight "
        "covars_prior covars_weight algorithm random_state n_iter tol verbose params init_params implementation "
        "device precision n_threads acceleration segment_frames missing incremental_blocks max_block_steps learning_decay "
        "learning_offset"
    ).split()

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._PARAM_NAMES}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self._PARAM_NAMES:
                raise InvalidParameterError(f"invalid parameter {name!r} for GaussianHMM")
            setattr(self, name, value)
        return self

    def __repr__(self):
        return f"GaussianHMM(n_components={self.n_components}, covariance_type={self.covariance_type!r})"

    # ---- covariances in hmmlearn's form ------------------------------------------------

    @property
    def covars_(self):
        """The covariances as n_components full matrices (hmmlearn's getter)."""
        return _fill_covars(self._covars_, self.covariance_type, self.n_components, self.n_features)

    @covars_.setter
    def covars_(self, covars):
        covars = np.array(covars, dtype=float, copy=True)
        K = self.n_components
        expected = {
            "spherical": (K,),
            "diag": (K, None),
            "full": (K, None, None),
            "tied": (None, None),
        }[self.covariance_type]
        if covars.ndim != len(expected) or any(e is not None and s != e for s, e in zip(covars.shape, expected)):
            raise ValueError(
                f"{self.covariance_type!r} covars must have shape {tuple('n_features' if e is None else e for e in expected)}, "
                f"got {covars.shape}"
            )
        self._covars_ = covars

    # ---- checks ------------------------------------------------------------------------

    def _check_parameters(self):
        def bad(name, what):
            raise InvalidParameterError(f"The {name!r} parameter of GaussianHMM must be {what}. Got {getattr(self, name)!r} instead.")

        if not isinstance(self.n_components, numbers.Integral) or self.n_components < 1:
            bad("n_components", "an int >= 1")
        if self.covariance_type not in _COVARIANCE_TYPES:
            bad("covariance_type", f"one of {_COVARIANCE_TYPES}")
        if self.algorithm not in _DECODERS:
            bad("algorithm", f"one of {_DECODERS}")
        if not isinstance(self.n_iter, numbers.Integral) or self.n_iter < 1:
            bad("n_iter", "an int >= 1")
        if not isinstance(self.tol, numbers.Real) or not np.isfinite(self.tol) or self.tol < 0:
            bad("tol", "a float >= 0")
        if self.acceleration not in _ACCELERATION:
            bad("acceleration", f"one of {_ACCELERATION}")
        if self.segment_frames is not None and (
            not isinstance(self.segment_frames, numbers.Integral) or self.segment_frames == 0 or self.segment_frames < -1
        ):
            bad("segment_frames", "None, -1 or an int >= 1")
        if self.missing not in ("error", "marginalize"):
            bad("missing", "one of ('error', 'marginalize')")
        if not isinstance(self.incremental_blocks, numbers.Integral) or self.incremental_blocks < 1:
            bad("incremental_blocks", "an int >= 1")
        if not isinstance(self.max_block_steps, numbers.Integral) or self.max_block_steps < 0:
            bad("max_block_steps", "an int >= 0")
        if self.max_block_steps > 0 and self.incremental_blocks == 1:
            raise ValueError(
                "max_block_steps limits incremental EM's block steps: it needs incremental_blocks > 1, got "
                f"max_block_steps={self.max_block_steps!r} with incremental_blocks=1"
            )
        if not isinstance(self.learning_decay, numbers.Real) or not 0.5 < self.learning_decay <= 1:
            bad("learning_decay", "a float in (0.5, 1]")
        if not isinstance(self.learning_offset, numbers.Real) or not (np.isfinite(self.learning_offset) and self.learning_offset >= 0):
            bad("learning_offset", "a float >= 0")
        for name in ("params", "init_params"):
            value = getattr(self, name)
            if not isinstance(value, str) or any(c not in "stmc" for c in value):
                bad(name, "a string of the letters 's', 't', 'm' and 'c'")

    def _check_X(self, X, fitted):
        X = np.asarray(X)
        if X.dtype.kind not in "fiub":
            raise ValueError(f"X must be numeric, got dtype {X.dtype}")
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(-1, 1)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be a non-empty 2-d array (n_samples, n_features), got shape {X.shape}")
        if self.missing == "marginalize":
            if np.any(np.isinf(X)):
                raise ValueError("X holds infinity (NaN marks a missing entry under missing='marginalize')")
        elif not np.all(np.isfinite(X)):
            raise ValueError(
                "X holds NaN or infinity: with missing='marginalize' NaN entries are taken as missing at random"
            )
        if fitted and X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, but GaussianHMM is fitted with {self.n_features}")
        return X

    @staticmethod
    def _lengths(lengths, n_rows):
        if lengths is None:
            return [n_rows]
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
            raise ValueError("lengths must be a 1-d array of integers")
        if np.any(lengths <= 0):
            raise ValueError(f"lengths must be positive, got {lengths[lengths <= 0][0]} at index {int(np.argmax(lengths <= 0))}")
        if int(lengths.sum()) != n_rows:
            raise ValueError(f"lengths sum to {int(lengths.sum())} but X has {n_rows} rows")
        return [int(v) for v in lengths]

    def _check_fitted(self):
        if not hasattr(self, "startprob_") or not hasattr(self, "_covars_") or not hasattr(self, "means_"):
            raise NotFittedError(
                "This GaussianHMM instance is not fitted yet. Call 'fit' with appropriate arguments before using this estimator."
            )
        # As hmmlearn's _check: parameters set by hand define the feature count.
        self.n_features = np.asarray(self.means_).shape[1]

    @staticmethod
    def _array(value, shape, name):
        a = np.asarray(value, dtype=np.float64)
        if a.ndim == 0:
            return a.reshape(1)
        try:
            return np.ascontiguousarray(np.broadcast_to(a, shape)).ravel()
        except ValueError:
            raise ValueError(f"{name} of shape {a.shape} does not broadcast to {shape}") from None

    def _model_arrays(self):
        return (
            self.covariance_type,
            np.ascontiguousarray(self.startprob_, dtype=np.float64),
            np.ascontiguousarray(self.transmat_, dtype=np.float64),
            np.ascontiguousarray(self.means_, dtype=np.float64),
            np.ascontiguousarray(self._covars_, dtype=np.float64),
        )

    # ---- fitting -----------------------------------------------------------------------

    def fit(self, X, lengths=None):
        """Estimate the parameters by Baum-Welch from the init_params start."""
        self._check_parameters()
        X = self._check_X(X, fitted=False)
        lengths = self._lengths(lengths, X.shape[0])
        N, D = X.shape
        K = self.n_components
        prior_args, given = self._start_arrays(D, self.init_params)
        self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)

        def on_iteration(init, iteration, mean_log_likelihood, change, seconds):
            if self.verbose:
                print(f"{iteration:>10d} {mean_log_likelihood * N:>16.8f} {change * N:>+16.8f}")
            return True

        result = _cuem.fit_hmm(
            X,
            lengths,
            K,
            self.covariance_type,
            float(self.min_covar),
            int(self.n_iter),
            float(self.tol) / N,
            _seed_from(self.random_state),
            self.params,
            self.init_params,
            *prior_args,
            **given,
            device=self.device,
            precision=self.precision,
            n_threads=int(self.n_threads),
            on_iteration=on_iteration if self.verbose else None,
            acceleration=self.acceleration,
            segment_frames=0 if self.segment_frames is None else int(self.segment_frames),
            missing=self.missing,
            incremental_blocks=int(self.incremental_blocks),
            max_block_steps=int(self.max_block_steps),
        )
        self._online = None  # a later partial_fit continues from this fit's parameters
        self.n_features = D
        self.startprob_ = result["startprob"]
        self.transmat_ = result["transmat"]
        self.means_ = result["means"]
        self._covars_ = result["covars"]
        for value in result["history"]:
            self.monitor_.report(float(value) * N)
        self.device_ = result["device"]
        self.n_estep_passes_ = int(result["n_estep_passes"])
        self.convergence_rate_ = float(result["convergence_rate"])
        for notice in result["notices"]:
            warnings.warn(notice, ConvergenceWarning, stacklevel=2)
        return self

    def _start_arrays(self, D, init_params):
        """The priors as flat arrays, and the start arrays init_params leaves to the caller."""
        K = self.n_components
        starts = {c: c in init_params for c in "stmc"}
        given = {}
        for letter, name in (("s", "startprob_"), ("t", "transmat_"), ("m", "means_")):
            if not starts[letter]:
                if not hasattr(self, name):
                    raise ValueError(f"{name} must be set before fit when init_params leaves out {letter!r}")
                given[name[:-1]] = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
        if not starts["c"]:
            if not hasattr(self, "_covars_"):
                raise ValueError("covars_ must be set before fit when init_params leaves out 'c'")
            given["covars"] = np.ascontiguousarray(self._covars_, dtype=np.float64)
        if "means" in given and given["means"].shape != (K, D):
            raise ValueError(f"means_ must have shape {(K, D)}, got {given['means'].shape}")
        cov_terms = {"spherical": (K, D), "diag": (K, D), "full": (K, D, D), "tied": (D, D)}[self.covariance_type]
        priors = (
            self._array(self.startprob_prior, (K,), "startprob_prior"),
            self._array(self.transmat_prior, (K, K), "transmat_prior"),
            self._array(self.means_prior, (K, D), "means_prior"),
            self._array(self.means_weight, (K,), "means_weight"),
            self._array(self.covars_prior, cov_terms, "covars_prior"),
            float(self.covars_weight),
        )
        return priors, given

    def partial_fit(self, X, lengths=None):
        """One step of stepwise (online) EM on the batch X of whole sequences.

        The running statistics per frame move towards the batch's, taken under the current
        parameters, by rho_t = (t + learning_offset)^(-learning_decay) (rho = 1 at the
        first step), scaled to the frames seen so far so that the priors weigh as in a
        batch fit over them; the parameters follow by the M-step. The first call
        initialises from its batch as ``fit`` does (init_params, random_state, the
        parameters init_params leaves out), or, on a fitted estimator, continues from the
        fitted parameters. n_iter, tol, acceleration and incremental_blocks do not apply;
        NaN entries are refused. Sets ``n_steps_``, ``n_frames_seen_`` and
        ``lower_bound_`` (the batch's mean log-likelihood per frame before the step).
        """
        self._check_parameters()
        state = getattr(self, "_online", None)
        fitted = hasattr(self, "startprob_") and hasattr(self, "_covars_") and hasattr(self, "means_")
        X = self._check_X(X, fitted=fitted)
        if self.missing == "marginalize" and np.isnan(X).any():
            raise ValueError("partial_fit does not take NaN entries yet; use fit")
        lengths = self._lengths(lengths, X.shape[0])
        if state is None:
            init_params = "" if fitted else self.init_params
            prior_args, given = self._start_arrays(X.shape[1], init_params)
            state = _cuem.OnlineGaussianHmm(
                int(self.n_components),
                self.covariance_type,
                float(self.min_covar),
                _seed_from(self.random_state),
                self.params,
                init_params,
                *prior_args,
                **given,
                device=self.device,
                precision=self.precision,
                n_threads=int(self.n_threads),
                learning_decay=float(self.learning_decay),
                learning_offset=float(self.learning_offset),
            )
        batch_log_likelihood = state.partial_fit(X, lengths)
        self._online = state
        model = state.model()
        self.n_features = X.shape[1]
        self.startprob_ = model["startprob"]
        self.transmat_ = model["transmat"]
        self.means_ = model["means"]
        self._covars_ = model["covars"]
        self.n_steps_ = int(state.n_steps)
        self.n_frames_seen_ = int(round(state.n_frames_seen))
        self.lower_bound_ = np.float64(batch_log_likelihood)
        self.device_ = state.device
        return self

    def __getstate__(self):
        """Pickles without partial_fit's running state (a handle into the library): an
        unpickled estimator's next partial_fit continues from the pickled parameters."""
        state = dict(self.__dict__)
        state.pop("_online", None)
        return state

    # ---- using a fitted model ----------------------------------------------------------

    def _evaluate(self, what, X, lengths):
        self._check_fitted()
        X = self._check_X(X, fitted=True)
        lengths = self._lengths(lengths, X.shape[0])
        return _cuem.hmm_evaluate(
            what, X, lengths, *self._model_arrays(), device=self.device, precision=self.precision, missing=self.missing
        )

    def score(self, X, lengths=None):
        """Log-likelihood of X under the model (summed over the sequences)."""
        return float(self._evaluate("score", X, lengths))

    def score_samples(self, X, lengths=None):
        """(log-likelihood of X, posteriors n_samples x n_components)."""
        log_prob, posteriors = self._evaluate("posteriors", X, lengths)
        return float(log_prob), posteriors

    def predict_proba(self, X, lengths=None):
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """(log probability, state sequence) by Viterbi or by the most probable state per frame."""
        algorithm = algorithm or self.algorithm
        if algorithm not in _DECODERS:
            raise ValueError(f"Unknown decoder {algorithm!r}")
        if algorithm == "viterbi":
            log_prob, states = self._evaluate("viterbi", X, lengths)
            return float(log_prob), states.astype(np.int64)
        self._check_fitted()
        X = self._check_X(X, fitted=True)
        lengths = self._lengths(lengths, X.shape[0])
        _, posteriors = self.score_samples(X, lengths)
        # hmmlearn's 'map' log probability: the sum of each frame's largest posterior.
        return float(np.max(posteriors, axis=1).sum()), np.argmax(posteriors, axis=1)

    def predict(self, X, lengths=None):
        return self.decode(X, lengths)[1]

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """(X n_samples x n_features, state sequence) from cuem's generator (seeded by
        random_state, or the estimator's); currstate fixes the first state."""
        self._check_fitted()
        startprob = np.ascontiguousarray(self.startprob_, dtype=np.float64)
        if currstate is not None:
            startprob = np.zeros(self.n_components)
            startprob[int(currstate)] = 1.0
        seed = _seed_from(self.random_state if random_state is None else random_state)
        kind, _, transmat, means, covars = self._model_arrays()
        X, states = _cuem.hmm_sample(int(n_samples), seed, kind, startprob, transmat, means, covars)
        return X, states.astype(np.int64)

    def _n_parameters(self):
        K, D = self.n_components, self.n_features
        counts = {
            "s": K - 1,
            "t": K * (K - 1),
            "m": K * D,
            "c": {"spherical": K, "diag": K * D, "full": K * D * (D + 1) // 2, "tied": D * (D + 1) // 2}[
                self.covariance_type
            ],
        }
        return sum(counts.values())  # hmmlearn counts every parameter, whatever `params` updates

    def bic(self, X, lengths=None):
        return -2 * self.score(X, lengths) + self._n_parameters() * np.log(len(X))

    def aic(self, X, lengths=None):
        return -2 * self.score(X, lengths) + 2 * self._n_parameters()

    def get_stationary_distribution(self):
        """The stationary distribution of the transition matrix (its left eigenvector for 1)."""
        self._check_fitted()
        eigvals, eigvecs = np.linalg.eig(np.asarray(self.transmat_).T)
        v = np.real_if_close(eigvecs[:, np.argmax(eigvals.real)])
        return v / v.sum()
