"""cuem.GaussianMixture: scikit-learn's GaussianMixture, computed by the cuem library.

Parameters, attributes and methods are scikit-learn's (see ``GaussianMixture``); with
scikit-learn installed the class is a real scikit-learn estimator (``DensityMixin``,
``BaseEstimator``, as ``sklearn.mixture.GaussianMixture``), validates input with
scikit-learn's ``validate_data`` and raises its ``NotFittedError`` and
``ConvergenceWarning``. Without scikit-learn it works the same on NumPy input, with a
small built-in base class and look-alike exceptions.

Input data
----------
A C-contiguous float64 or float32 array is used as it is: no copy is made, and the
library reads it in place while the GIL is released (cuem computes in float64 whatever
the input dtype, and the fitted attributes are float64). Everything else is converted
once to a C-contiguous float64 array on the Python side: lists, pandas DataFrames and
other array-likes as scikit-learn converts them.

Differences from scikit-learn
-----------------------------
- ``max_iter`` must be at least 1 (scikit-learn also accepts 0, meaning "initialise
  only"; cuem always runs EM).
- ``warm_start``: the next fit starts from the fitted parameters as scikit-learn's does,
  but its first iteration is never counted as converged (scikit-learn compares it with
  the previous fit's lower bound), so ``n_iter_`` can be one larger.
- An empty component (one no point belongs to) keeps its previous mean; scikit-learn
  moves it towards the origin. Everything else agrees with scikit-learn to rounding
  given the same initial parameters; ``init_params`` uses cuem's own random numbers, so
  the same ``random_state`` gives a different (equally valid) initialisation.
- ``sample`` uses cuem's generator: the same ``random_state`` gives reproducible draws,
  but not scikit-learn's.
- float32 input: scikit-learn 1.9 computes in float32 and returns float32 attributes,
  probabilities and log-likelihoods; cuem computes in float64 and returns float64
  (more accurate; cast with ``.astype(np.float32)`` where the dtype matters).
- ``random_state`` may also be a ``numpy.random.Generator`` (scikit-learn refuses one).
- ``missing='marginalize'`` takes NaN entries as missing at random (scikit-learn refuses
  NaN, as the default ``missing='error'`` does), and ``impute`` fills them in.
- ``acceleration='squarem'`` takes EM's iterations with SQUAREM extrapolations (scikit-learn
  has plain EM only, the default ``acceleration='none'``); ``convergence_rate_`` and
  ``n_estep_passes_`` say how fast EM converged and what the fit cost.
- ``fit``, ``fit_predict`` and ``score`` take ``sample_weight`` (scikit-learn's
  GaussianMixture has none): a row of integer weight w counts as w copies of it, a row of
  weight 0 as absent; ``bic`` and ``aic`` take it too (the data's size is then sum w).

sample_weight
-------------
Converted by scikit-learn's ``_check_sample_weight`` where scikit-learn is installed (a
list, a pandas Series, a scalar for every row; NaN and inf are its ValueError), else to a
1-D float64 array of one value per row. cuem then checks the values: a negative, NaN or
infinite weight, or all weights zero, is a ValueError naming sample_weight.

scikit-learn estimator checks
-----------------------------
``sklearn.utils.estimator_checks.check_estimator(cuem.GaussianMixture())`` passes every
check (scikit-learn 1.9.1; its array-API check skips itself unless SCIPY_ARRAY_API=1 is
set before SciPy is imported, and passes when it is). tests/python/test_mixture.py runs
them all with ``parametrize_with_checks`` and lists no expected failure; since ``fit``
takes ``sample_weight``, that includes scikit-learn's sample-weight checks.
"""

import inspect
import numbers
import re
import time
import warnings

import numpy as np

from . import _cuem

try:  # scikit-learn is optional
    from sklearn.base import BaseEstimator, DensityMixin
    from sklearn.exceptions import ConvergenceWarning, NotFittedError
    from sklearn.utils.validation import _check_sample_weight, check_array, check_is_fitted

    try:
        from sklearn.utils.validation import validate_data as _sk_validate_data
    except ImportError:  # scikit-learn < 1.6

        def _sk_validate_data(estimator, X, **kwargs):
            return estimator._validate_data(X, **kwargs)

    # scikit-learn < 1.9 has no all-zero check in _check_sample_weight (cuem's applies).
    _SAMPLE_WEIGHT_OPTIONS = (
        {"allow_all_zero_weights": True}
        if "allow_all_zero_weights" in inspect.signature(_check_sample_weight).parameters
        else {}
    )
    # What lets NaN through scikit-learn's input checks (Inf stays an error): renamed in 1.6.
    _ALLOW_NAN = (
        {"ensure_all_finite": "allow-nan"}
        if "ensure_all_finite" in inspect.signature(check_array).parameters
        else {"force_all_finite": "allow-nan"}
    )
    _HAVE_SKLEARN = True
except ImportError:
    _HAVE_SKLEARN = False

    class NotFittedError(ValueError, AttributeError):
        """Raised when a method needs a fitted estimator (scikit-learn's, when installed)."""

    class ConvergenceWarning(UserWarning):
        """Warns that EM stopped at max_iter before converging (scikit-learn's, when installed)."""

    class _MinimalBase:
        """get_params / set_params / repr like scikit-learn's BaseEstimator."""

        @classmethod
        def _get_param_names(cls):
            import inspect

            sig = inspect.signature(cls.__init__)
            return sorted(p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD)

        def get_params(self, deep=True):
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for key, value in params.items():
                if key not in valid:
                    raise ValueError(
                        f"Invalid parameter {key!r} for estimator {self}. Valid parameters are: {valid!r}."
                    )
                setattr(self, key, value)
            return self

        def __repr__(self):
            defaults = type(self)().get_params()
            changed = {k: v for k, v in self.get_params().items() if not _same_value(v, defaults[k])}
            return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def check_is_fitted(estimator):
        fitted = [v for v in vars(estimator) if v.endswith("_") and not v.startswith("__")]
        if not fitted:
            raise NotFittedError(
                f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )


