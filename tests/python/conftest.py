"""pytest configuration of the Python package tests (run by scripts/test_python.sh).

Environment set before anything loads OpenMP or SciPy:
- OMP_WAIT_POLICY=PASSIVE, as ctest sets for the C++ tests: OpenMP threads that spin at
  barriers starve each other, and the test's own Python threads, on a small shared
  machine, which makes timings (and the GIL test) erratic.
- SCIPY_ARRAY_API=1, so that scikit-learn's array-API estimator check runs (on NumPy)
  instead of skipping itself.
"""

import os
import sys

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("SCIPY_ARRAY_API", "1")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# scripts/compare_sklearn.py holds the datasets, initial parameters and comparison rules
# of the C++ comparison; the Python package is held to the same ones.
sys.path.insert(0, os.path.join(REPO_ROOT, "scripts"))


@pytest.fixture(scope="module")
def client():
    """A dask.distributed LocalCluster of 2 worker processes of one thread, for a module's
    cuem.dask tests (skipped where dask is not installed)."""
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as c:
        yield c
