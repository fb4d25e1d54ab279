"""`cuem fit --model bayesian` (the variational Bayesian Gaussian mixture) end to end: the
summary's components carrying weight, the model file ("kind", version 2, the posterior),
predict and score against scikit-learn's BayesianGaussianMixture given the saved
posterior, old model files without "kind", and the refused combinations (exit 2).

Run: python -m pytest -q tests/cli/test_bayesian_cli.py --cuem-bin=build/cuem
"""
import csv
import json

import numpy as np
import pytest

OK, USAGE, BAD_DATA = 0, 2, 3
K = 8


def three_clusters(path, n_per=150, seed=5):
    """Three well-separated round clusters in 2-D (centres 20 apart, unit spread)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    X = np.concatenate([c + rng.standard_normal((n_per, 2)) for c in centres])
    X = X[rng.permutation(len(X))]
    np.save(path, X)
    return X


@pytest.fixture(scope="module")
def fitted(make_cuem, tmp_path_factory):
    """Data from three clusters and a -k 8 Bayesian fit of it, with its --json summary and trace."""
    folder = tmp_path_factory.mktemp("bayes")
    c = make_cuem(folder)
    X = three_clusters(folder / "x.npy")
    summary = c.json("fit", "x.npy", "-k", K, "--model", "bayesian", "--weight-concentration-prior", 0.001,
                     "--seed", 0, "-o", "b.json", "--trace", "t.csv")
    with open(folder / "b.json") as f:
        model = json.load(f)
    return {"c": c, "folder": folder, "X": X, "summary": summary, "model": model}


def sklearn_bayesian(m):
    """scikit-learn's BayesianGaussianMixture holding the posterior of a cuem model file."""
    from sklearn.mixture import BayesianGaussianMixture

    assert m["kind"] == "bayesian_gaussian_mixture"
    bg = BayesianGaussianMixture(n_components=m["n_components"], covariance_type=m["covariance_type"],
                                 weight_concentration_prior_type=m["weight_concentration_prior_type"])
    wc = np.asarray(m["weight_concentration"], dtype=np.float64)
    bg.weight_concentration_ = (wc[0], wc[1]) if m["weight_concentration_prior_type"] == "dirichlet_process" else wc
    bg.mean_precision_ = np.asarray(m["mean_precision"], dtype=np.float64)
    bg.means_ = np.asarray(m["means"], dtype=np.float64)
    bg.degrees_of_freedom_ = np.asarray(m["degrees_of_freedom"], dtype=np.float64)
    bg.covariances_ = np.asarray(m["covariances"], dtype=np.float64)
    bg.precisions_cholesky_ = np.asarray(m["precisions_cholesky"], dtype=np.float64)
    bg.n_features_in_ = m["n_features"]
    bg.converged_ = True
    return bg


# ---- the summary: which components carry weight ----------------------------------------------

def test_three_clusters_leave_three_components_with_weight(fitted):
    s = fitted["summary"]
    assert s["model"] == "bayesian" and s["n_components"] == K
    assert s["converged"] is True
    assert s["n_components_with_weight"] == 3, s
    carrying = {e["component"]: e for e in s["components_with_weight"]}
    pruned = {e["component"]: e for e in s["components_pruned"]}
    assert sorted(set(carrying) | set(pruned)) == list(range(K)) and not set(carrying) & set(pruned)
    # The stated rule: a share of the data N_k / N above 0.01 / K, with N_k = beta_k - beta_0
    # read here from the model file.
    m = fitted["model"]
    counts = np.asarray(m["mean_precision"]) - m["prior"]["mean_precision"]
    share = counts / counts.sum()
    assert s["share_threshold"] == pytest.approx(0.01 / K)
    assert sorted(carrying) == [k for k in range(K) if share[k] > 0.01 / K]
    for k, e in {**carrying, **pruned}.items():
        assert e["share"] == pytest.approx(share[k], rel=1e-9, abs=1e-15)
    # Each of the three equal clusters is one component holding about a third of the mass.
    assert sorted(e["weight"] for e in carrying.values()) == pytest.approx([1 / 3] * 3, abs=0.02)
    # The listed weights are the expected weights, recomputed here from the stick-breaking
    # posterior: E[v_k] prod_{j<k} (1 - E[v_j]), normalised.
    a, b = np.asarray(m["weight_concentration"])
    v = a / (a + b)
    w = v * np.concatenate([[1.0], np.cumprod(1 - v)[:-1]])
    w /= w.sum()
    for k, e in {**carrying, **pruned}.items():
        assert e["weight"] == pytest.approx(w[k], rel=1e-9, abs=1e-300)
    np.testing.assert_allclose(s["weights"], w, rtol=1e-9)


