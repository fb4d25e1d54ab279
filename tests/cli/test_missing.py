"""Missing data on the command line (issue 15): --missing error|marginalize on fit, predict,
score and select, missing values in CSV (empty fields, NA, N/A, NaN) and .npy (NaN), the
fit summary's counts, and `cuem impute`. Values are checked against NumPy references
computed here from the model JSON (each row's observed marginal, Gaussian conditionals).

Run: python -m pytest -q tests/cli/test_missing.py --cuem-bin=build/cuem
"""
import json

import numpy as np
import pytest

OK, USAGE, BAD_DATA = 0, 2, 3
MEANS = np.array([[0.0, 0.0, 0.0], [7.0, 7.0, -7.0], [-7.0, 7.0, 7.0]])


def data(n=300, seed=0, fraction=0.2, empty_rows=()):
    """(complete X, X with NaN holes): three correlated clusters in 3-d; no row loses every
    entry unless listed in `empty_rows`."""
    rng = np.random.default_rng(seed)
    A = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.2, 0.9]])
    X = MEANS[rng.integers(0, 3, size=n)] + rng.normal(size=(n, 3)) @ A.T
    holes = rng.random(X.shape) < fraction
    holes[holes.all(axis=1), 0] = False
    Xm = X.copy()
    Xm[holes] = np.nan
    for r in empty_rows:
        Xm[r] = np.nan
    return X, Xm


def summary_of(X):
    mask = np.isnan(X)
    partial = mask.any(axis=1) & ~mask.all(axis=1)
    return {
        "missing_entries": int(mask.sum()),
        "incomplete_rows": int(mask.any(axis=1).sum()),
        "empty_rows": int(mask.all(axis=1).sum()),
        "first_empty_rows": [int(r) for r in np.flatnonzero(mask.all(axis=1))],
        "n_patterns": len({tuple(m) for m in mask[partial]}),
    }


def covariances(model):
    K, D = model["n_components"], model["n_features"]
    c = np.asarray(model["covariances"], dtype=np.float64)
    t = model["covariance_type"]
    if t == "full":
        return c
    if t == "tied":
        return np.broadcast_to(c, (K, D, D))
    if t == "diag":
        return np.stack([np.diag(v) for v in c])
    return np.stack([v * np.eye(D) for v in c])


def reference(model, X):
    """(log p(x_obs), posteriors, imputed X, conditional variances) per row."""
    w = np.asarray(model["weights"], dtype=np.float64)
    mu = np.asarray(model["means"], dtype=np.float64)
    S = covariances(model)
    K, D = mu.shape
    n = len(X)
    logp, post = np.zeros(n), np.zeros((n, K))
    filled, var = X.copy(), np.zeros_like(X)
    for i in range(n):
        m = np.isnan(X[i])
        o = ~m
        cm, cv = mu.copy(), np.stack([np.diag(s) for s in S])
        if o.any():
            lj = np.empty(K)
            for k in range(K):
                Soo = S[k][np.ix_(o, o)]
                L = np.linalg.cholesky(Soo)
                z = np.linalg.solve(L, X[i, o] - mu[k, o])
                lj[k] = np.log(w[k]) - 0.5 * o.sum() * np.log(2 * np.pi) - np.log(np.diag(L)).sum() - 0.5 * z @ z
                G = S[k][np.ix_(m, o)] @ np.linalg.inv(Soo)
                cm[k, m] = mu[k, m] + G @ (X[i, o] - mu[k, o])
                cv[k, m] = np.diag(S[k][np.ix_(m, m)] - G @ S[k][np.ix_(o, m)])
            top = lj.max()
            logp[i] = top + np.log(np.exp(lj - top).sum())
            post[i] = np.exp(lj - logp[i])
        else:
            post[i] = w
        mean = post[i] @ cm
        filled[i, m] = mean[m]
        var[i, m] = (post[i] @ (cv + cm**2) - mean**2)[m]
    return logp, post, filled, var


def n_parameters(model):
    K, D, t = model["n_components"], model["n_features"], model["covariance_type"]
    return {"full": K * D * (D + 1) / 2, "tied": D * (D + 1) / 2, "diag": K * D, "spherical": K}[t] + K * D + K - 1


