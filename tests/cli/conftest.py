"""Fixtures for the end-to-end tests of the `cuem` command line.

The binary comes from `--cuem-bin=PATH`, else the environment variable CUEM_BIN, else
build/cuem in the repository. Every test runs cuem in its own tmp_path, so the files a
run leaves behind (or must not leave behind) are easy to list.
"""
import json
import os
import pathlib
import signal
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
OK = 0


def pytest_addoption(parser):
    parser.addoption("--cuem-bin", action="store", default=None,
                     help="path of the cuem command-line binary (default: $CUEM_BIN, else build/cuem)")


@pytest.fixture(scope="session")
def cuem_bin(request):
    given = request.config.getoption("--cuem-bin") or os.environ.get("CUEM_BIN")
    if given:
        path = pathlib.Path(given).resolve()
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"--cuem-bin / CUEM_BIN names {given}, which is not an executable file")
        return path
    path = REPO / "build" / "cuem"
    if not path.is_file():
        pytest.skip("no cuem binary: pass --cuem-bin=PATH or set CUEM_BIN")
    return path


def driver_device_count():
    """(CUDA devices, why none) as the NVIDIA driver itself reports them, through libcuda and
    not through cuem, so that which device test applies is decided without the code under
    test. `why` is None, 'no driver' or 'no device'."""
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0, "no driver"
    count = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "no device"
    return count.value, None


def _child_env():
    env = dict(os.environ)
    # Small data: a couple of threads is plenty and keeps parallel ctest runs fair.
    env.setdefault("OMP_NUM_THREADS", "2")
    env["LC_ALL"] = "C"
    return env


class Cuem:
    """Runs the binary in a folder; `expect` checks the exit code (None: don't)."""

    def __init__(self, binary, cwd):
        self.binary = str(binary)
        self.cwd = pathlib.Path(cwd)

    def __call__(self, *args, expect=OK, timeout=120, cwd=None, stdin=None):
        """`stdin`: bytes for standard input (otherwise it is empty, as from /dev/null)."""
        argv = [self.binary] + [str(a) for a in args]
        proc = subprocess.run(argv, cwd=str(cwd or self.cwd), env=_child_env(), capture_output=True,
                              input=b"" if stdin is None else stdin, timeout=timeout)
        proc.stdout = proc.stdout.decode("utf-8", errors="replace")
        proc.stderr = proc.stderr.decode("utf-8", errors="replace")
        if expect is not None and proc.returncode != expect:
            raise AssertionError(
                f"`cuem {' '.join(argv[1:])}` exited {proc.returncode}, expected {expect}\n"
                f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
        return proc

    def json(self, *args, **kw):
        """Runs with --json -q and returns the parsed stdout."""
        proc = self("--json", "-q", *args, **kw)
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"`cuem {' '.join(map(str, args))}` printed no valid JSON ({e}):\n{proc.stdout}")

    def popen(self, *args, cwd=None):
        # As a command typed at a terminal: SIGINT at its default even where this test
        # runs as a background job, whose commands inherit it ignored (and cuem, as Unix
        # programs should, leaves an ignored SIGINT ignored).
        return subprocess.Popen([self.binary] + [str(a) for a in args], cwd=str(cwd or self.cwd),
                                env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.fixture
def cuem(cuem_bin, tmp_path):
    """cuem, run in this test's tmp_path."""
    return Cuem(cuem_bin, tmp_path)


@pytest.fixture(scope="session")
def make_cuem(cuem_bin):
    """make_cuem(folder): cuem, run in `folder` (for module- and session-scoped data)."""
    return lambda folder: Cuem(cuem_bin, folder)


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="session")
def blobs(cuem_bin, shared_dir):
    """A generated 3-component, 3-feature data set with its labels, true model and a fitted
    model (full covariance, seed 0). Read-only: copy before modifying."""
    c = Cuem(cuem_bin, shared_dir)
    c("-q", "generate", "-n", 600, "-d", 3, "-k", 3, "--separation", 6, "--seed", 11, "-o", "blobs.npy",
      "--labels", "blobs_labels.npy", "--model", "blobs_true.json")
    c("-q", "fit", "blobs.npy", "-k", 3, "--seed", 0, "-o", "blobs_fit.json")
    d = shared_dir
    return {
        "X": d / "blobs.npy",
        "labels": d / "blobs_labels.npy",
        "true_model": d / "blobs_true.json",
        "model": d / "blobs_fit.json",
        "n": 600,
        "d": 3,
        "k": 3,
    }


def listing(folder):
    """Every file and folder below `folder`, as sorted relative paths."""
    folder = pathlib.Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_no_new_files(folder, before):
    """No file appeared in `folder` since `before` = listing(folder), and no temporary
    file (*.tmp-*) is anywhere below it."""
    after = listing(folder)
    leftovers = [p for p in after if ".tmp-" in p]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    new = sorted(set(after) - set(before))
    assert not new, f"a failing run left output files behind: {new}"


def read_model_json(path):
    with open(path) as f:
        return json.load(f)


def sklearn_model(model):
    """A scikit-learn GaussianMixture with the fitted attributes of a cuem model JSON."""
    from sklearn.mixture import GaussianMixture

    K = model["n_components"]
    gm = GaussianMixture(n_components=K, covariance_type=model["covariance_type"])
    gm.weights_ = np.asarray(model["weights"], dtype=np.float64)
    gm.means_ = np.asarray(model["means"], dtype=np.float64)
    gm.covariances_ = np.asarray(model["covariances"], dtype=np.float64)
    pc = np.asarray(model["precisions_cholesky"], dtype=np.float64)
    gm.precisions_cholesky_ = pc
    t = model["covariance_type"]
    if t == "full":
        gm.precisions_ = np.einsum("kij,klj->kil", pc, pc)
    elif t == "tied":
        gm.precisions_ = pc @ pc.T
    else:
        gm.precisions_ = pc ** 2
    gm.n_features_in_ = model["n_features"]
    gm.converged_ = True
    gm.n_iter_ = 1
    gm.lower_bound_ = 0.0
    return gm


@pytest.fixture
def helpers():
    """Plain helper functions, for the test modules (conftest is not imported directly)."""
    class H:
        pass
    h = H()
    h.listing = listing
    h.assert_no_new_files = assert_no_new_files
    h.read_model_json = read_model_json
    h.sklearn_model = sklearn_model
    h.driver_device_count = driver_device_count
    return h
