"""End-to-end tests of every `cuem` command on small data: generate, fit, predict, score,
sample, select, info; the data formats; the exit codes; atomic outputs and Ctrl-C.

Run: python -m pytest -q tests/cli --cuem-bin=build/cuem
"""
import json
import math
import os
import pathlib
import re
import shutil
import signal
import time
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
IRIS = REPO / "data" / "iris.csv"
# Exit codes documented in `cuem --help` and the README.
OK, USAGE, BAD_DATA, NUMERICAL, DEVICE, INTERRUPTED = 0, 2, 3, 4, 5, 130

COMMANDS = ["fit", "predict", "score", "sample", "select", "info", "generate"]
COVARIANCES = ["full", "tied", "diag", "spherical"]
INITS = ["kmeans", "k-means++", "kmeans++", "random", "random_from_data"]
FIT_KEYS = {"converged", "n_iter", "lower_bound", "bic", "aic"}


def cov_shape(cov, k, d):
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[cov]


def check_model(m, k, d, cov=None):
    assert m["format"] == "cuem-gaussian-mixture"
    assert isinstance(m["version"], int) and m["version"] >= 1
    assert m["n_components"] == k and m["n_features"] == d
    if cov is not None:
        assert m["covariance_type"] == cov
    cov = m["covariance_type"]
    w = np.asarray(m["weights"])
    assert w.shape == (k,) and np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    assert np.asarray(m["means"]).shape == (k, d)
    assert np.asarray(m["covariances"]).shape == cov_shape(cov, k, d)
    assert np.asarray(m["precisions_cholesky"]).shape == cov_shape(cov, k, d)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def full_covariances(m):
    """The K covariance matrices of a model JSON, whatever its covariance type (K x D x D)."""
    k, d, cov = m["n_components"], m["n_features"], m["covariance_type"]
    c = np.asarray(m["covariances"], dtype=np.float64)
    if cov == "full":
        return c
    if cov == "tied":
        return np.broadcast_to(c, (k, d, d)).copy()
    if cov == "diag":
        return np.stack([np.diag(row) for row in c])
    return np.stack([v * np.eye(d) for v in c])


def matching(ref_means, means):
    """The permutation p with means[p[j]] nearest ref_means[j], checked to be one-to-one."""
    dist = ((np.asarray(ref_means)[:, None, :] - np.asarray(means)[None, :, :]) ** 2).sum(axis=2)
    p = dist.argmin(axis=1)
    assert sorted(p.tolist()) == list(range(len(p))), f"components do not pair up: {dist}"
    return p


def read_bytes(path):
    return pathlib.Path(path).read_bytes()


# ---- --help, --version, info ---------------------------------------------------------------

@pytest.mark.parametrize("command", [None] + COMMANDS)
def test_help_exits_0_and_documents_exit_codes(cuem, command):
    args = ([command] if command else []) + ["--help"]
    out = cuem(*args).stdout
    text = " ".join(out.lower().split())
    assert "exit codes" in text
    for phrase in ["0 ok", "2 usage error", "3 bad input data", "4 numerical failure", "5 device error"]:
        assert phrase in text, f"--help of {command or 'cuem'} lacks '{phrase}'"
    if command:
        assert command in out


def test_version(cuem):
    out = cuem("--version").stdout.strip()
    assert re.fullmatch(r"cuem \d+\.\d+\.\d+\S*", out), out


def test_no_command_is_a_usage_error(cuem):
    cuem(expect=USAGE)
    cuem("frobnicate", expect=USAGE)


def test_info(cuem):
    out = cuem("info").stdout
    assert "cuem" in out and "CUDA" in out
    j = cuem.json("info")
    assert isinstance(j["version"], str) and j["version"]
    assert isinstance(j["cuda_built"], bool)
    assert isinstance(j["devices"], list)
    for dev in j["devices"]:
        assert {"index", "name", "compute_capability", "total_memory_bytes"} <= set(dev)
    # --json is accepted before and after the command name
    j2 = json.loads(cuem("info", "--json").stdout)
    assert j2["version"] == j["version"]
    assert j["cpu_kernels"].startswith(("x86-64", "one portable build"))
    assert j["compiler"].split()[0] in ("GCC", "Clang")
    if not j["devices"]:  # the reason reads as one a user can act on
        assert "cudaError" not in j["devices_note"], j["devices_note"]


# ---- generate --------------------------------------------------------------------------------

def test_generate_npy_labels_model(cuem, tmp_path):
    cuem("generate", "-n", 500, "-d", 3, "-k", 4, "--seed", 3, "-o", "g.npy", "--labels", "l.npy",
         "--model", "m.json")
    X = np.load(tmp_path / "g.npy")
    assert X.dtype == np.float64 and X.shape == (500, 3) and X.flags.c_contiguous
    assert np.all(np.isfinite(X))
    lab = np.load(tmp_path / "l.npy")
    assert lab.dtype == np.int64 and lab.shape == (500,)
    assert set(np.unique(lab)) == {0, 1, 2, 3}
    m = load_json(tmp_path / "m.json")
    check_model(m, 4, 3, "full")
    # The points of each label lie near that component's mean.
    means = np.asarray(m["means"])
    for k in range(4):
        assert np.linalg.norm(X[lab == k].mean(axis=0) - means[k]) < 1.0
    assert sorted(os.listdir(tmp_path)) == ["g.npy", "l.npy", "m.json"]


@pytest.mark.parametrize("cov", COVARIANCES)
def test_generate_covariance_types(cuem, tmp_path, cov):
    cuem("-q", "generate", "-n", 50, "-d", 2, "-k", 2, "--covariance", cov, "-o", "g.npy", "--model", "m.json")
    check_model(load_json(tmp_path / "m.json"), 2, 2, cov)


def test_generate_csv_equals_npy(cuem, tmp_path):
    cuem("-q", "generate", "-n", 200, "-d", 3, "--seed", 9, "-o", "g.csv")
    cuem("-q", "generate", "-n", 200, "-d", 3, "--seed", 9, "-o", "g.npy")
    lines = (tmp_path / "g.csv").read_text().splitlines()
    assert lines[0] == "x0,x1,x2"
    assert len(lines) == 201
    Xc = np.loadtxt(tmp_path / "g.csv", delimiter=",", skiprows=1, ndmin=2)
    Xn = np.load(tmp_path / "g.npy")
    assert np.array_equal(Xc, Xn)  # %.17g text round-trips exactly


def test_generate_is_deterministic_per_seed(cuem, tmp_path):
    for name in ["a", "b"]:
        cuem("-q", "generate", "-n", 300, "-d", 4, "-k", 3, "--seed", 42, "-o", f"{name}.npy",
             "--labels", f"{name}_l.npy", "--model", f"{name}.json")
    cuem("-q", "generate", "-n", 300, "-d", 4, "-k", 3, "--seed", 42, "-o", "a.csv")
    cuem("-q", "generate", "-n", 300, "-d", 4, "-k", 3, "--seed", 42, "-o", "b.csv")
    for a, b in [("a.npy", "b.npy"), ("a_l.npy", "b_l.npy"), ("a.json", "b.json"), ("a.csv", "b.csv")]:
        assert read_bytes(tmp_path / a) == read_bytes(tmp_path / b), a
    cuem("-q", "generate", "-n", 300, "-d", 4, "-k", 3, "--seed", 43, "-o", "c.npy")
    assert read_bytes(tmp_path / "a.npy") != read_bytes(tmp_path / "c.npy")