def test_the_summary_reports_the_elbo_traces_last_value(fitted):
    s = fitted["summary"]
    with open(fitted["folder"] / "t.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == ["init", "iteration", "lower_bound", "seconds", "rate"]
    best = [r for r in rows if int(r["init"]) == s["best_init"]]
    assert s["lower_bound_trace_last"] == float(best[-1]["lower_bound"])
    assert s["lower_bound"] == pytest.approx(s["lower_bound_trace_last"], rel=1e-12)
    assert len(best) == s["n_iter"]
    assert fitted["model"]["fit"]["lower_bound"] == s["lower_bound"]


def test_text_summary_names_the_components(fitted):
    c = fitted["c"]
    out = c("-q", "fit", "x.npy", "-k", K, "--model", "bayesian", "--weight-concentration-prior", 0.001,
            "--seed", 0, "-o", "b2.json").stdout
    s = fitted["summary"]
    assert "lower bound (ELBO)" in out
    assert f"3 of {K} components carry weight" in out
    carrying_line = next(l for l in out.splitlines() if l.startswith("carrying weight:"))
    pruned_line = next(l for l in out.splitlines() if l.startswith("effectively pruned:"))
    named = [int(tok) for tok in carrying_line.split(":")[1].split() if not tok.startswith("(")]
    assert named == [e["component"] for e in s["components_with_weight"]]
    assert len([t for t in pruned_line.split(":")[1].split() if not t.startswith("(")]) == K - 3
    assert f"ELBO trace, last value {s['lower_bound_trace_last']:.10g}" in out


# ---- the model file ----------------------------------------------------------------------

def test_model_file_holds_the_posterior(fitted):
    m = fitted["model"]
    assert m["format"] == "cuem-gaussian-mixture" and m["version"] == 2
    assert m["kind"] == "bayesian_gaussian_mixture"
    assert m["weight_concentration_prior_type"] == "dirichlet_process"
    assert np.asarray(m["weight_concentration"]).shape == (2, K)
    assert np.asarray(m["mean_precision"]).shape == (K,)
    assert np.asarray(m["means"]).shape == (K, 2)
    assert np.asarray(m["degrees_of_freedom"]).shape == (K,)
    assert np.asarray(m["covariances"]).shape == (K, 2, 2)
    assert np.asarray(m["precisions_cholesky"]).shape == (K, 2, 2)
    p = m["prior"]
    assert p["weight_concentration"] == 0.001
    assert p["mean_precision"] == 1.0 and p["degrees_of_freedom"] == 2.0  # scikit-learn's defaults: 1 and D
    X = fitted["X"]
    np.testing.assert_allclose(p["mean"], X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(p["covariance"], np.cov(X.T), rtol=1e-10)
    assert m["fit"]["converged"] is True and m["fit"]["n_iter"] == fitted["summary"]["n_iter"]


@pytest.mark.parametrize("cov,prior_type", [("full", "dirichlet_process"), ("diag", "dirichlet_distribution"),
                                            ("tied", "dirichlet_process"),
                                            ("spherical", "dirichlet_distribution")])
def test_predict_and_score_equal_scikit_learn_on_the_saved_posterior(cuem, tmp_path, cov, prior_type):
    X = three_clusters(tmp_path / "x.npy", seed=9)
    Y = X[:40] + 0.5  # scored away from the fitted points too
    np.save(tmp_path / "y.npy", Y)
    cuem("-q", "fit", "x.npy", "-k", 5, "--model", "bayesian", "--covariance", cov,
         "--weight-concentration-prior-type", prior_type, "--mean-precision-prior", 0.5,
         "--degrees-of-freedom-prior", 3.5, "--seed", 1, "-o", "b.json")
    m = json.loads((tmp_path / "b.json").read_text())
    assert m["covariance_type"] == cov and m["weight_concentration_prior_type"] == prior_type
    assert m["prior"]["mean_precision"] == 0.5 and m["prior"]["degrees_of_freedom"] == 3.5
    bg = sklearn_bayesian(m)
    cuem("-q", "predict", "b.json", "y.npy", "-o", "labels.npy", "--proba", "proba.npy")
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), bg.predict_proba(Y), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), bg.predict(Y))
    got = cuem.json("score", "b.json", "y.npy")
    assert got["kind"] == "bayesian_gaussian_mixture"
    assert "bic" not in got and "aic" not in got
    assert got["mean_log_likelihood"] == pytest.approx(bg.score(Y), rel=1e-10)
    # The plug-in mixture (expected weights, the same covariances) scores otherwise: the
    # command ran the Bayesian evaluation, not a Gaussian mixture's.
    from sklearn.mixture import GaussianMixture
    gm = GaussianMixture(n_components=5, covariance_type=cov)
    gm.weights_, gm.means_ = np.asarray(m["weights"]), bg.means_
    gm.covariances_, gm.precisions_cholesky_ = bg.covariances_, bg.precisions_cholesky_
    assert abs(gm.score(Y) - got["mean_log_likelihood"]) > 1e-6


