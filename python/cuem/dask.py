"""cuem.dask.GaussianMixture: EM for a Gaussian mixture over a dask array on a
dask.distributed cluster, the statistics of each chunk computed where the chunk lives.

    >>> import dask.array as da, distributed, cuem.dask
    >>> client = distributed.Client()                       # or Client("scheduler:8786")
    >>> X = da.random.default_rng(0).normal(size=(10**7, 8), chunks=(10**6, 8))
    >>> gm = cuem.dask.GaussianMixture(n_components=4, random_state=0).fit(X)
    >>> labels = gm.predict(X)                              # a dask array

How a fit runs (docs/DISTRIBUTED.md, "Dask"):

- X is persisted on the workers once; no chunk is ever sent to the client or to another
  worker on purpose (Dask may still move one to balance work, as it does for any task).
- Every EM iteration, the parameters are scattered to the workers, each chunk's
  sufficient statistics are computed by the cuem C++ core on the worker holding it
  (``_cuem.statistics``, GIL released), and the statistics dicts are summed by a
  binary tree over the chunk index ((0+1), (2+3), ..., then pairs of those): the order of
  every addition depends on the chunking alone, never on which worker holds a chunk,
  how many workers there are or when a result arrives. The client runs the M-step
  (``_cuem.m_step``), the convergence test and the restarts exactly as
  ``cuem.GaussianMixture`` does (EM stops when the mean log-likelihood per unit weight
  changes by less than tol, the first iteration never counting as converged).
- From the same start (weights_init, means_init and precisions_init given, or a warm
  start) the fit is ``cuem.GaussianMixture``'s on the computed array up to the rounding of
  the sums' order (the tests check 1e-12); with one chunk and diag or spherical
  covariances it is the same bitwise.
- Initialisation ('kmeans', the default): k-means++ seeds chosen from a sample of rows
  drawn by global row index with the fit's seed (only the sample reaches the client), then
  Lloyd's iterations on all of the data with per-chunk hard-assignment sums reduced in the
  same tree order, until the squared centre shift falls below 1e-4 times the sample's
  mean feature variance (at most 300 steps), then the partition's statistics and the
  M-step. The result depends on the seed and the data, not on the chunking beyond
  rounding; it is not the local estimator's k-means (which seeds from all rows with the
  library's own generator), so the same random_state starts elsewhere. 'k-means++' is the
  seeding alone and 'random_from_data' K distinct rows by global index; 'random' draws
  each row's responsibilities from a counter-based generator (Philox) at the row's global
  index, so its start depends on the chunking only through rounding too.

Faults: a worker lost during a fit is replaced by Dask: its tasks are re-run elsewhere and
its chunks of X recomputed from their graph, so the fit goes on and ends as an
uninterrupted one would (the statistics do not depend on placement). Data without a graph
to recompute from (chunks scattered from the client, then their holder lost) make the fit
fail with a RuntimeError that says so.
"""

import time
import warnings
from concurrent.futures import CancelledError

import numpy as np

from . import _cuem
from .hmm import ConvergenceMonitor as _ConvergenceMonitor
from .gmmhmm import GMMHMM as _LocalGMMHMM
from .hmm import GaussianHMM as _LocalGaussianHMM
from .mixture import (
    ConvergenceWarning,
    GaussianMixture as _LocalGaussianMixture,
    _as_cuem_rows,
    _Bases,
    _seed_from,
    _VerbosePrinter,
    check_is_fitted,
)

try:
    import dask
    import dask.array as da
    import distributed
except ImportError as error:  # pragma: no cover - the tests need dask
    raise ImportError(
        "cuem.dask needs dask and dask.distributed: pip install 'dask[distributed]'"
    ) from error

__all__ = ["GaussianMixture", "GaussianHMM", "GMMHMM"]

_KMEANS_TOL = 1e-4
_KMEANS_MAX_ITER = 300
_INIT_SAMPLE_ROWS = 20000
_INLINE_BYTES = 1 << 16


# ---- work done on the workers (module-level functions, pickled by reference) ----------


def _block_statistics(X, sample_weight, rows, model, where):
    """The E-step's sufficient statistics of one chunk under `model` (a dict of arrays), or
    None for a chunk of no weight (adds as zero)."""
    if sample_weight is not None and not np.any(sample_weight > 0):
        return None
    try:
        return _cuem.statistics(
            _as_cuem_rows(X),
            *_model_tuple(model),
            sample_weight=sample_weight,
            **where,
        )
    except ValueError as error:
        raise type(error)(f"rows {rows[0]}-{rows[1] - 1} of X: {error}") from None


def _add_statistics(a, b):
    """a + b for statistics dicts, None being zero."""
    if a is None:
        return b
    if b is None:
        return a
    return _cuem.add_statistics(a, b)


def _nearest_centres(X, centres):
    """Index of the nearest centre (squared Euclidean, ties to the lower index) of every
    row, in pieces of bounded memory."""
    K, D = centres.shape
    labels = np.empty(X.shape[0], dtype=np.int64)
    piece = max(1, (1 << 22) // max(1, K * D))
    for start in range(0, X.shape[0], piece):
        x = X[start : start + piece]
        d2 = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels[start : start + piece] = np.argmin(d2, axis=1)
    return labels


def _zero_sums(K, D, covariance_type):
    """N_k, S1_k and S2 (in covariance_type's layout) of no points."""
    s2 = {"full": (K, D, D), "tied": (D, D)}.get(covariance_type, (K, D))
    return np.zeros(K), np.zeros((K, D)), np.zeros(s2)


def _add_component(sums, k, diff, g, covariance_type, with_scatter):
    """Adds points of weights g (their rows' weight times their share of component k), as
    diff = x - c_k, to component k's sums."""
    nk, s1, s2 = sums
    nk[k] += g.sum()
    s1[k] += g @ diff
    if not with_scatter:
        return
    if covariance_type == "full":
        s2[k] += (diff * g[:, None]).T @ diff
    elif covariance_type == "tied":
        s2 += (diff * g[:, None]).T @ diff
    else:
        s2[k] += g @ (diff * diff)


def _statistics(covariance_type, shift, sums, weight, n_points):
    nk, s1, s2 = sums
    return {
        "covariance_type": covariance_type,
        "shift": np.ascontiguousarray(shift, dtype=np.float64),
        "nk": nk,
        "s1": s1,
        "s2": s2.ravel(),
        "log_likelihood": 0.0,
        "weight": float(weight),
        "n_points": int(n_points),
    }


def _row_weights(X, sample_weight):
    return np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)