def _same_value(a, b):
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has a wrong type or value (raised by fit, as scikit-learn does)."""


_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
_PRECISIONS = ("float32", "float64")
_MISSING = ("error", "marginalize")
_ACCELERATION = ("none", "squarem")
_FIRST_PASS = ("full", "incremental")
_DEVICE = re.compile(r"^(cpu|auto|cuda|cuda:[0-9]{1,4})$")
_MAX_SEED = 2**63 - 1


def _seed_from(random_state):
    """A cuem seed from scikit-learn's random_state: an int is used as it is, a
    RandomState (or Generator) gives one draw, None draws from NumPy's global RandomState
    (so np.random.seed makes it reproducible, as in scikit-learn)."""
    if random_state is None or random_state is np.random:
        return int(np.random.mtrand._rand.randint(0, _MAX_SEED, dtype=np.int64))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, _MAX_SEED, dtype=np.int64))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, _MAX_SEED, dtype=np.int64))
    raise InvalidParameterError(f"{random_state!r} cannot be used to seed a numpy.random.RandomState instance")


def _viewable(X):
    """Whether cuem reads X in place: a float64 or float32 ndarray whose rows are
    contiguous and start a non-negative whole number of elements apart (C order, a column
    slice such as X[:, :3], every other row X[::2])."""
    if not isinstance(X, np.ndarray) or X.dtype not in (np.float64, np.float32) or X.ndim != 2:
        return False
    n, d = X.shape
    item = X.itemsize
    rows_contiguous = d <= 1 or X.strides[1] == item
    row_step = X.strides[0]
    return rows_contiguous and (n <= 1 or (row_step >= d * item and row_step % item == 0))


_DLPACK_CUDA = 2  # DLPack's kDLCUDA


def _dlpack_device(X):
    """(device type, ordinal) of an object exporting DLPack other than a NumPy array
    (which is read directly), else None."""
    if isinstance(X, np.ndarray) or not hasattr(X, "__dlpack__"):
        return None
    device = getattr(X, "__dlpack_device__", None)
    if device is None:
        return None
    try:
        return tuple(int(v) for v in device())
    except Exception:
        return None


def _is_cuda_array(X):
    """Whether X lives in CUDA device memory (torch.cuda and CuPy tensors): cuem takes it
    through DLPack and reads it there, never copying it to the host."""
    device = _dlpack_device(X)
    if device is not None:
        return device[0] == _DLPACK_CUDA
    if hasattr(X, "__cuda_array_interface__"):
        raise TypeError(
            "X has __cuda_array_interface__ but no __dlpack__: cuem takes CUDA arrays through DLPack; "
            "wrap it, e.g. cupy.asarray(X) or torch.as_tensor(X, device='cuda')"
        )
    return False


def _as_cuem_rows(X):
    """X as cuem reads it: unchanged when it is a viewable float64 or float32 array (no
    copy, strided views included); otherwise converted once, to C order (Fortran order,
    negative strides) and to float64 (other dtypes)."""
    if _viewable(X):
        return X
    if isinstance(X, np.ndarray) and X.dtype in (np.float64, np.float32):
        return np.ascontiguousarray(X)
    return np.ascontiguousarray(X, dtype=np.float64)


def _sample_weight_without_sklearn(sample_weight, n_samples):
    """sample_weight as scikit-learn's _check_sample_weight shapes it (a scalar for every
    row, else a 1-D array of n_samples values), for when scikit-learn is not installed."""
    if isinstance(sample_weight, numbers.Number):
        return np.full(n_samples, sample_weight, dtype=np.float64)
    sample_weight = np.ascontiguousarray(sample_weight, dtype=np.float64)
    if sample_weight.ndim != 1:
        raise ValueError(
            f"Sample weights must be 1D array or scalar, got {sample_weight.ndim}D array. "
            f"Expected either a scalar value or a 1D array of length {n_samples}."
        )
    if sample_weight.shape != (n_samples,):
        raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected {(n_samples,)}!")
    return sample_weight


def _summary_value(value):
    """A missing-summary entry as plain Python (ints, and a list of ints)."""
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else int(value)


def _no_second_weights(sample_weight):
    if sample_weight is not None:
        raise ValueError(
            "sample_weight must be None when X is a cuem.PlacedData: its weights are the ones it was "
            "placed with (cuem.PlacedData(X, sample_weight=...))"
        )


class _VerbosePrinter:
    """Prints EM progress as scikit-learn's verbose mode does (called with the GIL held
    from the library's iteration callback)."""

    def __init__(self, verbose, verbose_interval, tol, max_iter):
        self.verbose = verbose
        self.interval = verbose_interval
        self.tol = tol
        self.max_iter = max_iter
        self.init_start = time.time()

    def __call__(self, init, iteration, lower_bound, change, seconds):
        if iteration == 1:
            print("Initialization %d" % init)
        if iteration % self.interval == 0:
            if self.verbose == 1:
                print("  Iteration %d" % iteration)
            else:
                print("  Iteration %d\t time lapse %.5fs\t ll change %.5f" % (iteration, seconds, change))
        converged = abs(change) < self.tol
        if converged or iteration == self.max_iter:
            message = "converged" if converged else "did not converge"
            if self.verbose == 1:
                print(f"Initialization {message}.")
            else:
                lapse = time.time() - self.init_start
                print(f"Initialization {message}. time lapse {lapse:.5f}s\t lower bound {lower_bound:.5f}.")
            self.init_start = time.time()
        return True