def test_generate_json(cuem):
    j = cuem.json("generate", "-n", 10, "-d", 2, "-k", 2, "-o", "g.npy")
    assert j["n_samples"] == 10 and j["n_features"] == 2 and j["n_components"] == 2


# ---- fit -------------------------------------------------------------------------------------

def test_fit_iris(cuem, tmp_path):
    j = cuem.json("fit", IRIS, "-k", 3, "--seed", 0, "-o", "m.json")
    assert FIT_KEYS <= set(j)
    assert j["converged"] is True and isinstance(j["n_iter"], int) and j["n_iter"] >= 1
    assert j["n_samples"] == 150 and j["n_features"] == 4
    assert j["n_decreases"] == 0
    assert j["model_path"] == "m.json" and "model" not in j
    # scikit-learn's k-means init reaches the same partition of iris as cuem's, so the two
    # EM runs then agree to rounding: the same iterations and lower bound.
    from sklearn.mixture import GaussianMixture
    X = np.loadtxt(IRIS, delimiter=",", skiprows=1)
    ref = GaussianMixture(3, random_state=0).fit(X)
    assert j["lower_bound"] == pytest.approx(ref.lower_bound_, rel=1e-9, abs=0)
    assert j["n_iter"] == ref.n_iter_
    m = load_json(tmp_path / "m.json")
    p = matching(ref.means_, m["means"])
    np.testing.assert_allclose(np.asarray(m["weights"])[p], ref.weights_, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(m["means"])[p], ref.means_, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(m["covariances"])[p], ref.covariances_, rtol=1e-7, atol=1e-12)
    check_model(m, 3, 4, "full")
    assert m["fit"]["lower_bound"] == j["lower_bound"]  # exactly: the same double printed twice
    assert m["fit"]["n_iter"] == j["n_iter"] and m["fit"]["n_samples"] == 150
    # BIC and AIC of the fit are those `score` reports for the same model and data.
    s = cuem.json("score", "m.json", IRIS)
    assert s["bic"] == j["bic"] and s["aic"] == j["aic"]
    p = 3 * 4 * 5 / 2 * 1 + 3 * 4 + 2  # full: K*D(D+1)/2 + K*D + K-1
    assert j["bic"] == pytest.approx(-2 * s["mean_log_likelihood"] * 150 + p * math.log(150), rel=1e-12)
    assert j["aic"] == pytest.approx(-2 * s["mean_log_likelihood"] * 150 + 2 * p, rel=1e-12)


def test_fit_prints_model_and_progress(cuem, blobs):
    proc = cuem("fit", blobs["X"], "-k", 3, "--seed", 0)
    assert "converged" in proc.stdout
    assert "Gaussian mixture: 3 components, full covariance, 3 features" in proc.stdout
    assert "BIC" in proc.stdout and "AIC" in proc.stdout
    assert re.search(r"iter\s+1\s+mean log-likelihood", proc.stderr), proc.stderr
    quiet = cuem("-q", "fit", blobs["X"], "-k", 3, "--seed", 0)
    assert quiet.stderr == ""
    assert quiet.stdout == proc.stdout


def test_fit_trace_and_report(cuem, tmp_path, blobs):
    j = cuem.json("fit", blobs["X"], "-k", 3, "--seed", 1, "--tol", 1e-8, "-o", "m.json", "--trace", "trace.csv",
                  "--report", "report.svg")
    lines = (tmp_path / "trace.csv").read_text().splitlines()
    assert lines[0] == "init,iteration,mean_log_likelihood,seconds,rate"
    rows = [r.split(",") for r in lines[1:]]
    # The rate column: empty until enough EM steps were seen, then the running estimate,
    # whose last value is the fit's convergence_rate.
    rates = [float(r[4]) if r[4] else None for r in rows]
    assert rates[0] is None and rates[1] is None
    if j["convergence_rate"] is None:
        assert rates[-1] is None
    else:
        assert rates[-1] == pytest.approx(j["convergence_rate"], rel=1e-5)
        first = next(i for i, r in enumerate(rates) if r is not None)
        assert all(r is not None and 0 < r for r in rates[first:])
    assert len(rows) == j["n_iter"]
    assert [int(r[0]) for r in rows] == [0] * len(rows)
    assert [int(r[1]) for r in rows] == list(range(1, len(rows) + 1))
    ll = [float(r[2]) for r in rows]
    assert all(b >= a - 1e-12 for a, b in zip(ll, ll[1:])), "EM log-likelihood must not fall"
    assert ll[-1] == j["lower_bound"]
    assert all(float(r[3]) >= 0 for r in rows)
    root = ET.parse(tmp_path / "report.svg").getroot()
    assert root.tag.endswith("svg"), root.tag
    out = cuem("-q", "fit", blobs["X"], "-k", 3, "-o", "m2.json", "--report", "r2.svg", "--report-axes", "pca").stdout
    assert "report written to r2.svg" in out
    assert ET.parse(tmp_path / "r2.svg").getroot().tag.endswith("svg")


def test_fit_report_one_feature(cuem, tmp_path):
    np.save(tmp_path / "x.npy", np.concatenate([np.linspace(-3, -1, 40), np.linspace(2, 5, 40)]))
    cuem("-q", "fit", "x.npy", "-k", 2, "-o", "m.json", "--report", "r.svg")
    assert ET.parse(tmp_path / "r.svg").getroot().tag.endswith("svg")


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("cov", COVARIANCES)
def test_fit_covariance_and_init(cuem, tmp_path, blobs, helpers, cov, init):
    # Converged tightly, so that the fitted parameters are a fixed point of EM to rounding.
    # (Seed 3: with generate's row order, seed 2's random_from_data start falls where two
    # components share a blob: a poor optimum approached so slowly that tol 1e-12 is no fixed point.)
    j = cuem.json("fit", blobs["X"], "-k", 3, "--covariance", cov, "--init", init, "--seed", 3,
                  "--tol", 1e-12, "--max-iter", 2000, "-o", "m.json")
    assert FIT_KEYS <= set(j)
    assert j["converged"] is True and j["n_decreases"] == 0
    m = load_json(tmp_path / "m.json")
    check_model(m, 3, 3, cov)
    X = np.load(blobs["X"])
    gm = helpers.sklearn_model(m)
    # The lower bound is the data's mean log-likelihood under the fitted model (scikit-learn's score).
    assert j["lower_bound"] == pytest.approx(gm.score(X), rel=1e-12, abs=0)
    # One EM step by scikit-learn from the fitted parameters gives them back: a wrong E- or
    # M-step in cuem converges elsewhere.
    from sklearn.mixture import GaussianMixture
    step = GaussianMixture(3, covariance_type=cov, max_iter=1, tol=0, weights_init=gm.weights_, means_init=gm.means_,
                           precisions_init=gm.precisions_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after the single step
        step.fit(X)
    np.testing.assert_allclose(step.weights_, gm.weights_, rtol=1e-9)
    np.testing.assert_allclose(step.means_, gm.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(step.covariances_, gm.covariances_, rtol=1e-9, atol=1e-12)
    # The saved model predicts as scikit-learn does with its parameters, by both paths
    # (labels alone; labels as the argmax of the probabilities written with them).
    cuem("-q", "predict", "m.json", blobs["X"], "-o", "l.npy")
    cuem("-q", "predict", "m.json", blobs["X"], "-o", "lp.npy", "--proba", "p.npy")
    labels = np.load(tmp_path / "l.npy")
    np.testing.assert_array_equal(labels, gm.predict(X))
    np.testing.assert_array_equal(np.load(tmp_path / "lp.npy"), labels)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), gm.predict_proba(X), rtol=0, atol=1e-12)
    # Well-separated blobs: every init finds the true components.
    truth = np.load(blobs["labels"])
    conf = np.zeros((3, 3), int)
    np.add.at(conf, (truth, labels), 1)
    assert conf.max(axis=1).sum() / blobs["n"] > 0.97, conf