def test_weighted_score_is_the_weighted_mean(cuem, tmp_path):
    X = three_clusters(tmp_path / "x.npy", seed=2)
    cuem("-q", "fit", "x.npy", "-k", 4, "--model", "bayesian", "-o", "b.json")
    w = np.linspace(0.0, 2.0, len(X))
    np.save(tmp_path / "w.npy", w)
    bg = sklearn_bayesian(json.loads((tmp_path / "b.json").read_text()))
    got = cuem.json("score", "b.json", "x.npy", "--weights", "w.npy")
    assert got["mean_log_likelihood"] == pytest.approx(np.average(bg.score_samples(X), weights=w), rel=1e-10)
    assert got["sum_weights"] == pytest.approx(w.sum())


# ---- old files and the gaussian_mixture kind ----------------------------------------------------

def test_gaussian_mixture_files_carry_kind_and_old_files_without_it_still_load(cuem, tmp_path):
    X = three_clusters(tmp_path / "x.npy", seed=3)
    cuem("-q", "fit", "x.npy", "-k", 3, "--seed", 0, "-o", "g.json")
    m = json.loads((tmp_path / "g.json").read_text())
    assert m["kind"] == "gaussian_mixture" and m["version"] == 1
    old = dict(m)
    del old["kind"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    for cmd in (["predict", "{}", "x.npy", "--proba", "{}-p.npy"], ["score", "{}", "x.npy"]):
        outs = [cuem("--json", "-q", *[a.format(name) for a in cmd]).stdout for name in ("g.json", "old.json")]
        if cmd[0] == "score":
            assert json.loads(outs[0]) == json.loads(outs[1])
    np.testing.assert_array_equal(np.load(tmp_path / "g.json-p.npy"), np.load(tmp_path / "old.json-p.npy"))
    cuem("-q", "sample", "old.json", "-n", 10, "-o", "s.npy")
    assert np.load(tmp_path / "s.npy").shape == (10, 2)
    # An unknown kind is bad data, not a silent gaussian_mixture.
    (tmp_path / "odd.json").write_text(json.dumps(dict(m, kind="mystery")))
    r = cuem("score", "odd.json", "x.npy", expect=BAD_DATA)
    assert '"kind" must be' in r.stderr


# ---- SQUAREM -------------------------------------------------------------------------------

def test_squarem_reaches_the_plain_fits_bound_and_the_trace_never_falls(cuem, tmp_path):
    three_clusters(tmp_path / "x.npy")
    common = ["fit", "x.npy", "-k", 6, "--model", "bayesian", "--seed", 2, "--tol", 1e-8, "--max-iter", 2000]
    plain = cuem.json(*common, "-o", "p.json")
    fast = cuem.json(*common, "-o", "s.json", "--acceleration", "squarem", "--trace", "t.csv")
    assert plain["acceleration"] == "none" and fast["acceleration"] == "squarem"
    assert plain["converged"] and fast["converged"]
    assert plain["n_estep_passes"] == plain["n_iter"]
    assert fast["n_estep_passes"] >= fast["n_iter"]
    # The same optimum (the ELBO is a whole-data total here), never below plain EM's end.
    assert fast["lower_bound"] >= plain["lower_bound"] - 1e-6 * abs(plain["lower_bound"])
    assert fast["lower_bound"] == pytest.approx(plain["lower_bound"], rel=1e-6)
    with open(tmp_path / "t.csv") as f:
        bounds = [float(r["lower_bound"]) for r in csv.DictReader(f) if int(r["init"]) == fast["best_init"]]
    assert all(b >= a - 1e-9 * abs(a) for a, b in zip(bounds, bounds[1:]))
    assert bounds[-1] == fast["lower_bound"]


# ---- refused combinations ------------------------------------------------------------------

@pytest.mark.parametrize("extra,says", [
    (["--acceleration", "squarem", "--prune-threshold", "0.01"], "do not go together"),
    (["--missing", "marginalize"], "--missing marginalize applies to --model gmm only"),
    (["--report", "r.svg"], "--report draws a --model gmm fit only"),
    (["--weight-concentration-prior", "-1"], "weight_concentration_prior"),
    (["--mean-precision-prior", "0"], "mean_precision_prior"),
    (["--degrees-of-freedom-prior", "0.5"], "degrees_of_freedom_prior"),
    (["--weight-concentration-prior", "nan"], "must be a finite number"),
    (["--weight-concentration-prior-type", "pitman_yor"], "--weight-concentration-prior-type"),
])
def test_refused_bayesian_fits_exit_2_and_write_nothing(cuem, tmp_path, helpers, extra, says):
    three_clusters(tmp_path / "x.npy")
    before = helpers.listing(tmp_path)
    r = cuem("fit", "x.npy", "-k", 4, "--model", "bayesian", "-o", "b.json", *extra, expect=USAGE)
    assert says in r.stderr, r.stderr
    helpers.assert_no_new_files(tmp_path, before)


@pytest.mark.parametrize("flag", [["--weight-concentration-prior", "0.1"], ["--mean-precision-prior", "1"],
                                  ["--degrees-of-freedom-prior", "3"],
                                  ["--weight-concentration-prior-type", "dirichlet_distribution"]])
def test_prior_flags_without_model_bayesian_exit_2(cuem, tmp_path, flag):
    three_clusters(tmp_path / "x.npy")
    r = cuem("fit", "x.npy", "-k", 3, "-o", "g.json", *flag, expect=USAGE)
    assert "apply to --model bayesian only" in r.stderr
    assert not (tmp_path / "g.json").exists()


def test_commands_without_a_bayesian_form_say_what_to_run(fitted, helpers):
    c, folder = fitted["c"], fitted["folder"]
    before = helpers.listing(folder)
    r = c("sample", "b.json", "-n", 5, "-o", "s.npy", expect=USAGE)
    assert "Bayesian Gaussian mixture" in r.stderr and "cuem predict or cuem score" in r.stderr
    r = c("impute", "b.json", "x.npy", "-o", "filled.npy", expect=USAGE)
    assert "Bayesian Gaussian mixture" in r.stderr and "--model gmm" in r.stderr
    for cmd in (["predict", "b.json", "x.npy", "-o", "l.npy"], ["score", "b.json", "x.npy"]):
        r = c(*cmd, "--missing", "marginalize", expect=USAGE)
        assert "--missing marginalize applies to Gaussian mixtures" in r.stderr
    helpers.assert_no_new_files(folder, before)



# ---- the shared fit options reach the Bayesian fit ------------------------------------------

def test_shared_fit_options_reach_the_bayesian_fit(cuem, tmp_path):
    three_clusters(tmp_path / "x.npy", seed=7)
    args = ["fit", "x.npy", "-k", 6, "--model", "bayesian", "--covariance", "diag"]
    s = cuem.json(*args, "--max-iter", 2, "--n-init", 3, "--trace", "t.csv", "-o", "b.json")
    assert s["n_iter"] == 2 and s["converged"] is False
    with open(tmp_path / "t.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted({int(r["init"]) for r in rows}) == [0, 1, 2] and len(rows) == 6
    assert json.loads((tmp_path / "b.json").read_text())["covariance_type"] == "diag"
    # The seed and init decide the start: two seeds of random_from_data differ, one repeats.
    fits = [cuem.json(*args, "--init", "random_from_data", "--seed", seed, "--max-iter", 3)
            for seed in (1, 1, 2)]
    assert fits[0]["model"]["means"] == fits[1]["model"]["means"]
    assert fits[0]["model"]["means"] != fits[2]["model"]["means"]
    # --tol: a looser tolerance stops no later.
    loose = cuem.json(*args, "--tol", 10, "--seed", 0)
    tight = cuem.json(*args, "--tol", 1e-9, "--max-iter", 500, "--seed", 0)
    assert loose["n_iter"] < tight["n_iter"]


def test_weights_reach_the_bayesian_fit(cuem, tmp_path):
    """Zero weight on one of the three clusters: two components carry weight, and the
    summary's sum of weights is the weights'."""
    X = three_clusters(tmp_path / "x.npy", seed=4)
    w = np.where(X[:, 1] > 10.0, 0.0, 1.0)  # the cluster at (0, 20) weighs nothing
    np.save(tmp_path / "w.npy", w)
    s = cuem.json("fit", "x.npy", "-k", 6, "--model", "bayesian", "--weight-concentration-prior", 0.001,
                  "--weights", "w.npy", "--seed", 0)
    assert s["sum_weights"] == w.sum()
    assert s["n_components_with_weight"] == 2, s
    means = np.asarray(s["model"]["means"])[[e["component"] for e in s["components_with_weight"]]]
    assert np.all(means[:, 1] < 10.0)