def _block_partition(X, sample_weight, rows, centres, covariance_type, with_scatter):
    """The statistics dict of the hard assignment of one chunk's rows to their nearest
    centres, about the centres: N_k = sum w, S1_k = sum w (x - c_k) and, with_scatter,
    S2_k = sum w (x - c_k)(x - c_k)^T in the layout of covariance_type (else zeros)."""
    X = np.asarray(X, dtype=np.float64)
    w = _row_weights(X, sample_weight)
    labels = _nearest_centres(X, centres)
    sums = _zero_sums(*centres.shape, covariance_type)
    for k in np.unique(labels):
        mine = labels == k
        _add_component(sums, k, X[mine] - centres[k], w[mine], covariance_type, with_scatter)
    return _statistics(covariance_type, centres, sums, w.sum(), X.shape[0])


def _random_responsibilities(key, first_row, n, K):
    """Row i's responsibilities (uniform draws, normalised): Philox with `key` from counter
    i * ceil(K / 4), so that a row's draws depend on its global index alone."""
    per_row = -(-K // 4)  # one counter step gives four 64-bit draws
    generator = np.random.Generator(np.random.Philox(key=key, counter=[first_row * per_row, 0, 0, 0]))
    draws = generator.random((n, 4 * per_row))[:, :K]
    return draws / draws.sum(axis=1, keepdims=True)


def _block_random(X, sample_weight, rows, key, shift, covariance_type, with_scatter):
    """The statistics dict of random responsibilities of one chunk's rows, about `shift`."""
    X = np.asarray(X, dtype=np.float64)
    w = _row_weights(X, sample_weight)
    K = shift.shape[0]
    resp = _random_responsibilities(key, rows[0], X.shape[0], K)
    sums = _zero_sums(*shift.shape, covariance_type)
    for k in range(K):
        _add_component(sums, k, X - shift[k], w * resp[:, k], covariance_type, with_scatter)
    return _statistics(covariance_type, shift, sums, w.sum(), X.shape[0])


def _block_evaluate(X, what, model, where, n_columns):
    """predict / predict_proba / score_samples of one chunk (map_blocks)."""
    if X.shape[0] == 0:
        dtype = np.int64 if what == "predict" else np.float64
        return np.empty((0, n_columns) if n_columns else (0,), dtype=dtype)
    return getattr(_cuem, what)(
        _as_cuem_rows(X),
        *_model_tuple(model),
        **where,
    )


def _block_finite(X):
    return np.array([[bool(np.isfinite(X).all())]])


# ---- the client side -------------------------------------------------------------------


def _client():
    try:
        return distributed.default_client()
    except ValueError:
        raise RuntimeError(
            "cuem.dask needs a dask.distributed Client: create one first, e.g. distributed.Client() for a "
            "local cluster or distributed.Client('scheduler-address:8786')"
        ) from None


def _to_workers(client, value):
    """`value` (parameters) as a task argument: sent with every task where small, scattered
    to every worker once where large (a scatter is a round trip of its own)."""
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else [value]
    size = sum(v.nbytes for v in items if isinstance(v, np.ndarray))
    if size < _INLINE_BYTES:
        return value
    [future] = client.scatter([value], broadcast=True, hash=False)
    return future


def _chunk_sum(client, data, fn, *args):
    """fn(chunk, its weights, its (first, end) rows, *args) for every chunk of `data`, on
    the workers, summed by _tree_sum."""
    args = [_to_workers(client, a) if isinstance(a, (np.ndarray, dict)) else a for a in args]
    parts = [
        client.submit(fn, block, w, rows, *args, pure=False)
        for block, w, rows in zip(data.blocks, data.weights, data.rows)
    ]
    return _tree_sum(client, parts, _add_statistics)


def _sum_in_tree(add, *parts):
    """The sum of `parts` by a binary tree over their positions ((0+1), (2+3), ..., then
    pairs of those)."""
    parts = list(parts)
    while len(parts) > 1:
        paired = [add(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            paired.append(parts[-1])
        parts = paired
    return parts[0]


def _tree_sum(client, parts, add):
    """The sum of futures `parts` by a binary tree over their positions (_sum_in_tree), in
    one task on a worker (one scheduling round trip, where a task per addition took one per
    level); fetched to the client. Work that Dask cannot redo after losing a worker is a
    RuntimeError saying so."""
    total = client.submit(_sum_in_tree, add, *parts, pure=False)
    try:
        return total.result()
    except (CancelledError, distributed.KilledWorker) as error:
        raise RuntimeError(
            "cuem.dask: the fit lost work it cannot redo: a worker died holding chunks of X that have no task "
            "graph to recompute them from (scattered data), or a task took part in too many worker deaths "
            f"(distributed.scheduler.allowed-failures); Dask says: {type(error).__name__}: {error}"
        ) from error


def _as_dask_rows(X, name="X", local="cuem.GaussianMixture"):
    """X as a 2-D float64 or float32 dask array with known chunk sizes and every column in
    one chunk (a dask DataFrame's values; other dtypes converted chunk by chunk)."""
    if hasattr(X, "to_dask_array"):  # a dask DataFrame
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name} must be a dask array or a dask DataFrame, not {type(X).__name__}; for arrays in memory "
            f"use {local}"
        )
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array, got {X.ndim}D array instead")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if np.issubdtype(X.dtype, np.complexfloating) or not (
        np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must hold real numbers, not {X.dtype}")
    if X.dtype not in (np.float64, np.float32):
        X = X.astype(np.float64)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def _model_from_precisions(covariance_type, weights, means, precisions, reg_covar):
    """The model whose covariances are the inverse of the given precisions, as
    src/init/initialize.cpp makes it (the covariances, then the Cholesky factors of the
    precisions from them). diag and spherical are bitwise the library's; full and tied
    agree to rounding (NumPy's LAPACK instead of the library's own factorisation)."""
    precisions = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        stack = precisions.reshape((-1,) + precisions.shape[-2:])
        covariances = np.empty_like(stack)
        chol = np.empty_like(stack)
        for k, p in enumerate(stack):
            try:
                np.linalg.cholesky(p)
                if not np.allclose(p, p.T, rtol=0, atol=1e-12 * np.abs(p).max()):
                    raise np.linalg.LinAlgError
                covariances[k] = np.linalg.inv(p)
                chol[k] = np.linalg.inv(np.linalg.cholesky(covariances[k])).T
            except np.linalg.LinAlgError:
                raise ValueError(f"precisions_init is not symmetric positive definite (matrix {k})") from None
        covariances = covariances.reshape(precisions.shape)
        chol = chol.reshape(precisions.shape)
    else:
        if not np.all(precisions > 0):
            raise ValueError("precisions_init must be positive")
        covariances = 1.0 / precisions
        chol = 1.0 / np.sqrt(covariances)
    model = {
        "covariance_type": covariance_type,
        "weights": np.ascontiguousarray(weights, dtype=np.float64),
        "means": np.ascontiguousarray(means, dtype=np.float64),
        "covariances": np.ascontiguousarray(covariances),
        "precisions_cholesky": np.ascontiguousarray(chol),
    }
    _cuem.validate_model(*_model_tuple(model))
    return model


def _model_tuple(model):
    return (model["covariance_type"], model["weights"], model["means"], model["covariances"],
            model["precisions_cholesky"])


def _kmeans_plusplus(S, w, K, rng):
    """Greedy k-means++ (2 + floor(ln K) candidates a step, the one lowering the potential
    most kept) on the rows S with weights w; returns K row indices of S."""
    m = S.shape[0]
    n_trials = 2 + int(np.log(K))
    first = rng.choice(m, p=w / w.sum())
    chosen = [first]
    closest = ((S - S[first]) ** 2).sum(axis=1)
    potential = (w * closest).sum()
    for _ in range(1, K):
        cumulative = np.cumsum(w * closest)
        draws = rng.uniform(size=n_trials) * potential
        candidates = np.minimum(np.searchsorted(cumulative, draws, side="right"), m - 1)
        d2 = ((S[None, :, :] - S[candidates][:, None, :]) ** 2).sum(axis=2)
        np.minimum(closest[None, :], d2, out=d2)
        potentials = (w[None, :] * d2).sum(axis=1)
        best = int(np.argmin(potentials))
        chosen.append(int(candidates[best]))
        closest = d2[best]
        potential = potentials[best]
    return np.asarray(chosen)


def _point_seeded_model(points, n_points, total_weight, covariance_type, reg_covar):
    """The start with component k on the one point points[k] (N_k = 1, no spread): the
    library's own point-seeded start (src/init/initialize.cpp), by its M-step."""
    K, D = points.shape
    size = {"full": K * D * D, "tied": D * D}.get(covariance_type, K * D)
    stats = {
        "covariance_type": covariance_type,
        "shift": np.ascontiguousarray(points, dtype=np.float64),
        "nk": np.ones(K),
        "s1": np.zeros((K, D)),
        "s2": np.zeros(size),
        "log_likelihood": 0.0,
        "weight": float(total_weight),
        "n_points": int(n_points),
    }
    return dict(_cuem.m_step(stats, reg_covar), covariance_type=covariance_type)


def _kmeans_centres(client, data, K, rng, lloyd):
    """K centres: greedy k-means++ on a sample of rows drawn by global index (weighted by
    sample_weight), then, with `lloyd`, Lloyd's steps over all chunks (sums in the tree's
    order) until the squared centre shift falls below 1e-4 times the sample's mean feature
    variance, at most 300 steps."""
    m = min(data.n_rows, _INIT_SAMPLE_ROWS)
    index = np.sort(rng.choice(data.n_rows, m, replace=False))
    sample = np.asarray(data.X[index].compute(), dtype=np.float64)
    w = np.ones(m) if data.sample_weight is None else data.sample_weight[index].compute()
    if not np.any(w > 0):
        raise ValueError("the rows sampled for k-means++ all have sample_weight 0; use init_params='kmeans' "
                         "with fewer zero weights, or give means_init")
    seeds = _kmeans_plusplus(sample, w, K, rng)
    centres = sample[seeds]
    if not lloyd:
        return centres
    mean_variance = np.average((sample - np.average(sample, axis=0, weights=w)) ** 2, axis=0, weights=w).mean()
    threshold = _KMEANS_TOL * mean_variance
    for _ in range(_KMEANS_MAX_ITER):
        stats = _chunk_sum(client, data, _block_partition, centres, "diag", False)
        moved = np.where(stats["nk"][:, None] > 0, centres + stats["s1"] / np.maximum(stats["nk"], 1e-300)[:, None],
                         centres)
        shift = ((moved - centres) ** 2).sum()
        centres = moved
        if shift <= threshold:
            break
    return centres


class _DaskData:
    """X (and sample weights) persisted on the workers, as futures in chunk order."""

    def __init__(self, client, X, sample_weight):
        X = client.persist(X)
        if sample_weight is not None:
            sample_weight = client.persist(sample_weight)
        self.X = X
        self.sample_weight = sample_weight
        self.n_rows, self.n_features = X.shape
        bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        keep = [i for i in range(len(X.chunks[0])) if X.chunks[0][i] > 0]  # empty chunks add nothing
        self.rows = [(int(bounds[i]), int(bounds[i + 1])) for i in keep]
        self.blocks = [self._futures(client, X)[i] for i in keep]
        self.weights = (
            [None] * len(keep)
            if sample_weight is None
            else [self._futures(client, sample_weight)[i] for i in keep]
        )

    @staticmethod
    def _futures(client, array):
        by_key = {f.key: f for f in distributed.futures_of(array)}
        keys = array.__dask_keys__()
        flat = [row[0] if isinstance(row, list) else row for row in keys]
        return [by_key[k] for k in flat]

    def total_weight(self):
        if self.sample_weight is None:
            return float(self.n_rows)
        return float(self.sample_weight.sum().compute())


class GaussianMixture(*_Bases):
    """Gaussian mixture fitted with EM over a dask array on a dask.distributed cluster.

    The parameters, fitted attributes and methods are ``cuem.GaussianMixture``'s where they
    apply (n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params,
    weights_init, means_init, precisions_init, random_state, warm_start, verbose,
    verbose_interval, device, precision, device_memory_limit); ``device`` names the
    device each worker computes on ('cuda' uses each worker's GPU). ``callback``, when
    given, is called on the client after every iteration as
    ``callback(init, iteration, lower_bound, change)``; returning False stops the fit
    (the parameters so far are kept). Not supported: missing data,
    SQUAREM, incremental and online EM. This module's docstring says how it works.

    fit takes a dask array (any chunking; columns are brought into one chunk) or a dask
    DataFrame, and sample_weight as a dask array of one value per row. predict,
    predict_proba and score_samples return dask arrays (chunked as X's rows); score, bic
    and aic return floats.
    """

    _check_shared_parameters = _LocalGaussianMixture._check_shared_parameters
    _initial_parameters = _LocalGaussianMixture._initial_parameters
    _precisions_from_cholesky = _LocalGaussianMixture._precisions_from_cholesky
    _model_arrays = _LocalGaussianMixture._model_arrays

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
        callback=None,
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
        self.callback = callback

    # ---- fitting ---------------------------------------------------------------------

    def _where(self):
        return {
            "device": self.device,
            "precision": self.precision,
            "device_memory_limit": int(self.device_memory_limit or 0),
        }

    def _check_parameters(self):
        self._check_shared_parameters()
        if self.callback is not None and not callable(self.callback):
            raise ValueError(f"callback must be callable or None, not {self.callback!r}")

    def _check_sample_weight(self, sample_weight, X):
        if sample_weight is None:
            return None
        if not isinstance(sample_weight, da.Array):
            raise TypeError(f"sample_weight must be a dask array, not {type(sample_weight).__name__}")
        if sample_weight.ndim != 1 or sample_weight.shape[0] != X.shape[0]:
            raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected {(X.shape[0],)}!")
        sample_weight = sample_weight.astype(np.float64).rechunk((X.chunks[0],))
        finite, negative, total = da.compute(
            da.isfinite(sample_weight).all(), (sample_weight < 0).any(), sample_weight.sum()
        )
        if not finite:
            raise ValueError("sample_weight must be finite (it has NaN or infinity)")
        if negative:
            raise ValueError("sample_weight must be non-negative")
        if not total > 0:
            raise ValueError("sample_weight must not be all zero")
        return sample_weight

    @staticmethod
    def _check_finite(data):
        flags = data.X.map_blocks(_block_finite, chunks=(1, 1), dtype=bool).compute().ravel()
        bounds = np.concatenate([[0], np.cumsum(data.X.chunks[0])])
        for i, ok in enumerate(flags):
            if not ok:
                raise ValueError(
                    f"Input X contains NaN or infinity (in chunk {i}, rows {bounds[i]}-{bounds[i + 1] - 1})"
                )

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the model parameters with EM over the dask array X (n_init restarts,
        the best kept).

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)
        y : Ignored
        sample_weight : dask array of shape (n_samples,), default=None
            Non-negative, not all zero (rechunked as X's rows).

        Returns
        -------
        self : GaussianMixture
        """
        self._check_parameters()
        X = _as_dask_rows(X)
        n, d = X.shape
        if d < 1:
            raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
        if n < 2:
            raise ValueError(f"Found array with {n} sample(s) (shape={X.shape}) while a minimum of 2 is required.")
        if n < self.n_components:
            raise ValueError(f"n_samples={n} should be >= n_components={self.n_components}.")
        sample_weight = self._check_sample_weight(sample_weight, X)
        client = _client()
        data = _DaskData(client, X, sample_weight)
        self._check_finite(data)
        given = self._initial_parameters(d)

        warm = self.warm_start and hasattr(self, "converged_")
        n_init = 1 if warm else int(self.n_init)
        if warm:
            given = [self.weights_, self.means_, self.precisions_]
        seed = _seed_from(self.random_state)
        printer = None
        if self.verbose:
            printer = _VerbosePrinter(int(self.verbose), self.verbose_interval, self.tol, self.max_iter)

        best = None
        passes = 0
        for init in range(n_init):
            model = self._start(client, data, given, np.random.default_rng([seed, init]))
            result = self._em(client, data, model, init, printer)
            passes += result["n_iter"]
            if best is None or result["lower_bound"] > best["lower_bound"]:
                best = result
            if result["stopped"]:
                break

        model = best["model"]
        self.weights_ = model["weights"]
        self.means_ = model["means"]
        self.covariances_ = model["covariances"]
        self.precisions_cholesky_ = model["precisions_cholesky"]
        self.precisions_ = self._precisions_from_cholesky(self.precisions_cholesky_)
        self.converged_ = best["converged"]
        self.n_iter_ = best["n_iter"]
        self.lower_bound_ = np.float64(best["lower_bound"])
        self.lower_bounds_ = best["lower_bounds"]
        self.n_estep_passes_ = passes
        self.n_features_in_ = d
        self.device_ = self.device
        if not self.converged_:
            warnings.warn(
                "Best performing initialization did not converge. Try different init parameters, "
                "or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """fit(X), then predict(X): the most probable component of every row, a dask array."""
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _em(self, client, data, model, init, printer):
        """EM from `model` as the library's batch driver runs it (src/engine/batch_driver.hpp)."""
        where = self._where()
        bound = -np.inf
        bounds = []
        converged = stopped = False
        n_iter = 0
        for iteration in range(1, int(self.max_iter) + 1):
            t0 = time.time()
            stats = _chunk_sum(client, data, _block_statistics, model, where)
            previous = bound
            bound = stats["log_likelihood"] / stats["weight"]
            model = dict(_cuem.m_step(stats, float(self.reg_covar)), covariance_type=self.covariance_type)
            n_iter = iteration
            change = bound - previous
            bounds.append(float(bound))
            if printer is not None:
                printer(init, iteration, bound, change, time.time() - t0)
            if self.callback is not None and self.callback(init, iteration, float(bound), float(change)) is False:
                stopped = True
                break
            if iteration > 1 and abs(change) < self.tol:
                converged = True
                break
        return {"model": model, "converged": converged, "n_iter": n_iter, "lower_bound": bound,
                "lower_bounds": bounds, "stopped": stopped}

    def _start(self, client, data, given, rng):
        """The start of one restart: the init method's model with the given parameters put
        in (as src/init/initialize.cpp does)."""
        weights_init, means_init, precisions_init = given
        K, cov = int(self.n_components), self.covariance_type
        reg = float(self.reg_covar)
        if weights_init is not None and means_init is not None and precisions_init is not None:
            return _model_from_precisions(cov, weights_init, means_init, precisions_init, reg)
        if self.init_params == "random":
            model = self._random_start(client, data, int(rng.integers(0, 2**63)))
        elif self.init_params == "random_from_data":
            index = np.sort(rng.choice(data.n_rows, K, replace=False))
            model = _point_seeded_model(data.X[index].compute(), data.n_rows, data.total_weight(), cov, reg)
        else:
            model = self._kmeans_start(client, data, rng)
        if weights_init is not None:
            model["weights"] = np.ascontiguousarray(weights_init, dtype=np.float64)
        if means_init is not None:
            model["means"] = np.ascontiguousarray(means_init, dtype=np.float64)
        if precisions_init is not None:
            model = _model_from_precisions(cov, model["weights"], model["means"], precisions_init, reg)
        _cuem.validate_model(*_model_tuple(model))
        return model

    def _kmeans_start(self, client, data, rng):
        """k-means++ seeds from a sample of rows drawn by global index; for 'kmeans' then
        Lloyd over all chunks and the partition's M-step (module docstring)."""
        K, cov = int(self.n_components), self.covariance_type
        centres = _kmeans_centres(client, data, K, rng, lloyd=self.init_params != "k-means++")
        if self.init_params == "k-means++":
            return _point_seeded_model(centres, data.n_rows, data.total_weight(), cov, float(self.reg_covar))
        stats = self._partition(client, data, centres, with_scatter=True)
        n_empty = int(np.sum(stats["nk"] == 0))
        if n_empty:
            warnings.warn(
                f"k-means found {K - n_empty} distinct clusters for {K} components (duplicate points?); some "
                "components start empty",
                UserWarning,
                stacklevel=3,
            )
        return dict(_cuem.m_step(stats, float(self.reg_covar)), covariance_type=cov)

    def _partition(self, client, data, centres, with_scatter):
        return _chunk_sum(client, data, _block_partition, centres, self.covariance_type, with_scatter)

    def _random_start(self, client, data, key):
        """'random': responsibilities drawn per row by its global index (Philox keyed by the
        restart), their statistics in two passes (the means, then the sums about them) and
        the M-step, as the library's two-pass start."""
        K, cov = int(self.n_components), self.covariance_type
        first = _chunk_sum(client, data, _block_random, key, np.zeros((K, data.n_features)), cov, False)
        means = first["s1"] / np.maximum(first["nk"], np.finfo(float).tiny)[:, None]
        stats = _chunk_sum(client, data, _block_random, key, means, cov, True)
        return dict(_cuem.m_step(stats, float(self.reg_covar)), covariance_type=cov)

    # ---- using the fitted model ------------------------------------------------------

    def _model(self):
        return {
            "covariance_type": self.covariance_type,
            "weights": self.weights_,
            "means": self.means_,
            "covariances": self.covariances_,
            "precisions_cholesky": self.precisions_cholesky_,
        }

    def _fitted_X(self, X):
        check_is_fitted(self)
        X = _as_dask_rows(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                "features as input."
            )
        return X

    def _map(self, what, X):
        X = self._fitted_X(X)
        where = dict(self._where(), missing="error")
        if what == "predict_proba":
            K = int(self.n_components)
            return X.map_blocks(_block_evaluate, what, self._model(), where, K, chunks=(X.chunks[0], (K,)),
                                dtype=np.float64, meta=np.empty((0, 0), dtype=np.float64))
        dtype = np.int64 if what == "predict" else np.float64
        return X.map_blocks(_block_evaluate, what, self._model(), where, 0, drop_axis=1, dtype=dtype,
                            meta=np.empty((0,), dtype=dtype))

    def predict(self, X):
        """Most probable component of every row: a dask array of int64, chunked as X's rows."""
        return self._map("predict", X)

    def predict_proba(self, X):
        """Posterior probability of every component for every row: a dask array
        (n_samples, n_components)."""
        return self._map("predict_proba", X)

    def score_samples(self, X):
        """log p(x) of every row: a dask array of float64."""
        return self._map("score_samples", X)

    def _log_likelihood(self, X, sample_weight):
        """(sum w log p(x), sum w) over X, computed on the cluster."""
        log_p = self.score_samples(X)
        if sample_weight is None:
            return tuple(float(v) for v in da.compute(log_p.sum(), log_p.shape[0]))
        sample_weight = self._check_sample_weight(sample_weight, log_p[:, None])
        return tuple(float(v) for v in da.compute((log_p * sample_weight).sum(), sample_weight.sum()))

    def score(self, X, y=None, sample_weight=None):
        """Mean log-likelihood per row of X (per unit weight with sample_weight), a float."""
        total, weight = self._log_likelihood(X, sample_weight)
        return total / weight

    def _n_parameters(self):
        K, D = int(self.n_components), int(self.n_features_in_)
        covariance = {"full": K * D * (D + 1) / 2, "tied": D * (D + 1) / 2, "diag": K * D, "spherical": K}
        return int(covariance[self.covariance_type] + K * D + K - 1)

    def bic(self, X, sample_weight=None):
        """Bayesian information criterion on X (lower is better), a float."""
        total, weight = self._log_likelihood(X, sample_weight)
        return -2 * total + self._n_parameters() * np.log(weight)

    def aic(self, X, sample_weight=None):
        """Akaike information criterion on X (lower is better), a float."""
        total, _ = self._log_likelihood(X, sample_weight)
        return -2 * total + 2 * self._n_parameters()

    def sample(self, n_samples=1):
        """Random samples from the fitted mixture, as ``cuem.GaussianMixture.sample`` (NumPy)."""
        return _LocalGaussianMixture.sample(self, n_samples)


# ---- hidden Markov models ---------------------------------------------------------------


def _sequence_chunks(offsets, chunks):
    """Row chunk sizes of whole sequences: each of X's chunk boundaries moved to the first
    sequence boundary at or after it (so the chunks depend on the lengths and X's chunking
    alone)."""
    n = int(offsets[-1])
    inner = np.cumsum(chunks)[:-1]
    cuts = np.unique(offsets[np.searchsorted(offsets, inner, side="left")])
    cuts = cuts[(cuts > 0) & (cuts < n)]
    return tuple(int(v) for v in np.diff(np.concatenate([[0], cuts, [n]])))


def _chunk_lengths(offsets, first, end):
    lo, hi = np.searchsorted(offsets, [first, end])
    return [int(v) for v in np.diff(offsets[lo : hi + 1])]


def _block_hmm_statistics(X, sample_weight, rows, offsets, statistics, arrays, where):
    """Baum-Welch's E-step statistics of one chunk of whole sequences (a float64 vector):
    `statistics` names the binding (hmm_statistics, gmm_hmm_statistics), `arrays` the model."""
    first, end = rows
    try:
        return getattr(_cuem, statistics)(_as_cuem_rows(X), _chunk_lengths(offsets, first, end), *arrays, **where)
    except ValueError as error:
        raise type(error)(f"rows {first}-{end - 1} of X (the row below counts from {first}): {error}") from None


def _block_hmm_decode(X, lengths, rows, algorithm, evaluate, arrays, where):
    """(log probability, states) of one chunk of whole sequences: Viterbi's, or 'map' as
    cuem.GaussianHMM.decode forms it (each frame's most probable state, and the sum of
    the largest posteriors, hmmlearn's); for 'score', (log p, None). `evaluate` names the
    binding (hmm_evaluate, gmm_hmm_evaluate)."""
    X = _as_cuem_rows(X)
    run = getattr(_cuem, evaluate)
    try:
        if algorithm == "score":
            return float(run("score", X, lengths, *arrays, **where)), None
        if algorithm == "viterbi":
            log_prob, states = run("viterbi", X, lengths, *arrays, **where)
            return float(log_prob), states.astype(np.int64)
        _, posteriors = run("posteriors", X, lengths, *arrays, **where)
        return float(np.max(posteriors, axis=1).sum()), np.argmax(posteriors, axis=1).astype(np.int64)
    except ValueError as error:
        raise type(error)(f"rows {rows[0]}-{rows[1] - 1} of X (the row below counts from {rows[0]}): {error}") from None


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _add_vectors(a, b):
    return a + b


def _frames_covariance(client, data):
    """The frames' covariance (N - 1 in the denominator): their sum about the first frame,
    then the scatter about the mean, both summed over the chunks in tree order."""
    origin = np.asarray(data.X[:1].compute(), dtype=np.float64)
    first = _chunk_sum(client, data, _block_partition, origin, "full", False)
    mean = origin + first["s1"] / first["nk"][:, None]
    second = _chunk_sum(client, data, _block_partition, mean, "full", True)
    n, s1 = second["nk"][0], second["s1"][0]
    D = mean.shape[1]
    return (second["s2"].reshape(D, D) - np.outer(s1, s1) / n) / (n - 1)


class _DaskBaumWelch:
    """What cuem.dask's HMMs share: Baum-Welch over chunks of whole sequences, and score,
    decode and predict on dask arrays. A subclass names its bindings (_STATISTICS,
    _EVALUATE) and provides _dask_start, _dask_m_step, _set_fitted, _empty_states and
    _min_frames; its local base class provides the rest (_model_arrays, _lengths, ...)."""

    _LOCAL = "cuem.GaussianHMM"

    def _refuse_local_only(self):
        for name, local in (("acceleration", "none"), ("missing", "error"), ("incremental_blocks", 1)):
            if getattr(self, name, local) != local:
                raise ValueError(
                    f"cuem.dask.{type(self).__name__} runs batch Baum-Welch on complete frames: {name}="
                    f"{getattr(self, name)!r} is not distributed (use {self._LOCAL})"
                )

    def fit(self, X, lengths=None):
        """Baum-Welch over the dask array X of frames, sequences as `lengths` (None: one)."""
        self._check_parameters()
        self._refuse_local_only()
        X = _as_dask_rows(X, local=self._LOCAL)
        N, D = X.shape
        if N < 1 or D < 1:
            raise ValueError(f"X must be a non-empty 2-d array (n_samples, n_features), got shape {X.shape}")
        lengths = self._lengths(lengths, N)
        if "m" in self.init_params and N < self._min_frames():
            raise ValueError(f"{self._min_frames()} means are more than the {N} frames that k-means starts them from")
        if "c" in self.init_params and N < 2:
            raise ValueError("the covariance start needs at least 2 frames")
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        X = X.rechunk({0: _sequence_chunks(offsets, X.chunks[0]), 1: -1})
        client = _client()
        data = _DaskData(client, X, None)
        GaussianMixture._check_finite(data)
        arrays = self._dask_start(client, data, D, np.random.default_rng(_seed_from(self.random_state)))
        getattr(_cuem, self._EVALUATE)("score", np.zeros((1, D)), [1], *arrays)  # a start the library takes
        where = {"device": self.device, "precision": self.precision}
        self.monitor_ = _ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        iterations = 0
        bound = -np.inf
        empty = set()
        on_workers = _to_workers(client, offsets)
        for iteration in range(int(self.n_iter)):
            model_on_workers = _to_workers(client, arrays)
            parts = [
                client.submit(_block_hmm_statistics, block, None, rows, on_workers, self._STATISTICS,
                              model_on_workers, where, pure=False)
                for block, rows in zip(data.blocks, data.rows)
            ]
            stats = _tree_sum(client, parts, _add_vectors)
            empty |= self._empty_states(stats)
            previous, bound = bound, float(stats[-2]) / float(stats[-1])  # per frame, as the local fit's
            arrays = self._dask_m_step(stats, arrays)
            iterations += 1
            self.monitor_.report(bound * N)
            change = bound - previous
            if self.verbose:
                print(f"{iteration + 1:>10d} {bound * N:>16.8f} {change * N:>+16.8f}")
            # The library's test (src/engine/batch_driver.hpp): |change| below tol per frame,
            # never on the first iteration.
            if iteration > 0 and abs(change) < float(self.tol) / N:
                break
        self._online = None
        self.n_features = D
        self._set_fitted(arrays)
        self.device_ = self.device
        self.n_estep_passes_ = iterations
        self.convergence_rate_ = np.nan
        if empty:  # as the local fit says it (src/core/hmm_api.cpp)
            states = ", ".join(str(k) for k in sorted(empty))
            warnings.warn(
                f"state{'s' if len(empty) > 1 else ''} {states} (0-based) received no weight in some iteration and "
                "kept their parameters there, as an empty mixture component does; use fewer states or another start",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _empty_states(self, stats):
        return set()

    def _frames_covariance_start(self, client, data, D):
        return _frames_covariance(client, data) + float(self.min_covar) * np.eye(D)

    # ---- using the fitted model on dask arrays ---------------------------------------

    @staticmethod
    def _is_dask(X):
        return isinstance(X, da.Array) or hasattr(X, "to_dask_array")

    def _on_chunks(self, X, lengths, algorithm):
        """Each chunk of whole sequences of the dask array X evaluated on the cluster: the
        chunks' (log probability, states) as futures, and their row counts."""
        self._check_fitted()
        X = _as_dask_rows(X, local=self._LOCAL)
        if X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is fitted with "
                             f"{self.n_features}")
        lengths = self._lengths(lengths, X.shape[0])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        X = X.rechunk({0: _sequence_chunks(offsets, X.chunks[0]), 1: -1})
        client = _client()
        arrays = _to_workers(client, self._model_arrays())
        where = {"device": self.device, "precision": self.precision}
        bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        parts, sizes = [], []
        for i, block in enumerate(X.to_delayed().ravel()):
            first, end = int(bounds[i]), int(bounds[i + 1])
            task = dask.delayed(_block_hmm_decode)(block, _chunk_lengths(offsets, first, end), (first, end),
                                                   algorithm, self._EVALUATE, arrays, where)
            parts.append(client.compute(task))
            sizes.append(end - first)
        return parts, sizes

    @staticmethod
    def _log_probability(client, parts):
        total = 0.0  # in chunk order
        for value in client.gather([client.submit(_first, p) for p in parts]):
            total += value
        return total

    def score(self, X, lengths=None):
        """log p(X) over all sequences; X a NumPy array (as the local class) or a dask array
        (each chunk of whole sequences scored on the cluster, summed in chunk order)."""
        if not self._is_dask(X):
            return super().score(X, lengths)
        parts, _ = self._on_chunks(X, lengths, "score")
        return self._log_probability(_client(), parts)

    def decode(self, X, lengths=None, algorithm=None):
        """As the local class's decode; for a dask X, (log probability, states as a dask
        array chunked as X's whole-sequence chunks), each chunk decoded once on the cluster."""
        algorithm = algorithm or self.algorithm
        if algorithm not in ("viterbi", "map"):
            raise ValueError(f"Unknown decoder {algorithm!r}")
        if not self._is_dask(X):
            return super().decode(X, lengths, algorithm)
        parts, sizes = self._on_chunks(X, lengths, algorithm)
        states = da.concatenate([
            da.from_delayed(dask.delayed(_second)(p), shape=(n,), dtype=np.int64) for p, n in zip(parts, sizes)
        ])
        return self._log_probability(_client(), parts), states

    def predict(self, X, lengths=None):
        """The states by the estimator's algorithm (as the local class); a dask array for a
        dask X."""
        if not self._is_dask(X):
            return super().predict(X, lengths)
        return self.decode(X, lengths)[1]


class GaussianHMM(_DaskBaumWelch, _LocalGaussianHMM):
    """hmmlearn's GaussianHMM fitted by Baum-Welch over a dask array of frames on a
    dask.distributed cluster: ``cuem.GaussianHMM``'s parameters and fitted attributes
    (startprob_, transmat_, means_, covars_, monitor_), the statistics of each chunk of
    whole sequences computed where it lives.

    fit(X, lengths) takes X as a dask array (or a dask DataFrame) of frames and lengths as
    for hmmlearn (the whole sequence list, on the client). X is rechunked so that every
    chunk holds whole sequences (each chunk boundary moved to the next sequence boundary),
    persisted, and every iteration each chunk's statistics (``_cuem.hmm_statistics``: the
    chain, the posteriors and the gamma-weighted emission sums, on the worker, GIL
    released) are summed by the same binary tree over the chunks as the mixture's; the
    client runs hmmlearn's M-step with the priors (``_cuem.hmm_m_step``) and the local
    class's convergence test (the change of the log-likelihood below tol; monitor_ records
    the history). The sums depend on the chunking, never on the workers, so from the same
    start (init_params='' with the arrays set) the model is ``cuem.GaussianHMM``'s on the
    computed array to rounding (one chunk: the same bits). The start for the letters of
    init_params: 's' and 't' uniform, 'm' k-means (k-means++ on a sample of frames drawn by
    global index, then Lloyd's steps over the chunks, as ``cuem.dask.GaussianMixture``'s,
    so not the local class's k-means), 'c' the frames' covariance plus min_covar, in two
    passes over the chunks.

    Batch Baum-Welch on complete frames: acceleration, incremental_blocks and
    missing='marginalize' are refused; segment_frames is the workers' own choice and
    n_threads their default. score, predict and decode take a dask X (score a float;
    predict and decode's states a dask array, each chunk decoded once); the other methods
    are ``cuem.GaussianHMM``'s, which bring a dask X to the client whole.
    """

    _STATISTICS, _EVALUATE = "hmm_statistics", "hmm_evaluate"

    def _min_frames(self):
        return int(self.n_components)

    def _dask_start(self, client, data, D, rng):
        """The start (cuem's layouts) for the letters of init_params, the set arrays for the
        others; also the priors for the M-steps."""
        self._priors, given = self._start_arrays(D, self.init_params)
        K, cov = int(self.n_components), self.covariance_type
        startprob = given.get("startprob", np.full(K, 1.0 / K))
        transmat = given.get("transmat", np.full((K, K), 1.0 / K))
        means = given["means"] if "means" in given else _kmeans_centres(client, data, K, rng, lloyd=True)
        if "covars" in given:
            covars = given["covars"]
        else:
            cv = self._frames_covariance_start(client, data, D)
            covars = {"full": np.tile(cv, (K, 1, 1)), "tied": cv, "diag": np.tile(np.diag(cv), (K, 1)),
                      "spherical": np.full(K, cv.mean())}[cov]
        return (cov, *(np.ascontiguousarray(a, dtype=np.float64) for a in (startprob, transmat, means, covars)))

    def _dask_m_step(self, stats, arrays):
        m = _cuem.hmm_m_step(stats, *arrays, self.params, *self._priors)
        return (self.covariance_type, m["startprob"], m["transmat"], m["means"], m["covars"])

    def _set_fitted(self, arrays):
        _, self.startprob_, self.transmat_, self.means_, self._covars_ = arrays

    def _empty_states(self, stats):
        return {int(k) for k in np.flatnonzero(~(stats[: int(self.n_components)] > 0))}


class GMMHMM(_DaskBaumWelch, _LocalGMMHMM):
    """hmmlearn's GMMHMM fitted over a dask array of frames, as cuem.dask.GaussianHMM fits
    the Gaussian one: ``cuem.GMMHMM``'s parameters and fitted attributes (startprob_,
    transmat_, weights_, means_, covars_, monitor_), each chunk's statistics by
    ``_cuem.gmm_hmm_statistics``, the M-step by ``_cuem.gmm_hmm_m_step``. The start for
    init_params' letters: 's', 't', 'w' uniform, 'm' the distributed k-means with
    n_components x n_mix centres (state k takes centres k n_mix .. (k + 1) n_mix - 1, as the
    local class), 'c' the frames' covariance plus min_covar for every component.
    """

    _STATISTICS, _EVALUATE = "gmm_hmm_statistics", "gmm_hmm_evaluate"
    _LOCAL = "cuem.GMMHMM"

    def _min_frames(self):
        return int(self.n_components) * int(self.n_mix)

    def _dask_start(self, client, data, D, rng):
        K, M, cov = int(self.n_components), int(self.n_mix), self.covariance_type
        given = self._given_arrays()
        self._priors = self._prior_arrays(D)
        startprob = given.get("startprob", np.full(K, 1.0 / K))
        transmat = given.get("transmat", np.full((K, K), 1.0 / K))
        weights = given.get("weights", np.full((K, M), 1.0 / M))
        means = given["means"] if "means" in given else _kmeans_centres(
            client, data, K * M, rng, lloyd=True).reshape(K, M, D)
        if "covars" in given:
            covars = given["covars"]
        else:
            cv = self._frames_covariance_start(client, data, D)
            covars = {"full": np.tile(cv, (K, M, 1, 1)), "tied": np.tile(cv, (K, 1, 1)),
                      "diag": np.tile(np.diag(cv), (K, M, 1)), "spherical": np.full((K, M), cv.mean())}[cov]
        return (cov, *(np.ascontiguousarray(a, dtype=np.float64)
                       for a in (startprob, transmat, weights, means, covars)))

    def _dask_m_step(self, stats, arrays):
        m = _cuem.gmm_hmm_m_step(stats, *arrays, self.params, *self._priors)
        return (self.covariance_type, m["startprob"], m["transmat"], m["weights"], m["means"], m["covars"])

    def _set_fitted(self, arrays):
        _, self.startprob_, self.transmat_, self.weights_, self.means_, self._covars_ = arrays