def test_fit_n_init(cuem, tmp_path, blobs):
    j = cuem.json("fit", blobs["X"], "-k", 3, "--init", "random", "--n-init", 4, "--seed", 5,
                  "--trace", "t.csv")
    assert 0 <= j["best_init"] < 4
    rows = [r.split(",") for r in (tmp_path / "t.csv").read_text().splitlines()[1:]]
    inits = sorted({int(r[0]) for r in rows})
    assert inits == [0, 1, 2, 3]
    final = {}
    for r in rows:
        final[int(r[0])] = float(r[2])
    assert sum(1 for r in rows if int(r[0]) == j["best_init"]) == j["n_iter"]
    assert j["lower_bound"] == final[j["best_init"]]
    assert j["lower_bound"] == max(final.values()), "the best lower bound must win"


def test_fit_not_converged_warns_and_exits_0(cuem, tmp_path, blobs):
    proc = cuem("--json", "fit", blobs["X"], "-k", 3, "--max-iter", 2, "--tol", 0, "-o", "m.json")
    j = json.loads(proc.stdout)
    assert j["converged"] is False and j["n_iter"] == 2
    assert "did not converge" in proc.stderr
    assert load_json(tmp_path / "m.json")["fit"]["converged"] is False
    assert "NOT converged" in cuem("-q", "fit", blobs["X"], "-k", 3, "--max-iter", 2, "--tol", 0).stdout


def test_fit_is_deterministic_and_thread_independent(cuem, tmp_path, blobs):
    cuem("-q", "fit", blobs["X"], "-k", 3, "--seed", 7, "--threads", 1, "-o", "a.json")
    cuem("-q", "fit", blobs["X"], "-k", 3, "--seed", 7, "--threads", 2, "-o", "b.json")
    cuem("-q", "fit", blobs["X"], "-k", 3, "--seed", 7, "--threads", 3, "-o", "c.json")
    a = read_bytes(tmp_path / "a.json")
    assert a == read_bytes(tmp_path / "b.json") == read_bytes(tmp_path / "c.json")


# ---- predict -----------------------------------------------------------------------------

def test_predict(cuem, tmp_path, blobs):
    out = cuem("predict", blobs["model"], blobs["X"], "-o", "labels.npy", "--proba", "proba.npy").stdout
    assert "600 points labelled" in out
    lab = np.load(tmp_path / "labels.npy")
    assert lab.dtype == np.int64 and lab.shape == (blobs["n"],)
    P = np.load(tmp_path / "proba.npy")
    assert P.dtype == np.float64 and P.shape == (blobs["n"], 3)
    assert np.all(P >= 0) and np.all(P <= 1)
    assert np.allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.array_equal(lab, P.argmax(axis=1))
    # Without -o the labels go to stdout, one a line.
    printed = cuem("-q", "predict", blobs["model"], blobs["X"]).stdout.split()
    assert np.array_equal(np.array([int(s) for s in printed]), lab)
    # --json gives the counts per component.
    j = cuem.json("predict", blobs["model"], blobs["X"], "-o", "l2.npy")
    assert j["n_samples"] == blobs["n"] and j["counts"] == np.bincount(lab, minlength=3).tolist()
    # The fit recovers the true components (up to relabelling).
    truth = np.load(blobs["labels"])
    conf = np.zeros((3, 3), int)
    np.add.at(conf, (truth, lab), 1)
    agree = conf.max(axis=1).sum() / blobs["n"]
    assert agree > 0.97


# ---- score, checked against scikit-learn ----------------------------------------------------

@pytest.mark.parametrize("cov", COVARIANCES)
def test_score_matches_sklearn(cuem, tmp_path, blobs, helpers, cov):
    cuem("-q", "fit", blobs["X"], "-k", 3, "--covariance", cov, "--seed", 0, "-o", "m.json")
    s = cuem.json("score", "m.json", blobs["X"])
    assert s["n_samples"] == blobs["n"]
    m = load_json(tmp_path / "m.json")
    gm = helpers.sklearn_model(m)
    X = np.load(blobs["X"])
    assert s["mean_log_likelihood"] == pytest.approx(gm.score(X), rel=1e-10)
    assert s["bic"] == pytest.approx(gm.bic(X), rel=1e-10)
    assert s["aic"] == pytest.approx(gm.aic(X), rel=1e-10)
    cuem("-q", "predict", "m.json", blobs["X"], "-o", "l.npy", "--proba", "p.npy")
    assert np.array_equal(np.load(tmp_path / "l.npy"), gm.predict(X))
    assert np.allclose(np.load(tmp_path / "p.npy"), gm.predict_proba(X), rtol=0, atol=1e-10)
    text = cuem("score", "m.json", blobs["X"]).stdout
    assert "mean log-likelihood" in text and "BIC" in text and "AIC" in text


# ---- sample --------------------------------------------------------------------------------

def assert_samples_follow(S, L, w, mu, C):
    """Samples S with labels L follow the mixture (weights w, means mu, covariances C), within
    5 to 6 standard errors from the model: a wrong weight, mean, variance or a dropped
    off-diagonal moves a statistic by tens of them at n = 30000."""
    n, K = len(S), len(w)
    frac = np.bincount(L, minlength=K) / n
    assert np.all(np.abs(frac - w) < 5 * np.sqrt(w * (1 - w) / n)), (frac, w)
    for k in range(K):
        Sk = S[L == k]
        nk = len(Sk)
        sd = np.sqrt(np.diag(C[k]))
        assert np.all(np.abs(Sk.mean(axis=0) - mu[k]) < 5 * sd / np.sqrt(nk)), (k, Sk.mean(axis=0), mu[k])
        Ck = np.cov(Sk, rowvar=False)
        tol = 6 * np.sqrt((np.outer(np.diag(C[k]), np.diag(C[k])) + C[k] ** 2) / nk)
        assert np.all(np.abs(Ck - C[k]) < tol), (k, Ck, C[k])


def test_sample(cuem, tmp_path, blobs):
    model = load_json(blobs["true_model"])
    n = 30000
    j = cuem.json("sample", blobs["true_model"], "-n", n, "-o", "s.npy", "--labels", "sl.npy", "--seed", 4)
    assert j["n_samples"] == n and j["n_features"] == 3
    S = np.load(tmp_path / "s.npy")
    L = np.load(tmp_path / "sl.npy")
    assert S.dtype == np.float64 and S.shape == (n, 3)
    assert L.dtype == np.int64 and L.shape == (n,) and L.min() >= 0 and L.max() <= 2
    w = np.asarray(model["weights"])
    mu = np.asarray(model["means"])
    C = np.asarray(model["covariances"])
    assert_samples_follow(S, L, w, mu, C)
    overall = (w[:, None] * mu).sum(axis=0)
    assert np.allclose(S.mean(axis=0), overall, atol=0.2)


