"""cuem: Gaussian mixture models fitted with Expectation-Maximization.

``cuem.GaussianMixture`` is a drop-in for ``sklearn.mixture.GaussianMixture`` (the same
parameters, attributes and methods, plus ``device`` and ``precision``), computed by the
cuem C++ library: a float64 CPU reference that agrees with scikit-learn to rounding, and
a CUDA backend where the library was built with one.

    >>> import numpy as np, cuem
    >>> X = np.random.default_rng(0).normal(size=(1000, 2))
    >>> gm = cuem.GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> gm.predict(X[:3]).shape
    (3,)

Missing data: ``GaussianMixture(missing='marginalize')`` takes NaN entries as missing at
random (fit, predict and score by each row's observed entries; ``impute`` fills them in);
the default ``missing='error'`` refuses NaN as scikit-learn does.

On a dask.distributed cluster, ``cuem.dask.GaussianMixture`` fits a dask array where its
chunks live (``import cuem.dask``; dask is imported only then).

Errors: bad input is ``ValueError`` (``cuem.DataError`` for data that cannot be fitted,
``cuem.NumericalError`` for a covariance that is not positive definite even after
``reg_covar``; both subclass ``ValueError``); an absent or failing device is
``cuem.DeviceError``, a ``RuntimeError``. Ctrl-C stops a fit with ``KeyboardInterrupt``.
"""

from ._cuem import DataError, DeviceError, NumericalError
from .bayesian import BayesianGaussianMixture
from .gmmhmm import GMMHMM
from .hmm import GaussianHMM
from ._cuem import __version__ as _library_version
from ._cuem import built_with_cuda as _built_with_cuda
from ._cuem import devices as _devices
from .mixture import (
    ConvergenceWarning,
    GaussianMixture,
    InvalidParameterError,
    NotFittedError,
    PlacedData,
)

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "DeviceError",
    "GMMHMM",
    "GaussianHMM",
    "GaussianMixture",
    "InvalidParameterError",
    "NotFittedError",
    "NumericalError",
    "PlacedData",
    "built_with_cuda",
    "devices",
    "library_version",
]


def __getattr__(name):
    # cuem.dask (the Dask estimator) imports dask, so it is loaded only when asked for:
    # `import cuem.dask`, or the attribute cuem.dask.
    if name == "dask":
        import importlib

        return importlib.import_module(".dask", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def built_with_cuda():
    """True when the compiled library has the CUDA backend (nvcc was present at build)."""
    return bool(_built_with_cuda)


def devices():
    """The CUDA devices cuem can use, as dicts (index, name, compute_capability,
    total_memory and free_memory in bytes): what ``device='cuda:N'`` may name. Empty
    without a GPU, a driver or a CUDA build; a ``RuntimeWarning`` then says why.
    """
    found, reason = _devices()
    if not found:
        import warnings

        warnings.warn(f"no CUDA device: {reason}", RuntimeWarning, stacklevel=2)
    return list(found)


def library_version():
    """The version of the cuem C++ library this package was built against."""
    return _library_version