_Bases = (DensityMixin, BaseEstimator) if _HAVE_SKLEARN else (_MinimalBase,)


class GaussianMixture(*_Bases):
    """Gaussian mixture model fitted with EM by the cuem library.

    The parameters, attributes and methods are those of
    ``sklearn.mixture.GaussianMixture``, with the same meanings and defaults; five are
    added: ``device``, ``precision``, ``device_memory_limit``, ``missing`` (NaN as
    missing data) and ``acceleration`` (SQUAREM), two attributes, ``convergence_rate_`` and
    ``n_estep_passes_``, and one method, ``impute``.

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Each component's own full covariance, one shared full covariance, each
        component's own diagonal covariance, or each component's own single variance.
    tol : float, default=1e-3
        EM stops when the mean per-sample log-likelihood changes by less than this.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, to keep it positive definite.
    max_iter : int, default=100
        EM iterations per initialisation (at least 1); with ``acceleration='squarem'``,
        E-step passes per initialisation.
    n_init : int, default=1
        Initialisations; the one with the largest final log-likelihood is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the first responsibilities are made (ignored where weights_init, means_init
        and precisions_init are all given).
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
    precisions_init : array-like, default=None
        Initial parameters; the precisions (inverse covariances) in the shape of
        ``covariances_`` for the covariance type.
    random_state : int, RandomState instance or None, default=None
        Seeds cuem's initialisation (and ``sample``). An int is used as the seed; a
        RandomState gives one draw; None draws from NumPy's global RandomState.
    warm_start : bool, default=False
        Start the next fit from this fit's parameters (n_init is then ignored).
    verbose : int, default=0
        1 prints each initialisation and iteration, 2 also times and changes.
    verbose_interval : int, default=10
        Iterations between progress lines.
    device : {'cpu', 'auto', 'cuda', 'cuda:N'}, default='cpu'
        Where the E-step runs. 'auto' uses a CUDA device when the library has one and
        the CPU otherwise; 'cuda' raises ``cuem.DeviceError`` (a RuntimeError) where no
        usable device or CUDA backend exists. A ``cuem.PlacedData`` passed in place of X
        runs on its own device (and precision and memory limit), whatever this says.
    precision : {'float32', 'float64'}, default='float32'
        Arithmetic of the CUDA E-step; statistics and the M-step are always float64, and
        the CPU backend is float64 throughout.
    device_memory_limit : int, default=None
        Bytes of device memory the CUDA backend may use (None: 80% of the free memory).
        Data that do not fit are streamed from host memory in chunks, through two small
        pinned staging buffers; the fitted model is the same either way.
    missing : {'error', 'marginalize'}, default='error'
        What NaN entries of X mean. 'error' refuses them, as scikit-learn does.
        'marginalize' takes them as missing at random: ``fit`` maximises the likelihood
        of the observed entries, ``predict``, ``predict_proba``, ``score_samples``,
        ``score``, ``bic`` and ``aic`` use each row's observed marginal (a row with no
        observed entry scores 0 and gets the weights as posteriors), and a fit skips
        rows with every entry missing (with a UserWarning). Inf is an error either way.
        ``impute`` fills missing entries whatever this says. docs/MISSING.md has the
        method and when missing at random is (not) a fair assumption.
    acceleration : {'none', 'squarem'}, default='none'
        How EM's iterations are taken. 'none' is plain EM, as scikit-learn's. 'squarem'
        (Varadhan and Roland 2008) takes two EM steps, extrapolates along them and keeps
        the extrapolated point only when its log-likelihood is no lower (then one EM step
        from it), else the plain step. It reaches the same optimum in fewer E-step passes
        where EM converges slowly: with a tight ``tol`` (1e-6 or below) and overlapping
        components, where ``convergence_rate_`` of a plain fit is near 1 (cuem's
        benchmarks: 40-67% fewer passes at tol 1e-6). At the default tol 1e-3 fits end in
        a few passes and it gains nothing. With 'squarem', ``max_iter`` bounds E-step
        passes (rejected extrapolations included), while ``n_iter_`` and
        ``lower_bounds_`` count the points kept.
    incremental_blocks : int, default=1
        Incremental EM (Neal and Hinton 1998) for ``fit``: the rows split into this many
        blocks: B of consecutive rows with first_pass='full', interleaved tiles with
        first_pass='incremental' (tile t in block t mod B, so that every block samples the
        whole order of the rows); after the first pass each iteration
        re-estimates one block and runs the M-step. 1 is plain EM (bit for bit). With
        more, ``max_iter`` and ``n_iter_`` count passes over the data, and
        ``lower_bound_`` and ``lower_bounds_`` (one entry per block step) are the free
        energy, which never decreases and is at most the log-likelihood. Not with
        'squarem'. docs/ONLINE.md.
    first_pass : {'full', 'incremental'}, default='full'
        Incremental EM's first pass: 'full' estimates every block under the start and
        then runs one M-step; 'incremental' runs an M-step after each block, on the
        statistics of the blocks seen so far, from the ceil(B / 5)-th block on (fewer
        passes to the optimum; the interleaved blocks make it safe on sorted rows). Its first-pass entries of
        ``lower_bounds_`` are the bound over the blocks seen so far; from the pass's last
        entry on they never decrease.
    max_block_steps : int, default=0
        Incremental EM: each restart stops after this many block steps (entries of
        ``lower_bounds_``; a full first pass is one, an incremental one B), with the
        parameters of its last M-step, and ``converged_`` is False. 0: no limit.
    learning_decay, learning_offset : float, default=0.6 and 0.0
        The step sizes of ``partial_fit`` (stepwise EM): rho_t = (t + learning_offset)
        ** -learning_decay, learning_decay in (0.5, 1] (1 with offset 0: the running
        mean of the batches' statistics), learning_offset >= 0.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        The fitted parameters, float64, in scikit-learn's shapes.
    converged_ : bool
    n_iter_ : int
        Iterations of the best initialisation.
    lower_bound_ : numpy.float64
        Mean log-likelihood of the training data at the end of the best initialisation.
    lower_bounds_ : list of float
        The same, after every iteration of the best initialisation.
    convergence_rate_ : float
        EM's linear rate of convergence near the end of the best initialisation: the
        factor by which the distance to the optimum shrinks per EM step, estimated from
        successive gains of the log-likelihood. Near 1 (above 0.9, say) EM crawls, and
        ``acceleration='squarem'`` with a tight ``tol`` pays. NaN when too few EM steps
        gained more than rounding to tell (a fit that converged in a few iterations).
        With 'squarem' it reads low: its extrapolations remove the slow direction.
    n_estep_passes_ : int
        E-step passes over the data, every initialisation included (with 'squarem' also
        every rejected extrapolation): what the fit cost. Equal to ``n_iter_`` for plain
        EM with ``n_init=1``.
    n_steps_, n_points_seen_ : int
        Only after ``partial_fit``: its steps, and the rows of all its batches.
        ``partial_fit`` also sets ``n_iter_`` to the steps and ``lower_bound_`` to the
        last batch's mean log-likelihood under the model before its step.
    device_ : str
        What ran the E-steps, e.g. 'cpu' or 'cuda:0 (NVIDIA H100 80GB HBM3), float32, ...'.
    missing_summary_ : dict
        What the training data missed: ``missing_entries`` (NaN entries),
        ``incomplete_rows`` (rows with at least one, empty rows included),
        ``empty_rows`` (rows with every entry missing, skipped by the fit),
        ``first_empty_rows`` (the first few of them, 0-based) and ``n_patterns``
        (distinct sets of missing entries among the incomplete rows that are not
        empty). All zero with ``missing='error'``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on data with string column names (a pandas DataFrame).
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        device="cpu",
        precision="float32",
        device_memory_limit=None,
        missing="error",
        acceleration="none",
        incremental_blocks=1,
        first_pass="full",
        max_block_steps=0,
        learning_decay=0.6,
        learning_offset=0.0,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.precision = precision
        self.device_memory_limit = device_memory_limit
        self.missing = missing
        self.acceleration = acceleration
        self.incremental_blocks = incremental_blocks
        self.first_pass = first_pass
        self.max_block_steps = max_block_steps
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # NaN is accepted (as missing) only with missing='marginalize'.
        tags.input_tags.allow_nan = self.missing == "marginalize"
        return tags

    # ---- validation ------------------------------------------------------------------

    def _check_parameters(self):
        self._check_shared_parameters()
        self._check_option("missing", _MISSING)
        self._check_option("acceleration", _ACCELERATION)
        self._check_option("first_pass", _FIRST_PASS)
        self._check_online_parameters()

    def _check_online_parameters(self):
        name = type(self).__name__
        blocks = self.incremental_blocks
        if not isinstance(blocks, numbers.Integral) or isinstance(blocks, (bool, np.bool_)) or blocks < 1:
            raise InvalidParameterError(
                f"The 'incremental_blocks' parameter of {name} must be an int in the range [1, inf). "
                f"Got {blocks!r} instead."
            )
        steps = self.max_block_steps
        if not isinstance(steps, numbers.Integral) or isinstance(steps, (bool, np.bool_)) or steps < 0:
            raise InvalidParameterError(
                f"The 'max_block_steps' parameter of {name} must be an int in the range [0, inf). "
                f"Got {steps!r} instead."
            )
        decay = self.learning_decay
        if not isinstance(decay, numbers.Real) or isinstance(decay, bool) or not 0.5 < decay <= 1.0:
            raise InvalidParameterError(
                f"The 'learning_decay' parameter of {name} must be a float in the range (0.5, 1.0]. "
                f"Got {decay!r} instead."
            )
        offset = self.learning_offset
        if not isinstance(offset, numbers.Real) or isinstance(offset, bool) or not (np.isfinite(offset) and offset >= 0):
            raise InvalidParameterError(
                f"The 'learning_offset' parameter of {name} must be a float in the range [0.0, inf). "
                f"Got {offset!r} instead."
            )

    def _check_option(self, param, options):
        value = getattr(self, param)
        if not isinstance(value, str) or value not in options:
            raise InvalidParameterError(
                f"The {param!r} parameter of {type(self).__name__} must be a str among "
                + "{" + ", ".join(repr(o) for o in options) + "}"
                + f". Got {value!r} instead."
            )

    def _check_shared_parameters(self):
        """The checks of the parameters cuem.BayesianGaussianMixture shares."""
        name = type(self).__name__

        def bad(param, what):
            value = getattr(self, param)
            raise InvalidParameterError(f"The {param!r} parameter of {name} must be {what}. Got {value!r} instead.")

        def integer(param, low):
            v = getattr(self, param)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < low:
                bad(param, f"an int in the range [{low}, inf)")

        def real(param):
            v = getattr(self, param)
            if (
                not isinstance(v, numbers.Real)
                or isinstance(v, bool)
                or not np.isfinite(v)
                or v < 0
            ):
                bad(param, "a float in the range [0.0, inf)")

        def option(param, options):
            if not isinstance(getattr(self, param), str) or getattr(self, param) not in options:
                bad(param, "a str among {" + ", ".join(repr(o) for o in options) + "}")

        integer("n_components", 1)
        option("covariance_type", _COVARIANCE_TYPES)
        real("tol")
        real("reg_covar")
        integer("max_iter", 1)
        integer("n_init", 1)
        option("init_params", _INIT_PARAMS)
        rs = self.random_state
        if not (
            rs is None
            or isinstance(rs, (np.random.RandomState, np.random.Generator))
            or (isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and 0 <= rs <= 2**32 - 1)
        ):
            bad(
                "random_state",
                "an int in the range [0, 4294967295], an instance of 'numpy.random.RandomState' or None",
            )
        if not isinstance(self.warm_start, (bool, np.bool_)):
            bad("warm_start", "an instance of 'bool' or an instance of 'numpy.bool'")
        if not isinstance(self.verbose, (numbers.Integral, bool, np.bool_)) or self.verbose < 0:
            bad("verbose", "an int in the range [0, inf) or a bool")
        integer("verbose_interval", 1)
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            bad("device", "one of 'cpu', 'auto', 'cuda' or 'cuda:N'")
        option("precision", _PRECISIONS)
        limit = self.device_memory_limit
        if limit is not None and (
            not isinstance(limit, numbers.Integral) or isinstance(limit, (bool, np.bool_)) or limit < 1
        ):
            bad("device_memory_limit", "a positive int (bytes) or None")

    def _validate_X(self, X, reset, allow_nan=None):
        """X as cuem reads it (_as_cuem_rows: no copy of a float64 or float32 array with
        contiguous rows), with scikit-learn's checks and feature bookkeeping when available.
        Host objects with __dlpack__ (torch CPU tensors) are viewed as NumPy arrays first;
        CUDA arrays are passed on as they are. NaN passes where `allow_nan` (default:
        missing='marginalize'); cuem then counts it as missing, and refuses Inf."""
        if allow_nan is None:
            allow_nan = self.missing == "marginalize"
        if _is_cuda_array(X):
            return self._validate_cuda_X(X, reset)
        if _dlpack_device(X) is not None:
            X = np.from_dlpack(X)  # no copy; scikit-learn's checks then see an ndarray
        if _HAVE_SKLEARN:
            # No order: scikit-learn would copy a strided view that cuem reads in place.
            kwargs = {"dtype": [np.float64, np.float32], "reset": reset}
            if allow_nan:
                kwargs.update(_ALLOW_NAN)
            if reset:
                kwargs["ensure_min_samples"] = 2
            return _as_cuem_rows(_sk_validate_data(self, X, **kwargs))
        return self._validate_X_without_sklearn(X, reset)

    def _validate_cuda_X(self, X, reset):
        """A CUDA array's shape and dtype checked without reading it (its values stay on the
        device; the binding takes it through DLPack and checks its strides)."""
        shape = tuple(X.shape)
        if len(shape) != 2:
            raise ValueError(f"Expected a 2D array, got {len(shape)}D array instead")
        if str(X.dtype).rsplit(".", 1)[-1] not in ("float32", "float64"):
            raise TypeError(f"a CUDA array X must be float32 or float64, not {X.dtype}; convert it on the device")
        n, d = shape
        if d < 1:
            raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 is required.")
        if reset:
            if n < 2:
                raise ValueError(f"Found array with {n} sample(s) (shape={shape}) while a minimum of 2 is required.")
            self.n_features_in_ = d
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif d != self.n_features_in_:
            raise ValueError(
                f"X has {d} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input."
            )
        return X

    def _validate_X_without_sklearn(self, X, reset):
        columns = getattr(X, "columns", None)
        X = np.asarray(X)
        if np.iscomplexobj(X):
            raise ValueError("Complex data not supported")
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2D array, got {X.ndim}D array instead: reshape your data with "
                "X.reshape(-1, 1) if it has a single feature or X.reshape(1, -1) if it has a single sample."
            )
        X = _as_cuem_rows(X)
        n, d = X.shape
        if d < 1:
            raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
        if reset:
            if n < 2:
                raise ValueError(f"Found array with {n} sample(s) (shape={X.shape}) while a minimum of 2 is required.")
            self.n_features_in_ = d
            if columns is not None and len(columns) == d and all(isinstance(c, str) for c in columns):
                self.feature_names_in_ = np.asarray(list(columns), dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif d != self.n_features_in_:
            raise ValueError(
                f"X has {d} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input."
            )
        return X

    def _validate_sample_weight(self, sample_weight, X):
        """None, or sample_weight as a C-contiguous float64 array of one value per row of
        X (no copy when it already is one). Its values are checked by cuem, whose messages
        name what is wrong (negative, NaN, inf, all zero)."""
        if sample_weight is None:
            return None
        if _HAVE_SKLEARN:
            # cuem's own message for all-zero weights, as for negative ones.
            return _check_sample_weight(sample_weight, X, dtype=np.float64, **_SAMPLE_WEIGHT_OPTIONS)
        return _sample_weight_without_sklearn(sample_weight, X.shape[0])

    def _initial_parameters(self, n_features):
        """weights_init, means_init, precisions_init as float64 arrays of the right shapes
        (None where not given). cuem checks their values."""
        K, D = self.n_components, n_features
        shapes = {
            "weights_init": (K,),
            "means_init": (K, D),
            "precisions_init": {
                "full": (K, D, D),
                "tied": (D, D),
                "diag": (K, D),
                "spherical": (K,),
            }[self.covariance_type],
        }
        out = []
        for param, shape in shapes.items():
            value = getattr(self, param)
            if value is None:
                out.append(None)
                continue
            array = np.ascontiguousarray(value, dtype=np.float64)
            if array.shape != shape:
                raise ValueError(f"The parameter {param!r} should have the shape of {shape}, but got {array.shape}")
            out.append(array)
        return out

    # ---- fitting ---------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the model parameters with EM (n_init initialisations, the best kept).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or cuem.PlacedData
            A C-contiguous float64 array is used without a copy; anything else is
            converted once. A PlacedData is fitted on its device with its weights.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of every sample, not all zero (None: all 1). Every sum
            over samples is weighted, so that lower_bound_ is a mean per unit weight.
            Must be None when X is a PlacedData.

        Returns
        -------
        self : GaussianMixture
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model to X (weighted by sample_weight, as ``fit``) and return the most
        probable component of every sample (the same as ``fit(X).predict(X)``).

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
        """
        X = self._fit(X, sample_weight)
        return self._evaluate("predict", X)

    def _fit(self, X, sample_weight):
        self._check_parameters()
        placed = isinstance(X, PlacedData)
        if placed:
            _no_second_weights(sample_weight)
            self._check_placed_missing(X)
            self._set_features_from(X)
        else:
            X = self._validate_X(X, reset=True)
            sample_weight = self._validate_sample_weight(sample_weight, X)
        weights_init, means_init, precisions_init = self._initial_parameters(X.shape[1])

        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init
        if not do_init:  # warm start: continue from the fitted parameters
            n_init = 1
            weights_init, means_init, precisions_init = self.weights_, self.means_, self.precisions_
        init_params = self.init_params
        if weights_init is not None and means_init is not None and precisions_init is not None:
            # Every initial parameter is given, so the initialisation's result is replaced
            # entirely (scikit-learn skips it); random_from_data is the cheapest to discard.
            init_params = "random_from_data"

        on_iteration = None
        if self.verbose:
            on_iteration = _VerbosePrinter(int(self.verbose), self.verbose_interval, self.tol, self.max_iter)

        options = dict(
            n_components=int(self.n_components),
            covariance_type=self.covariance_type,
            tol=float(self.tol),
            reg_covar=float(self.reg_covar),
            max_iter=int(self.max_iter),
            n_init=int(n_init),
            init_params=init_params,
            seed=_seed_from(self.random_state),
            weights_init=weights_init,
            means_init=means_init,
            precisions_init=precisions_init,
            on_iteration=on_iteration,
            missing=self.missing,
            acceleration=self.acceleration,
            incremental_blocks=int(self.incremental_blocks),
            first_pass=self.first_pass,
            max_block_steps=int(self.max_block_steps),
        )
        self._online = None  # a later partial_fit continues from this fit's parameters
        if placed:  # its device, precision and weights
            result = _cuem.placed_fit(X._handle, **options)
        else:
            result = _cuem.fit(
                X,
                **options,
                device=self.device,
                precision=self.precision,
                device_memory_limit=int(self.device_memory_limit or 0),
                sample_weight=sample_weight,
            )

        self.weights_ = result["weights"]
        self.means_ = result["means"]
        self.covariances_ = result["covariances"]
        self.precisions_cholesky_ = result["precisions_cholesky"]
        self.precisions_ = self._precisions_from_cholesky(self.precisions_cholesky_)
        self.converged_ = bool(result["converged"])
        self.n_iter_ = int(result["n_iter"])
        self.lower_bound_ = np.float64(result["lower_bound"])  # as scikit-learn
        self.device_ = result["device"]
        self.convergence_rate_ = float(result["convergence_rate"])  # NaN where too few steps to tell
        self.n_estep_passes_ = int(result["n_estep_passes"])
        for notice in result["notices"]:
            warnings.warn(notice, UserWarning, stacklevel=2)
        self.lower_bounds_ = [float(v) for v in result["lower_bounds"]]
        # Skipped empty rows are among the notices (UserWarnings above).
        self.missing_summary_ = {key: _summary_value(value) for key, value in result["missing"].items()}

        if not self.converged_:
            warnings.warn(
                "Best performing initialization did not converge. Try different init parameters, "
                "or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return X

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of stepwise (online) EM on the batch X (Cappe and Moulines 2009).

        The running sufficient statistics per unit weight move towards the batch's, taken
        under the current parameters, by rho_t = (t + learning_offset)^(-learning_decay)
        (rho = 1 at the first step), and the parameters follow by the M-step. The first
        call initialises from its batch as ``fit`` does (init_params, random_state,
        weights_init, means_init, precisions_init), or, on a fitted estimator, continues
        from the fitted parameters. tol, max_iter, n_init, acceleration and
        incremental_blocks do not apply. With missing='marginalize' a batch's NaN entries
        are missing at random and the batch's expected statistics are used, as ``fit``
        does. docs/ONLINE.md has the method.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The batch: at least n_components rows for the first call, at least one after,
            always the same features.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : GaussianMixture
        """
        self._check_parameters()
        if isinstance(X, PlacedData):
            raise TypeError("partial_fit takes a batch as an array, not a cuem.PlacedData")
        state = getattr(self, "_online", None)
        start = state is None
        if start:
            X = self._validate_X(X, reset=not hasattr(self, "weights_"))
            if hasattr(self, "weights_"):  # continue from the fitted parameters
                weights_init, means_init, precisions_init = self.weights_, self.means_, self.precisions_
                init_params = "random_from_data"
            else:
                weights_init, means_init, precisions_init = self._initial_parameters(X.shape[1])
                init_params = self.init_params
                if weights_init is not None and means_init is not None and precisions_init is not None:
                    init_params = "random_from_data"  # as in fit: the initialisation is replaced
            state = _cuem.OnlineGaussianMixture(
                n_components=int(self.n_components),
                covariance_type=self.covariance_type,
                reg_covar=float(self.reg_covar),
                init_params=init_params,
                seed=_seed_from(self.random_state),
                weights_init=weights_init,
                means_init=means_init,
                precisions_init=precisions_init,
                device=self.device,
                precision=self.precision,
                device_memory_limit=int(self.device_memory_limit or 0),
                learning_decay=float(self.learning_decay),
                learning_offset=float(self.learning_offset),
                missing=self.missing,
            )
        else:
            X = self._validate_X(X, reset=False)
        sample_weight = self._validate_sample_weight(sample_weight, X)
        batch_log_likelihood = state.partial_fit(X, sample_weight)
        self._online = state
        model = state.model()
        self.weights_ = model["weights"]
        self.means_ = model["means"]
        self.covariances_ = model["covariances"]
        self.precisions_cholesky_ = model["precisions_cholesky"]
        self.precisions_ = self._precisions_from_cholesky(self.precisions_cholesky_)
        self.n_steps_ = int(state.n_steps)
        self.n_iter_ = self.n_steps_
        self.n_points_seen_ = int(state.n_points_seen)
        self.converged_ = False  # online EM has no convergence test
        self.lower_bound_ = np.float64(batch_log_likelihood)
        self.device_ = state.device
        if start:
            for notice in state.notices:
                warnings.warn(notice, UserWarning, stacklevel=2)
        return self

    def __getstate__(self):
        """Pickles without partial_fit's running state (a handle into the library): an
        unpickled estimator's next partial_fit continues from the pickled parameters."""
        state = dict(super().__getstate__())
        state.pop("_online", None)
        return state

    def _precisions_from_cholesky(self, precisions_cholesky):
        if self.covariance_type == "full":
            return np.ascontiguousarray(precisions_cholesky @ np.transpose(precisions_cholesky, (0, 2, 1)))
        if self.covariance_type == "tied":
            return precisions_cholesky @ precisions_cholesky.T
        return precisions_cholesky**2

    # ---- using the fitted model ------------------------------------------------------

    def _model_arrays(self):
        return (self.covariance_type, self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)

    def _fitted_X(self, X):
        check_is_fitted(self)
        if isinstance(X, PlacedData):
            if X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
            return X
        return self._validate_X(X, reset=False)

    def _check_placed_missing(self, placed):
        """A PlacedData made with missing='marginalize' may hold NaN: an estimator that
        refuses NaN must not use it (one made with 'error' holds none, so any estimator may)."""
        if placed.missing == "marginalize" and self.missing != "marginalize":
            raise ValueError(
                "X is a cuem.PlacedData placed with missing='marginalize', which may hold NaN, but this "
                f"{type(self).__name__} has missing={self.missing!r}; set missing='marginalize' on it too"
            )

    def _set_features_from(self, placed):
        """n_features_in_ and feature_names_in_ as fit on the PlacedData's X sets them."""
        self.n_features_in_ = placed.shape[1]
        if placed._feature_names_in is not None:
            self.feature_names_in_ = placed._feature_names_in
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _evaluate(self, name, X):
        """_cuem.<name> of the model on X: on a PlacedData's device, else on the estimator's."""
        if isinstance(X, PlacedData):
            self._check_placed_missing(X)
            return getattr(_cuem, "placed_" + name)(X._handle, *self._model_arrays())
        return getattr(_cuem, name)(X, *self._model_arrays(), **self._where())

    def _where(self):
        """Where the fitted model is evaluated: the estimator's own device settings."""
        return {
            "device": self.device,
            "precision": self.precision,
            "device_memory_limit": int(self.device_memory_limit or 0),
            "missing": self.missing,
        }

    def predict(self, X):
        """Most probable component of every sample.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
        """
        return self._evaluate("predict", self._fitted_X(X))

    def predict_proba(self, X):
        """Posterior probability of every component for every sample.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        """
        return self._evaluate("predict_proba", self._fitted_X(X))

    def score_samples(self, X):
        """Log-likelihood log p(x) of every sample.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        return self._evaluate("score_samples", self._fitted_X(X))

    def score(self, X, y=None, sample_weight=None):
        """Mean per-sample log-likelihood of X; with sample_weight the weighted mean
        sum(w * score_samples(X)) / sum(w).

        Returns
        -------
        log_likelihood : float
        """
        X = self._fitted_X(X)
        if isinstance(X, PlacedData):
            _no_second_weights(sample_weight)
            return float(self._evaluate("criteria", X)[0])
        sample_weight = self._validate_sample_weight(sample_weight, X)
        return float(_cuem.score(X, *self._model_arrays(), **self._where(), sample_weight=sample_weight))

    def _criteria(self, X, sample_weight):
        X = self._fitted_X(X)
        if isinstance(X, PlacedData):
            _no_second_weights(sample_weight)
            return self._evaluate("criteria", X)
        sample_weight = self._validate_sample_weight(sample_weight, X)
        return _cuem.criteria(X, *self._model_arrays(), **self._where(), sample_weight=sample_weight)

    def bic(self, X, sample_weight=None):
        """Bayesian information criterion of the model on X (lower is better); with
        sample_weight, -2 sum(w * log p(x)) + n_parameters * log(sum(w)) (a cuem extension).
        One pass on the estimator's device: float64 on the CPU; on a GPU it carries the
        device precision's rounding."""
        return float(self._criteria(X, sample_weight)[1])

    def aic(self, X, sample_weight=None):
        """Akaike information criterion of the model on X (lower is better); with
        sample_weight, -2 sum(w * log p(x)) + 2 n_parameters (a cuem extension). One pass
        on the estimator's device, as bic."""
        return float(self._criteria(X, sample_weight)[2])

    def impute(self, X, return_variance=False):
        """Fill the missing (NaN) entries of X from the fitted mixture.

        A missing entry becomes its conditional expectation given the row's observed
        entries, sum_k P(k | x_obs) E[x_mis | x_obs, k]; observed entries are returned
        as given (in float64). A row with no observed entry gets the mixture's mean.
        NaN is accepted here whatever ``missing`` says; Inf is a ValueError. Computed in
        float64 on the CPU.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A host array (not a PlacedData or a CUDA array).
        return_variance : bool, default=False
            Also return each missing entry's conditional variance (over the components,
            by the law of total variance); 0 where the entry was observed.

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features), float64
        variance : ndarray of shape (n_samples, n_features), float64
            Only when return_variance is true.
        """
        check_is_fitted(self)
        if isinstance(X, PlacedData) or _is_cuda_array(X):
            raise TypeError("impute takes a host array X (a NumPy array or array-like), not a PlacedData or CUDA array")
        X = self._validate_X(X, reset=False, allow_nan=True)
        filled, variance = _cuem.impute(X, *self._model_arrays(), with_variance=bool(return_variance))
        return (filled, variance) if return_variance else filled

    def sample(self, n_samples=1):
        """Draw random samples from the fitted mixture.

        The draws are seeded by ``random_state`` as ``fit`` is (an int gives the same
        samples on every call), with cuem's generator.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,), int64
            The component of every sample; the samples are grouped by component.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(
                "Invalid value for 'n_samples': %r . The sampling requires at least one sample." % (n_samples,)
            )
        return _cuem.sample(int(n_samples), _seed_from(self.random_state), *self._model_arrays())


class PlacedData:
    """X (and sample weights) placed once on a device, for any number of fits and
    evaluations by ``GaussianMixture``.

    Every ``fit``, ``predict``... on an array converts, validates and (on a GPU) uploads it
    again; a PlacedData does that once. Pass it in place of X to ``fit``, ``fit_predict``,
    ``predict``, ``predict_proba``, ``score_samples``, ``score``, ``bic`` and ``aic``: they
    run on the PlacedData's device, weighted by its sample_weight (passing sample_weight
    to the method as well is a ValueError). The PlacedData's device wins over the
    estimator's ``device``, ``precision`` and ``device_memory_limit`` parameters.

    X is taken as ``fit`` takes it (float64 or float32 arrays with contiguous rows are
    read in place, anything else is converted once; DLPack CUDA arrays stay on the
    device) and checked with fit's messages. The arrays are kept alive by this object
    and must not be modified while it lives: the device may hold a copy of them.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    sample_weight : array-like of shape (n_samples,), default=None
    device : {'cpu', 'auto', 'cuda', 'cuda:N'}, default='cpu'
    precision : {'float32', 'float64'}, default='float32'
    device_memory_limit : int, default=0
        Bytes of device memory (0: 80% of the free memory).
    missing : {'error', 'marginalize'}, default='error'
        As ``GaussianMixture``'s: 'marginalize' lets NaN entries through as missing. Data
        placed with 'marginalize' are used only by estimators with missing='marginalize'.
    """

    def __init__(self, X, sample_weight=None, device="cpu", precision="float32", device_memory_limit=0,
                 missing="error"):
        # An estimator of these settings checks them, X and the weights exactly as fit does.
        checker = GaussianMixture(
            device=device, precision=precision, device_memory_limit=device_memory_limit or None, missing=missing
        )
        checker._check_parameters()
        X = checker._validate_X(X, reset=True)
        sample_weight = checker._validate_sample_weight(sample_weight, X)
        self._feature_names_in = getattr(checker, "feature_names_in_", None)
        self._handle = _cuem.PlacedData(X, sample_weight, device, precision, int(device_memory_limit or 0), missing)
        self.missing = missing

    @property
    def shape(self):
        """(n_samples, n_features)."""
        return tuple(self._handle.shape)

    @property
    def device(self):
        """What runs the work (device, precision, layout) once a first call has placed the
        data; until then the device asked for."""
        if self._handle.description == "(not placed yet)":  # cuem::PlacedData::description before placing
            return self._handle.requested_device
        return self._handle.description

    @property
    def notice(self):
        """What to know about the choice of device (e.g. 'auto' fell back to the CPU), or ''."""
        return self._handle.notice

    def __reduce__(self):
        raise TypeError("a cuem.PlacedData cannot be pickled: it holds data on a device; pickle the arrays")

    def __repr__(self):
        missing = "" if self.missing == "error" else f", missing={self.missing!r}"
        return f"PlacedData(shape={self.shape}, device={self.device!r}{missing})"