def test_sample_is_deterministic_per_seed(cuem, tmp_path, blobs):
    for name in ["a", "b"]:
        cuem("-q", "sample", blobs["model"], "-n", 500, "--seed", 8, "-o", f"{name}.npy", "--labels", f"{name}l.npy")
    assert read_bytes(tmp_path / "a.npy") == read_bytes(tmp_path / "b.npy")
    assert read_bytes(tmp_path / "al.npy") == read_bytes(tmp_path / "bl.npy")
    cuem("-q", "sample", blobs["model"], "-n", 500, "--seed", 9, "-o", "c.npy")
    assert read_bytes(tmp_path / "a.npy") != read_bytes(tmp_path / "c.npy")
    assert sorted(os.listdir(tmp_path)) == ["a.npy", "al.npy", "b.npy", "bl.npy", "c.npy"]


@pytest.mark.parametrize("cov", ["tied", "diag", "spherical"])
def test_sample_other_covariance_types(cuem, tmp_path, blobs, cov):
    cuem("-q", "fit", blobs["X"], "-k", 3, "--covariance", cov, "-o", "m.json")
    n = 30000
    cuem("-q", "sample", "m.json", "-n", n, "--seed", 6, "-o", "s.npy", "--labels", "l.npy")
    S = np.load(tmp_path / "s.npy")
    L = np.load(tmp_path / "l.npy")
    assert S.shape == (n, 3) and np.all(np.isfinite(S))
    m = load_json(tmp_path / "m.json")
    w = np.asarray(m["weights"])
    mu = np.asarray(m["means"])
    C = full_covariances(m)  # expanded here from the JSON, so the sampler's own layout is not trusted
    assert_samples_follow(S, L, w, mu, C)
    # The mixture's mean and covariance: the M-step makes the mean that of the data.
    mean = w @ mu
    total = np.einsum("k,kij->ij", w, C + np.einsum("ki,kj->kij", mu, mu)) - np.outer(mean, mean)
    X = np.load(blobs["X"])
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=0, atol=1e-9)
    assert np.all(np.abs(S.mean(axis=0) - mean) < 5 * np.sqrt(np.diag(total) / n)), (S.mean(axis=0), mean)


# ---- select --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_blobs(make_cuem, tmp_path_factory):
    d = tmp_path_factory.mktemp("three")
    make_cuem(d)("-q", "generate", "-n", 900, "-d", 2, "-k", 3, "--separation", 10, "--seed", 5,
                      "-o", "three.npy")
    return d / "three.npy"


def test_select_table(cuem, tmp_path, three_blobs):
    out = cuem("-q", "select", three_blobs, "-k", "1:4", "--covariance", "full,diag", "-o", "best.json").stdout
    lines = out.splitlines()
    assert re.match(r"\s*k\s+cov\s+params", lines[0])
    rows = [l for l in lines if re.match(r"\s*\d+\s+(full|diag)\s", l)]
    assert len(rows) == 8
    assert sum("<- best" in r for r in rows) == 1
    assert "best by BIC: k=3" in out
    assert "model written to best.json" in out
    check_model(load_json(tmp_path / "best.json"), 3, 2)


def test_select_json(cuem, tmp_path, three_blobs):
    j = cuem.json("select", three_blobs, "-k", "1:4", "--covariance", "full,diag", "-o", "best.json")
    assert j["criterion"] == "bic"
    c = j["candidates"]
    assert [(x["k"], x["covariance"]) for x in c] == [(k, cv) for cv in ["full", "diag"] for k in range(1, 5)]
    assert all(x["ok"] for x in c)
    best = min(c, key=lambda x: x["bic"])
    assert j["best"] == {"k": best["k"], "covariance": best["covariance"]}
    assert j["best"]["k"] == 3, "BIC must pick the 3 well-separated components"
    m = load_json(tmp_path / "best.json")
    check_model(m, 3, 2, best["covariance"])
    assert m["fit"]["lower_bound"] == best["lower_bound"]
    # AIC, and -k as a list
    ja = cuem.json("select", three_blobs, "-k", "2,3,5", "--criterion", "aic")
    assert ja["criterion"] == "aic" and [x["k"] for x in ja["candidates"]] == [2, 3, 5]
    assert ja["best"]["k"] == min(ja["candidates"], key=lambda x: x["aic"])["k"]


def test_select_candidate_with_more_components_than_points(cuem, tmp_path):
    np.save(tmp_path / "x.npy", np.array([[0.0, 0.1], [0.2, 0.0], [5.0, 5.2], [5.1, 5.0], [0.1, 0.2]]))
    j = cuem.json("select", "x.npy", "-k", "1:6", "--covariance", "spherical", "--reg-covar", 1e-3)
    c = {x["k"]: x for x in j["candidates"]}
    assert c[6]["ok"] is False and "error" in c[6]
    assert j["best"]["k"] in range(1, 6)
    # The table gives a run of such candidates one line.
    out = cuem("-q", "select", "x.npy", "-k", "1:40", "--covariance", "spherical,diag", "--reg-covar", 1e-3).stdout
    assert re.search(r"^6-40\s+spherical\s+skipped: more components than the 5 points$", out, re.M), out
    assert re.search(r"^6-40\s+diag\s+skipped", out, re.M), out
    out = cuem("-q", "select", "x.npy", "-k", "2,7,9", "--covariance", "spherical", "--reg-covar", 1e-3).stdout
    assert re.search(r"^\s*7,9\s+spherical\s+skipped", out, re.M), out


# ---- the model file round trip --------------------------------------------------------------

@pytest.mark.parametrize("cov", COVARIANCES)
def test_model_json_round_trip(cuem, tmp_path, blobs, cov):
    j = cuem.json("fit", blobs["X"], "-k", 3, "--covariance", cov, "--seed", 3, "-o", "m.json")
    m = load_json(tmp_path / "m.json")
    assert m["fit"]["lower_bound"] == j["lower_bound"]
    # The same fit printed with --json embeds the model: every number is bitwise the file's.
    inline = cuem.json("fit", blobs["X"], "-k", 3, "--covariance", cov, "--seed", 3)
    for key in ["weights", "means", "covariances", "precisions_cholesky"]:
        assert inline["model"][key] == m[key], key
    assert inline["lower_bound"] == j["lower_bound"]
    # A second write/read cycle (python re-writes the numbers as shortest round-trip text)
    # predicts bitwise the same.
    (tmp_path / "m2.json").write_text(json.dumps(m))
    assert load_json(tmp_path / "m2.json") == m
    for model, suffix in [("m.json", "1"), ("m2.json", "2")]:
        cuem("-q", "predict", model, blobs["X"], "-o", f"l{suffix}.npy", "--proba", f"p{suffix}.npy")
    assert read_bytes(tmp_path / "l1.npy") == read_bytes(tmp_path / "l2.npy")
    assert read_bytes(tmp_path / "p1.npy") == read_bytes(tmp_path / "p2.npy")
    s1 = cuem("--json", "score", "m.json", blobs["X"]).stdout
    s2 = cuem("--json", "score", "m2.json", blobs["X"]).stdout
    assert s1 == s2
    cuem("-q", "sample", "m.json", "-n", 100, "--seed", 1, "-o", "s1.npy")
    cuem("-q", "sample", "m2.json", "-n", 100, "--seed", 1, "-o", "s2.npy")
    assert read_bytes(tmp_path / "s1.npy") == read_bytes(tmp_path / "s2.npy")