def write_csv(path, X, header="a,b,c", missing="", decimal=repr):
    """X as CSV with NaN written as `missing` (a string, or a list cycled through)."""
    tokens = [missing] if isinstance(missing, str) else list(missing)
    lines = [header] if header else []
    count = 0
    for row in X:
        fields = []
        for v in row:
            if np.isnan(v):
                fields.append(tokens[count % len(tokens)])
                count += 1
            else:
                fields.append(decimal(float(v)))
        lines.append(",".join(fields))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def fitted(make_cuem, tmp_path_factory):
    """A model fitted with --missing marginalize to data with holes and two empty rows."""
    folder = tmp_path_factory.mktemp("missing")
    _, Xm = data(empty_rows=[4, 40])
    np.save(folder / "holes.npy", Xm)
    c = make_cuem(folder)
    out = c.json("fit", "holes.npy", "-k", 3, "--seed", 0, "--missing", "marginalize", "-o", "model.json",
                 "--tol", "1e-8", "--max-iter", 500)
    with open(folder / "model.json") as f:
        model = json.load(f)
    return {"folder": folder, "X": Xm, "fit": out, "model": model, "path": folder / "model.json"}


# ---- the option ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["fit", "predict", "score", "select"])
def test_help_documents_missing(cuem, command):
    text = " ".join(cuem(command, "--help").stdout.split())
    assert "--missing" in text and "marginalize" in text and "NA" in text


def test_bad_missing_value_is_a_usage_error(cuem, tmp_path):
    np.save(tmp_path / "x.npy", data()[0])
    proc = cuem("fit", "x.npy", "-k", 2, "--missing", "drop", expect=USAGE)
    assert "--missing" in proc.stderr and "drop" in proc.stderr


# ---- refused without --missing marginalize ---------------------------------------------------

def test_nan_is_refused_by_default_naming_row_and_column(cuem, tmp_path):
    _, Xm = data(fraction=0.0)
    Xm[4, 1] = np.nan
    np.save(tmp_path / "x.npy", Xm)
    proc = cuem("fit", "x.npy", "-k", 2, "-o", "m.json", expect=BAD_DATA)
    assert "nan at row 4, column 1" in proc.stderr.lower() and "--missing marginalize" in proc.stderr
    write_csv(tmp_path / "x.csv", Xm, missing="nan")
    proc = cuem("fit", "x.csv", "-k", 2, "-o", "m.json", expect=BAD_DATA)
    assert "x.csv:6:" in proc.stderr and "nan at row 4, column 1" in proc.stderr.lower()
    assert "--missing marginalize" in proc.stderr
    write_csv(tmp_path / "e.csv", Xm, missing="")
    proc = cuem("fit", "e.csv", "-k", 2, "-o", "m.json", expect=BAD_DATA)
    assert "e.csv:6: column 1 ('') is not a number" in proc.stderr and "--missing marginalize" in proc.stderr
    assert not (tmp_path / "m.json").exists()


def test_predict_and_score_refuse_nan_by_default(cuem, fitted, tmp_path):
    np.save(tmp_path / "x.npy", fitted["X"])
    row, col = np.argwhere(np.isnan(fitted["X"]))[0]  # the first in row-major order
    for command in ("predict", "score"):
        proc = cuem(command, fitted["path"], "x.npy", expect=BAD_DATA)
        assert f"nan at row {row}, column {col}" in proc.stderr.lower(), proc.stderr
        assert proc.stderr.count("--missing marginalize") == 1


@pytest.mark.parametrize("fmt", ["npy", "csv"])
def test_inf_is_bad_data_even_with_marginalize(cuem, tmp_path, fmt):
    _, Xm = data()
    Xm[7, 2] = np.inf
    if fmt == "npy":
        np.save(tmp_path / "x.npy", Xm)
    else:
        write_csv(tmp_path / "x.csv", Xm, missing="NA")
    proc = cuem("fit", f"x.{fmt}", "-k", 2, "--missing", "marginalize", "-o", "m.json", expect=BAD_DATA)
    assert "inf" in proc.stderr.lower() and "row 7, column 2" in proc.stderr
    assert not (tmp_path / "m.json").exists()


# ---- fit -----------------------------------------------------------------------------------

def test_fit_summary_counts_what_is_missing(fitted):
    out = fitted["fit"]
    assert out["missing"] == summary_of(fitted["X"])
    assert out["missing"]["empty_rows"] == 2 and out["missing"]["first_empty_rows"] == [4, 40]
    assert out["n_samples"] == 300 and out["converged"]


def test_fit_text_summary_and_note(make_cuem, fitted):
    c = make_cuem(fitted["folder"])
    proc = c("fit", "holes.npy", "-k", 3, "--seed", 0, "--missing", "marginalize", "-o", "again.json")
    s = summary_of(fitted["X"])
    assert (f"missing values: {s['missing_entries']} entries in {s['incomplete_rows']} rows, "
            f"{s['n_patterns']} patterns; 2 empty rows (every entry missing) skipped (0-based rows 4, 40)"
            in proc.stdout), proc.stdout
    assert "2 rows have every entry missing and carry no information: skipped (row 4, 40, 0-based)" in proc.stderr
    assert proc.stderr.count("every entry missing") == 1
    quiet = c("-q", "fit", "holes.npy", "-k", 3, "--seed", 0, "--missing", "marginalize", "-o", "again.json")
    assert quiet.stderr == ""