# ---- data formats --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fmt(make_cuem, tmp_path_factory):
    """A float64 data set and the lower bound of its reference fit."""
    d = tmp_path_factory.mktemp("fmt")
    c = make_cuem(d)
    c("-q", "generate", "-n", 300, "-d", 3, "-k", 3, "--separation", 5, "--seed", 21, "-o", "x.npy")
    X = np.load(d / "x.npy")
    X32 = X.astype(np.float32)
    np.save(d / "x32as64.npy", X32.astype(np.float64))
    return {"X": X, "X32": X32, "dir": d,
            "lb": _fit_lb(c, d / "x.npy"),
            "lb32": _fit_lb(c, d / "x32as64.npy")}


FIT_ARGS = ["-k", 3, "--seed", 0, "--tol", 1e-10, "--max-iter", 1000]


def _fit_lb(c, path, *extra):
    j = c.json("fit", path, *FIT_ARGS, *extra)
    assert j["n_features"] == 3 and j["n_samples"] == 300
    return j["lower_bound"]


def _csv(X, delim, header=None):
    lines = [delim.join(header)] if header else []
    lines += [delim.join(repr(float(v)) for v in row) for row in X]
    return "\n".join(lines) + "\n"


def _write_format(case, X, p):
    """Writes X as `case` under folder p; returns (file name, extra options)."""
    if case == "npy_f64_fortran":
        np.save(p / "d.npy", np.asfortranarray(X))
        return "d.npy", []
    if case == "csv_header":
        (p / "d.csv").write_text(_csv(X, ",", ["a", "b", "c"]))
        return "d.csv", []
    if case == "csv_no_header":
        (p / "d.csv").write_text(_csv(X, ","))
        return "d.csv", []
    if case == "csv_header_yes":
        (p / "d.csv").write_text(_csv(X, ",", ["1", "2", "3"]))  # a numeric-looking header
        return "d.csv", ["--header", "yes"]
    if case == "csv_semicolon":
        (p / "d.csv").write_text(_csv(X, ";", ["a", "b", "c"]))
        return "d.csv", []
    if case == "csv_semicolon_explicit":
        (p / "d.txt").write_text(_csv(X, ";"))
        return "d.txt", ["--delimiter", ";", "--header", "no"]
    if case == "tsv":
        (p / "d.tsv").write_text(_csv(X, "\t", ["a", "b", "c"]))
        return "d.tsv", []
    if case == "tab_explicit":
        (p / "d.csv").write_text(_csv(X, "\t"))
        return "d.csv", ["--delimiter", "tab"]
    if case == "whitespace_txt":
        (p / "d.txt").write_text(_csv(X, "   "))
        return "d.txt", []
    if case == "crlf_and_comments":
        (p / "d.csv").write_text("# a comment line\r\n" + _csv(X, ",", ["a", "b", "c"]).replace("\n", "\r\n"))
        return "d.csv", []
    if case in ("columns_by_name", "columns_by_index", "columns_mixed"):
        rows = [["id", "a", "label", "b", "c"]]
        for i, r in enumerate(X):
            rows.append([str(i), repr(float(r[0])), "cat" if i % 2 else "dog", repr(float(r[1])), repr(float(r[2]))])
        (p / "d.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
        cols = {"columns_by_name": "a,b,c", "columns_by_index": "1,3,4", "columns_mixed": "a,3,c"}[case]
        return "d.csv", ["--columns", cols]
    if case == "raw_f64":
        X.astype("<f8").tofile(p / "d.bin")
        return "d.bin", ["--dims", 3]
    if case == "raw_f64_explicit":
        X.astype("<f8").tofile(p / "d.f64")
        return "d.f64", ["--dims", 3, "--dtype", "float64"]
    if case == "raw_f64_any_name":
        X.astype("<f8").tofile(p / "d.data")
        return "d.data", ["--dims", 3]
    if case in ("npy_v2", "npy_v3"):
        with open(p / "d.npy", "wb") as f:
            np.lib.format.write_array(f, X, version=(2, 0) if case == "npy_v2" else (3, 0))
        return "d.npy", []
    if case == "npy_no_extension":
        np.save(p / "d.npy", X)
        os.rename(p / "d.npy", p / "d.array")
        return "d.array", []
    raise AssertionError(case)


@pytest.mark.parametrize("case", [
    "npy_f64_fortran", "csv_header", "csv_no_header", "csv_header_yes", "csv_semicolon", "csv_semicolon_explicit",
    "tsv", "tab_explicit", "whitespace_txt", "crlf_and_comments", "columns_by_name", "columns_by_index",
    "columns_mixed", "raw_f64", "raw_f64_explicit", "raw_f64_any_name", "npy_no_extension", "npy_v2", "npy_v3"])
def test_format_gives_same_fit_as_float64_npy(cuem, tmp_path, fmt, case):
    name, extra = _write_format(case, fmt["X"], tmp_path)
    assert _fit_lb(cuem, name, *extra) == pytest.approx(fmt["lb"], rel=1e-12, abs=0)


@pytest.mark.parametrize("case", ["npy_f32_c", "npy_f32_fortran", "raw_f32", "raw_f32_by_extension"])
def test_float32_formats(cuem, tmp_path, fmt, case):
    X32 = fmt["X32"]
    if case == "npy_f32_c":
        np.save(tmp_path / "d.npy", X32)
        name, extra = "d.npy", []
    elif case == "npy_f32_fortran":
        np.save(tmp_path / "d.npy", np.asfortranarray(X32))
        name, extra = "d.npy", []
    elif case == "raw_f32":
        X32.astype("<f4").tofile(tmp_path / "d.bin")
        name, extra = "d.bin", ["--dims", 3, "--dtype", "float32"]
    else:
        X32.astype("<f4").tofile(tmp_path / "d.f32")
        name, extra = "d.f32", ["--dims", 3]
    proc = cuem("--json", "fit", name, *FIT_ARGS, *extra)
    lb = json.loads(proc.stdout)["lower_bound"]
    assert "converted" not in proc.stderr  # float32 is read as is, without a notice
    # float32 values widen exactly, and the fit works in float64 whether it reads them in
    # place (C order, raw) or converted (Fortran order): bitwise the fit of the float64
    # copy of the float32 data
    assert lb == fmt["lb32"]
    # and within float32's precision of the float64 original
    assert lb == pytest.approx(fmt["lb"], rel=1e-5)


def test_int64_npy_converted_with_notice(cuem, tmp_path, fmt):
    Xi = np.round(fmt["X"] * 1000).astype(np.int64)
    np.save(tmp_path / "i.npy", Xi)
    np.save(tmp_path / "f.npy", Xi.astype(np.float64))
    proc = cuem("--json", "fit", "i.npy", *FIT_ARGS)
    assert re.search(r"int64 values converted to float64", proc.stderr), proc.stderr
    ref = cuem.json("fit", "f.npy", *FIT_ARGS)
    assert json.loads(proc.stdout)["lower_bound"] == pytest.approx(ref["lower_bound"], rel=1e-12, abs=0)
    quiet = cuem("-q", "fit", "i.npy", *FIT_ARGS)
    assert quiet.stderr == ""


@pytest.mark.parametrize("dtype", ["int32", "uint8", "bool", "float16"])
def test_other_numeric_npy_dtypes(cuem, tmp_path, dtype):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(6, 1, (50, 2))])
    X = np.abs(X) * 10 if dtype != "bool" else X > 3
    np.save(tmp_path / "d.npy", X.astype(dtype))
    proc = cuem("--json", "fit", "d.npy", "-k", 2, "--reg-covar", 1e-3)
    assert json.loads(proc.stdout)["n_samples"] == 100
    assert f"{dtype} values converted to float64" in proc.stderr, proc.stderr


def test_one_dimensional_npy_is_n_by_1(cuem, tmp_path, fmt):
    x = fmt["X"][:, 0].copy()
    np.save(tmp_path / "v.npy", x)
    np.save(tmp_path / "c.npy", x[:, None])
    a = cuem.json("fit", "v.npy", "-k", 2, "--seed", 0, "-o", "a.json")
    b = cuem.json("fit", "c.npy", "-k", 2, "--seed", 0, "-o", "b.json")
    assert a["n_features"] == 1 and a["n_samples"] == 300
    assert a["lower_bound"] == b["lower_bound"]
    ma, mb = load_json(tmp_path / "a.json"), load_json(tmp_path / "b.json")
    assert ma["means"] == mb["means"] and ma["covariances"] == mb["covariances"]


def test_csv_with_utf8_byte_order_mark(cuem, tmp_path, fmt):
    X = fmt["X"]
    (tmp_path / "plain.csv").write_text(_csv(X, ","))
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + _csv(X, ",").encode())
    (tmp_path / "bomh.csv").write_bytes(b"\xef\xbb\xbf" + _csv(X, ",", ["a", "b", "c"]).encode())
    assert cuem.json("fit", "bom.csv", *FIT_ARGS)["n_samples"] == 300
    assert cuem.json("fit", "bomh.csv", *FIT_ARGS, "--columns", "a,b,c")["lower_bound"] == pytest.approx(
        fmt["lb"], rel=1e-12, abs=0)


def test_predict_and_score_read_every_format(cuem, tmp_path, blobs):
    X = np.load(blobs["X"])
    (tmp_path / "d.csv").write_text(_csv(X, ",", ["a", "b", "c"]))
    X.tofile(tmp_path / "d.bin")
    ref = cuem("-q", "predict", blobs["model"], blobs["X"]).stdout
    assert cuem("-q", "predict", blobs["model"], "d.csv").stdout == ref
    assert cuem("-q", "predict", blobs["model"], "d.bin", "--dims", 3).stdout == ref
    s_ref = cuem.json("score", blobs["model"], blobs["X"])
    assert cuem.json("score", blobs["model"], "d.csv") == s_ref
    assert cuem.json("score", blobs["model"], "d.bin", "--dims", 3) == s_ref


# ---- exit codes ----------------------------------------------------------------------------

USAGE_CASES = {
    "unknown_option": ["fit", "{X}", "-k", 3, "--bogus", "-o", "m.json"],
    "missing_k": ["fit", "{X}", "-o", "m.json"],
    "missing_data": ["fit", "-k", 3, "-o", "m.json"],
    "bad_covariance": ["fit", "{X}", "-k", 3, "--covariance", "weird", "-o", "m.json"],
    "bad_init": ["fit", "{X}", "-k", 3, "--init", "best", "-o", "m.json"],
    "negative_tol": ["fit", "{X}", "-k", 3, "--tol", -1, "-o", "m.json"],
    "nan_tol": ["fit", "{X}", "-k", 3, "--tol", "nan", "-o", "m.json"],
    "negative_reg_covar": ["fit", "{X}", "-k", 3, "--reg-covar", -1, "-o", "m.json"],
    "zero_k": ["fit", "{X}", "-k", 0, "-o", "m.json"],
    "k_not_a_number": ["fit", "{X}", "-k", "three", "-o", "m.json"],
    "zero_n_init": ["fit", "{X}", "-k", 3, "--n-init", 0, "-o", "m.json"],
    "zero_max_iter": ["fit", "{X}", "-k", 3, "--max-iter", 0, "-o", "m.json"],
    "unknown_device": ["fit", "{X}", "-k", 3, "--device", "gpu", "-o", "m.json"],
    "bad_device_memory": ["fit", "{X}", "-k", 3, "--device-memory", "lots", "-o", "m.json"],
    "negative_device_memory": ["fit", "{X}", "-k", 3, "--device-memory", "-5G", "-o", "m.json"],
    "device_memory_unit": ["fit", "{X}", "-k", 3, "--device-memory", "5Q", "-o", "m.json"],
    "bad_delimiter": ["fit", "{X}", "-k", 3, "--delimiter", "xx", "-o", "m.json"],
    "dtype_without_dims": ["fit", "{X}", "-k", 3, "--dtype", "float32", "-o", "m.json"],
    "bad_header_mode": ["fit", "{X}", "-k", 3, "--header", "maybe", "-o", "m.json"],
    "select_bad_k": ["select", "{X}", "-k", "abc", "-o", "m.json"],
    "select_zero_k": ["select", "{X}", "-k", "0:3", "-o", "m.json"],
    "select_empty_range": ["select", "{X}", "-k", "4:2", "-o", "m.json"],
    "select_bad_covariance": ["select", "{X}", "--covariance", "full,wrong", "-o", "m.json"],
    "select_bad_criterion": ["select", "{X}", "--criterion", "mdl", "-o", "m.json"],
    "predict_missing_data": ["predict", "{M}", "-o", "l.npy"],
    "sample_missing_n": ["sample", "{M}", "-o", "s.npy"],
    "sample_zero_n": ["sample", "{M}", "-n", 0, "-o", "s.npy"],
    "sample_missing_output": ["sample", "{M}", "-n", 10],
    "generate_missing_output": ["generate", "-n", 10],
    "generate_zero_n": ["generate", "-n", 0, "-o", "g.npy"],
    "generate_bad_covariance": ["generate", "-n", 10, "--covariance", "round", "-o", "g.npy"],
    "global_unknown_option": ["--frobnicate", "info"],
}


@pytest.mark.parametrize("case", sorted(USAGE_CASES))
def test_usage_errors_exit_2(cuem, tmp_path, blobs, case):
    args = [str(a).replace("{X}", str(blobs["X"])).replace("{M}", str(blobs["model"])) for a in USAGE_CASES[case]]
    proc = cuem(*args, expect=USAGE)
    assert proc.stderr.strip(), "a usage error must say what is wrong"
    assert os.listdir(tmp_path) == []


def test_bad_data_exits_3(cuem, tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    proc = cuem("fit", "bad.csv", "-k", 1, "-o", "m.json", expect=BAD_DATA)
    assert "bad input data" in proc.stderr
    assert os.listdir(tmp_path) == ["bad.csv"]


def _duplicated_points(path):
    np.save(path, np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]]), 20, axis=0))