def test_fitted_model_maximises_the_observed_likelihood(fitted):
    """The model's mean observed log-likelihood (computed here) is the fit's lower bound, to
    the convergence tolerance, and the clusters are found."""
    logp, _, _, _ = reference(fitted["model"], fitted["X"])
    informative = ~np.isnan(fitted["X"]).all(axis=1)
    assert abs(logp[informative].mean() - fitted["fit"]["lower_bound"]) < 1e-6
    mu = np.asarray(fitted["model"]["means"])
    for true in MEANS:
        assert np.min(np.abs(mu - true).max(axis=1)) < 0.4, mu


def test_csv_missing_tokens_read_as_the_npy_nan(cuem, tmp_path):
    """Empty fields, NA, N/A, NaN and nan in CSV are the same missing entries as NaN in .npy:
    the same model, bit for bit (CSV numbers written with repr round-trip)."""
    _, Xm = data(seed=3, empty_rows=[0])
    np.save(tmp_path / "x.npy", Xm)
    write_csv(tmp_path / "x.csv", Xm, missing=["", "NA", "N/A", "NaN", "nan", "-nan"])
    a = cuem.json("fit", "x.npy", "-k", 3, "--seed", 1, "--missing", "marginalize")
    b = cuem.json("fit", "x.csv", "-k", 3, "--seed", 1, "--missing", "marginalize")
    assert b["missing"] == a["missing"] == summary_of(Xm)
    for key in ("weights", "means", "covariances"):
        assert a["model"][key] == b["model"][key], key
    assert a["lower_bound"] == b["lower_bound"]


def test_a_first_line_of_missing_values_is_data(cuem, tmp_path):
    """Without a header, a first line that is nothing but missing values is an empty row,
    not a header line."""
    _, Xm = data(seed=4, empty_rows=[0])
    write_csv(tmp_path / "x.csv", Xm, header="", missing="NA")
    out = cuem.json("fit", "x.csv", "-k", 2, "--missing", "marginalize")
    assert out["n_samples"] == 300 and out["missing"]["first_empty_rows"] == [0]


def test_marginalize_on_complete_data_is_the_same_fit(cuem, tmp_path):
    X, _ = data(seed=5)
    np.save(tmp_path / "x.npy", X)
    a = cuem.json("fit", "x.npy", "-k", 3, "--seed", 2)
    b = cuem.json("fit", "x.npy", "-k", 3, "--seed", 2, "--missing", "marginalize")
    assert a["model"] == b["model"] and a["lower_bound"] == b["lower_bound"]
    assert "missing" not in a
    assert b["missing"] == {"missing_entries": 0, "incomplete_rows": 0, "empty_rows": 0, "first_empty_rows": [],
                            "n_patterns": 0}


def test_report_draws_the_complete_rows(cuem, tmp_path):
    _, Xm = data(seed=6)
    np.save(tmp_path / "x.npy", Xm)
    proc = cuem("fit", "x.npy", "-k", 3, "--missing", "marginalize", "--report", "r.svg", "-o", "m.json")
    complete = int((~np.isnan(Xm).any(axis=1)).sum())
    assert f"the report draws the {complete} rows without a missing entry" in proc.stderr
    svg = (tmp_path / "r.svg").read_text()
    assert "<svg" in svg and "nan" not in svg.lower()


def test_select_with_missing_values(cuem, tmp_path):
    _, Xm = data(seed=7)
    np.save(tmp_path / "x.npy", Xm)
    out = cuem.json("select", "x.npy", "-k", "1:4", "--covariance", "full", "--missing", "marginalize")
    assert out["best"] == {"k": 3, "covariance": "full"}
    assert out["missing"] == summary_of(Xm)
    cuem("select", "x.npy", "-k", "1:2", expect=BAD_DATA)


# ---- predict and score ---------------------------------------------------------------------

def test_score_is_the_observed_marginal(cuem, fitted):
    X = fitted["X"]
    np.save(cuem.cwd / "x.npy", X)
    out = cuem.json("score", fitted["path"], "x.npy", "--missing", "marginalize")
    logp, _, _, _ = reference(fitted["model"], X)
    assert out["n_samples"] == len(X)
    # Over the rows with an observed entry: the two empty rows are absent, as in the fit.
    n = len(X) - 2
    np.testing.assert_allclose(out["mean_log_likelihood"], logp.sum() / n, rtol=1e-10)
    np.testing.assert_allclose(out["mean_log_likelihood"], fitted["fit"]["lower_bound"], atol=1e-6)
    p = n_parameters(fitted["model"])
    np.testing.assert_allclose(out["bic"], -2 * logp.sum() + p * np.log(n), rtol=1e-10)
    np.testing.assert_allclose(out["aic"], -2 * logp.sum() + 2 * p, rtol=1e-10)