@pytest.mark.parametrize("cov", COVARIANCES)
def test_numerical_failure_exits_4(cuem, tmp_path, cov):
    _duplicated_points(tmp_path / "dup.npy")
    proc = cuem("fit", "dup.npy", "-k", 3, "--reg-covar", 0, "--covariance", cov, "-o", "m.json",
                "--trace", "t.csv", "--report", "r.svg", expect=NUMERICAL)
    assert "not positive definite" in proc.stderr and "reg_covar" in proc.stderr
    assert os.listdir(tmp_path) == ["dup.npy"]
    # with a regularisation the same data fits
    cuem("-q", "fit", "dup.npy", "-k", 3, "--reg-covar", 1e-3, "--covariance", cov, "-o", "m.json")


def test_select_numerical_failure(cuem, tmp_path):
    _duplicated_points(tmp_path / "dup.npy")
    proc = cuem("select", "dup.npy", "-k", "2:3", "--reg-covar", 0, "-o", "m.json", expect=NUMERICAL)
    assert "reg-covar" in proc.stderr or "reg_covar" in proc.stderr
    assert os.listdir(tmp_path) == ["dup.npy"]
    # a candidate that fails does not sink the others
    j = cuem.json("select", "dup.npy", "-k", "1:3", "--reg-covar", 0, "-o", "m.json")
    ok = {x["k"]: x["ok"] for x in j["candidates"]}
    assert ok[1] is True and ok[3] is False
    assert j["best"]["k"] in [k for k, v in ok.items() if v]


# cuem's device errors (src/core/backend.cpp); the reason in parentheses follows from what
# the NVIDIA driver says (kernels/device_info.cu).
NOT_BUILT = ("cuem: device error: this cuem was built without CUDA; use device 'cpu' or 'auto', or rebuild with "
             "-DCUEM_WITH_CUDA=ON on a machine with nvcc.")
NO_DEVICE = "cuem: device error: device 'cuda' was requested but no CUDA device is usable ({}). Use device 'cpu' or 'auto'."
NO_DEVICE_REASONS = {"no driver": "no NVIDIA driver is installed",
                     "no device": "cudaErrorNoDevice: no CUDA-capable device is detected"}


def test_cuda_without_gpu_exits_5(cuem, tmp_path, blobs, helpers):
    count, why = helpers.driver_device_count()
    info = cuem.json("info")
    if info["cuda_built"]:
        if count:
            pytest.skip(f"the NVIDIA driver reports {count} CUDA device(s)")
        expected = NO_DEVICE.format(NO_DEVICE_REASONS[why])
        assert info["devices"] == [] and info["devices_note"] == NO_DEVICE_REASONS[why], info
    else:
        expected = NOT_BUILT
        assert info["devices"] == [] and info["devices_note"] == "this build has no CUDA code", info
    for dev in ["cuda", "cuda:0"]:
        proc = cuem("-q", "fit", blobs["X"], "-k", 3, "--device", dev, "-o", "m.json", expect=DEVICE)
        assert proc.stderr.strip() == expected
    proc = cuem("-q", "select", blobs["X"], "-k", "1:2", "--device", "cuda", "-o", "m.json", expect=DEVICE)
    assert expected in proc.stderr
    assert os.listdir(tmp_path) == []
    for cmd in (["predict", blobs["model"], blobs["X"], "-o", "l.npy"], ["score", blobs["model"], blobs["X"]]):
        proc = cuem("-q", *cmd, "--device", "cuda", expect=DEVICE)
        assert proc.stderr.strip() == expected
    assert os.listdir(tmp_path) == []
    # auto falls back to the CPU, and says so; the model is the CPU's, byte for byte
    proc = cuem("fit", blobs["X"], "-k", 3, "--device", "auto", "-o", "m.json")
    assert "running on the CPU" in proc.stderr
    assert cuem.json("fit", blobs["X"], "-k", 3, "--device", "auto")["device"] == "cpu"
    cuem("-q", "fit", blobs["X"], "-k", 3, "--device", "cpu", "-o", "cpu.json")
    assert load_json(tmp_path / "m.json")["means"] == load_json(tmp_path / "cpu.json")["means"]


def test_cuda_fit_agrees_with_cpu(cuem, tmp_path, blobs, helpers):
    count, _ = helpers.driver_device_count()
    info = cuem.json("info")
    if not info["cuda_built"] or count == 0:
        pytest.skip("needs a CUDA build and a CUDA device (the NVIDIA driver reports none, or the build has no CUDA)")
    assert len(info["devices"]) == count, info
    cpu = cuem.json("fit", blobs["X"], "-k", 3, "--tol", "1e-8", "--seed", 3)
    for precision, tol in [("float32", 1e-5), ("float64", 1e-9)]:
        gpu = cuem.json("fit", blobs["X"], "-k", 3, "--tol", "1e-8", "--seed", 3, "--device", "cuda",
                        "--precision", precision, "--device-memory", "256M")
        assert gpu["device"].startswith("cuda:0")
        assert abs(gpu["lower_bound"] - cpu["lower_bound"]) <= tol * abs(cpu["lower_bound"])


def test_cuda_device_index_out_of_range_exits_5(cuem, tmp_path, blobs):
    proc = cuem("fit", blobs["X"], "-k", 3, "--device", "cuda:99", "-o", "m.json", expect=DEVICE)
    assert "device" in proc.stderr.lower()
    assert os.listdir(tmp_path) == []


def _unwritable_cases(blobs):
    X, M = str(blobs["X"]), str(blobs["model"])
    return {
        "fit": ["fit", X, "-k", 3, "-o", "{OUT}"],
        "fit_trace": ["fit", X, "-k", 3, "--trace", "{OUT}"],
        "fit_report": ["fit", X, "-k", 3, "--report", "{OUT}"],
        "predict": ["predict", M, X, "-o", "{OUT}"],
        "predict_proba": ["predict", M, X, "--proba", "{OUT}"],
        "sample": ["sample", M, "-n", 10, "-o", "{OUT}"],
        "select": ["select", X, "-k", "1:2", "-o", "{OUT}"],
        "generate": ["generate", "-n", 10, "-o", "{OUT}"],
        # The second output of a command: an existing folder is refused before anything is
        # written (a missing folder: see test_no_partial_outputs_when_a_later_output_fails).
        "fit_trace_after_model": ["fit", X, "-k", 3, "-o", "m.json", "--trace", "{OUT}"],
        "predict_proba_after_labels": ["predict", M, X, "-o", "l.npy", "--proba", "{OUT}"],
        "sample_labels": ["sample", M, "-n", 10, "-o", "s.npy", "--labels", "{OUT}"],
        "generate_labels": ["generate", "-n", 10, "-o", "g.npy", "--labels", "{OUT}"],
        "generate_model": ["generate", "-n", 10, "-o", "g.npy", "--model", "{OUT}"],
    }


SINGLE_OUTPUT = ["fit", "fit_trace", "fit_report", "predict", "predict_proba", "sample", "select", "generate"]
SECOND_OUTPUT = ["fit_trace_after_model", "predict_proba_after_labels", "sample_labels", "generate_labels",
                 "generate_model"]


@pytest.mark.parametrize("case,where", [(c, w) for c in SINGLE_OUTPUT for w in ["missing_folder", "existing_folder"]]
                         + [(c, "existing_folder") for c in SECOND_OUTPUT])
def test_unwritable_output_exits_2(cuem, tmp_path, blobs, case, where):
    os.mkdir(tmp_path / "sub")
    out = "nowhere/out.file" if where == "missing_folder" else "sub"
    args = [a.replace("{OUT}", out) if isinstance(a, str) else a for a in _unwritable_cases(blobs)[case]]
    proc = cuem(*args, expect=USAGE)
    msg = proc.stderr.lower()
    assert ("cannot write" in msg) if where == "missing_folder" else ("folder" in msg), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["sub"]
    assert os.listdir(tmp_path / "sub") == []


@pytest.mark.parametrize("case", ["fit_trace", "fit_report", "predict_proba", "sample_labels", "generate_labels",
                                  "generate_model"])
def test_no_partial_outputs_when_a_later_output_fails(cuem, tmp_path, blobs, case):
    X, M = str(blobs["X"]), str(blobs["model"])
    bad = "nowhere/out.file"
    args = {
        "fit_trace": ["fit", X, "-k", 3, "-o", "m.json", "--trace", bad],
        "fit_report": ["fit", X, "-k", 3, "-o", "m.json", "--trace", "t.csv", "--report", bad],
        "predict_proba": ["predict", M, X, "-o", "l.npy", "--proba", bad],
        "sample_labels": ["sample", M, "-n", 10, "-o", "s.npy", "--labels", bad],
        "generate_labels": ["generate", "-n", 10, "-o", "g.npy", "--labels", bad],
        "generate_model": ["generate", "-n", 10, "-o", "g.npy", "--labels", "l.npy", "--model", bad],
    }[case]
    cuem(*args, expect=USAGE)
    assert os.listdir(tmp_path) == [], "a failing run must leave no output file"


def test_output_may_not_replace_an_input(cuem, tmp_path, blobs):
    shutil.copy(blobs["X"], tmp_path / "x.npy")
    shutil.copy(blobs["model"], tmp_path / "m.json")
    before = {p: read_bytes(tmp_path / p) for p in ["x.npy", "m.json"]}
    cuem("fit", "x.npy", "-k", 3, "-o", "x.npy", expect=USAGE)
    cuem("predict", "m.json", "x.npy", "-o", "x.npy", expect=USAGE)
    cuem("predict", "m.json", "x.npy", "--proba", "m.json", expect=USAGE)
    cuem("sample", "m.json", "-n", 5, "-o", "m.json", expect=USAGE)
    cuem("select", "x.npy", "-k", "1:2", "-o", "./x.npy", expect=USAGE)
    assert {p: read_bytes(tmp_path / p) for p in ["x.npy", "m.json"]} == before
    assert sorted(os.listdir(tmp_path)) == ["m.json", "x.npy"]


# ---- atomic outputs ------------------------------------------------------------------------

def test_output_to_a_fifo_does_not_replace_it(cuem, tmp_path):
    import stat
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    # Holding the FIFO open read-write means a writer never blocks (Linux), and the pipe
    # buffer (64 KiB) holds the small output.
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        # A pipe is written in place (src/io/atomic_file.hpp): exit 0, the bytes in the pipe.
        cuem("-q", "generate", "-n", 10, "-d", 2, "--seed", 3, "-o", fifo, timeout=20)
        assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced by a regular file"
        through_pipe = os.read(fd, 1 << 16)
        try:
            extra = os.read(fd, 1 << 16)
        except BlockingIOError:
            extra = b""
    finally:
        os.close(fd)
    # Exactly the bytes the same command writes to a regular file, once.
    cuem("-q", "generate", "-n", 10, "-d", 2, "--seed", 3, "-o", "file.npy")
    assert through_pipe + extra == read_bytes(tmp_path / "file.npy")
    assert np.load(tmp_path / "file.npy").shape == (10, 2)
    assert sorted(os.listdir(tmp_path)) == ["file.npy", "pipe.npy"]


def test_failed_runs_leave_existing_outputs_untouched(cuem, tmp_path, blobs):
    shutil.copy(blobs["model"], tmp_path / "m.json")
    cuem("-q", "predict", "m.json", blobs["X"], "-o", "l.npy", "--proba", "p.npy")
    cuem("-q", "fit", blobs["X"], "-k", 3, "-o", "m.json", "--trace", "t.csv", "--report", "r.svg")
    cuem("-q", "sample", "m.json", "-n", 10, "-o", "s.npy")
    names = sorted(os.listdir(tmp_path))
    before = {p: read_bytes(tmp_path / p) for p in names}
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,3\n4,five,6\n")
    _duplicated_points(tmp_path / "dup.npy")
    np.save(tmp_path / "two.npy", np.zeros((10, 2)))
    fit_out = ["-o", "m.json", "--trace", "t.csv", "--report", "r.svg"]
    cuem("fit", "bad.csv", "-k", 2, *fit_out, expect=BAD_DATA)
    cuem("fit", "dup.npy", "-k", 3, "--reg-covar", 0, *fit_out, expect=NUMERICAL)
    cuem("fit", blobs["X"], "-k", 601, *fit_out, expect=BAD_DATA)
    cuem("fit", blobs["X"], "-k", 3, "--tol", -1, *fit_out, expect=USAGE)
    cuem("predict", "m.json", "two.npy", "-o", "l.npy", "--proba", "p.npy", expect=BAD_DATA)
    cuem("predict", "m.json", "missing.npy", "-o", "l.npy", "--proba", "p.npy", expect=BAD_DATA)
    cuem("sample", "missing.json", "-n", 10, "-o", "s.npy", expect=BAD_DATA)
    cuem("select", "dup.npy", "-k", "3", "--reg-covar", 0, "-o", "m.json", expect=NUMERICAL)
    after = sorted(os.listdir(tmp_path))
    assert after == sorted(names + ["bad.csv", "dup.npy", "two.npy"])
    for p in names:
        assert read_bytes(tmp_path / p) == before[p], f"{p} changed by a failing run"


def test_successful_run_replaces_output_atomically(cuem, tmp_path, blobs):
    (tmp_path / "m.json").write_text("old")
    os.chmod(tmp_path / "m.json", 0o640)
    cuem("-q", "fit", blobs["X"], "-k", 2, "-o", "m.json")
    check_model(load_json(tmp_path / "m.json"), 2, 3)
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, INTERRUPTED), (signal.SIGTERM, 128 + signal.SIGTERM)],
                         ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_leaves_no_output(cuem, tmp_path, sig, code):
    cuem("-q", "generate", "-n", 400000, "-d", 8, "-k", 16, "--seed", 1, "-o", "big.npy")
    proc = cuem.popen("fit", "big.npy", "-k", 16, "--max-iter", 500, "--tol", 0, "-o", "model.json",
                      "--trace", "trace.csv", "--report", "report.svg")
    time.sleep(1.0)
    assert proc.poll() is None, "the fit ended before it could be interrupted: make the data bigger"
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == code, err[-2000:]
    assert "interrupted" in err
    assert os.listdir(tmp_path) == ["big.npy"]