def test_predict_posteriors_are_the_observed_marginals(cuem, fitted):
    X = fitted["X"]
    write_csv(cuem.cwd / "x.csv", X, missing="NA")
    cuem("predict", fitted["path"], "x.csv", "--missing", "marginalize", "-o", "labels.npy", "--proba", "p.npy")
    _, post, _, _ = reference(fitted["model"], X)
    proba = np.load(cuem.cwd / "p.npy")
    np.testing.assert_allclose(proba, post, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(np.load(cuem.cwd / "labels.npy"), np.argmax(post, axis=1))
    # The empty rows' posteriors are the weights.
    np.testing.assert_allclose(proba[[4, 40]], np.tile(fitted["model"]["weights"], (2, 1)), rtol=1e-12)


# ---- impute --------------------------------------------------------------------------------

@pytest.mark.parametrize("out", ["filled.npy", "filled.csv"])
def test_impute_fills_conditional_means(cuem, fitted, out):
    X = fitted["X"]
    np.save(cuem.cwd / "x.npy", X)
    result = cuem.json("impute", fitted["path"], "x.npy", "-o", out, "--variance", "var.npy")
    assert result["missing"] == summary_of(X) and result["n_samples"] == len(X)
    filled = np.load(cuem.cwd / out) if out.endswith(".npy") else np.loadtxt(cuem.cwd / out, delimiter=",")
    var = np.load(cuem.cwd / "var.npy")
    assert filled.shape == X.shape and var.shape == X.shape
    mask = np.isnan(X)
    np.testing.assert_array_equal(filled[~mask], X[~mask])  # observed entries as given
    assert np.all(var[~mask] == 0) and np.all(var[mask] > 0)
    _, _, ref_filled, ref_var = reference(fitted["model"], X)
    np.testing.assert_allclose(filled[mask], ref_filled[mask], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(var[mask], ref_var[mask], rtol=1e-8, atol=1e-9)
    mixture_mean = np.asarray(fitted["model"]["weights"]) @ np.asarray(fitted["model"]["means"])
    np.testing.assert_allclose(filled[[4, 40]], np.tile(mixture_mean, (2, 1)), rtol=1e-12)


def test_impute_text_output_keeps_the_header_and_reads_na(cuem, fitted):
    write_csv(cuem.cwd / "x.csv", fitted["X"][:20], header="a,b,c", missing="NA")
    proc = cuem("impute", fitted["path"], "x.csv", "-o", "filled.csv")
    lines = (cuem.cwd / "filled.csv").read_text().splitlines()
    assert lines[0] == "a,b,c" and len(lines) == 21 and "NA" not in "".join(lines) and "nan" not in "".join(lines)
    assert "filled data written to filled.csv" in proc.stdout
    assert "every entry missing" in proc.stderr  # row 4 of the 20


def test_impute_of_complete_data_changes_nothing(cuem, fitted):
    X, _ = data()
    np.save(cuem.cwd / "x.npy", X)
    cuem("impute", fitted["path"], "x.npy", "-o", "filled.npy")
    assert np.load(cuem.cwd / "filled.npy").tobytes() == X.tobytes()


def test_impute_errors(cuem, fitted, helpers):
    np.save(cuem.cwd / "x.npy", fitted["X"])
    np.save(cuem.cwd / "wide.npy", np.zeros((5, 4)))
    bad = fitted["X"].copy()
    bad[3, 0] = -np.inf
    np.save(cuem.cwd / "inf.npy", bad)
    (cuem.cwd / "broken.json").write_text("{not json")
    before = helpers.listing(cuem.cwd)
    proc = cuem("impute", fitted["path"], "x.npy", expect=USAGE)
    assert "-o" in proc.stderr
    cuem("impute", fitted["path"], "x.npy", "-o", "filled.json", expect=USAGE)
    proc = cuem("impute", fitted["path"], "wide.npy", "-o", "f.npy", expect=BAD_DATA)
    assert "4 features" in proc.stderr and "fitted to 3" in proc.stderr
    proc = cuem("impute", fitted["path"], "inf.npy", "-o", "f.npy", expect=BAD_DATA)
    assert "row 3, column 0" in proc.stderr
    cuem("impute", "broken.json", "x.npy", "-o", "f.npy", expect=BAD_DATA)
    cuem("impute", fitted["path"], "missing_file.npy", "-o", "f.npy", expect=BAD_DATA)
    helpers.assert_no_new_files(cuem.cwd, before)
