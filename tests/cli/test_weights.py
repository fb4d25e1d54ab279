"""--weights FILE (sample_weight) on fit, score and select: every data format as one
column, the weighted mean log-likelihood, BIC and AIC against a reference computed here,
integer weights against repeated rows, and every bad weights file refused with exit 3,
a message naming it and no output written.

Run: python -m pytest -q tests/cli/test_weights.py --cuem-bin=build/cuem
"""
import json
import pathlib

import numpy as np
import pytest

USAGE, BAD_DATA = 2, 3
COVARIANCES = ["full", "tied", "diag", "spherical"]


def two_blobs(n=60, d=2, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, (n // 2, d)), rng.normal(6, 1, (n - n // 2, d))])


def int_weights(n, seed=1, low=1, high=4):
    return np.random.default_rng(seed).integers(low, high, size=n).astype(np.float64)


def n_parameters(K, D, cov):
    """scikit-learn's GaussianMixture._n_parameters, written out."""
    cov_params = {"full": K * D * (D + 1) / 2, "tied": D * (D + 1) / 2, "diag": K * D, "spherical": K}[cov]
    return cov_params + K * D + K - 1


def write_weights(folder, name, w):
    """w in the format `name` asks for (one column)."""
    p = pathlib.Path(folder) / name
    if name.endswith(".npy"):
        np.save(p, w.reshape(-1, 1) if "column" in name else w)
    elif name.endswith(".bin"):
        w.astype(np.float64).tofile(p)
    elif name.endswith(".f32"):
        w.astype(np.float32).tofile(p)
    else:
        header = "weight\n" if "header" in name else ""
        p.write_text(header + "".join(f"{v!r}\n" for v in w.tolist()))
    return p


# ---- --help ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["fit", "score", "select"])
def test_help_documents_weights(cuem, command):
    text = " ".join(cuem(command, "--help").stdout.split())
    assert "--weights" in text and "one number >= 0 per row of DATA" in text and "exit 3" in text


# ---- score: the weighted mean, BIC and AIC ---------------------------------------------------

FORMATS = ["w.npy", "w_column.npy", "w.csv", "w_header.csv", "w.tsv", "w.txt", "w.bin", "w.f32"]


@pytest.mark.parametrize("cov", COVARIANCES)
def test_score_weighted_against_a_reference(cuem, tmp_path, blobs, helpers, cov):
    cuem("-q", "fit", blobs["X"], "-k", 3, "--covariance", cov, "--seed", 0, "-o", "m.json")
    X = np.load(blobs["X"])
    gm = helpers.sklearn_model(helpers.read_model_json(tmp_path / "m.json"))
    lp = gm.score_samples(X)  # scikit-learn's, not cuem's
    # Heavier on the less likely half, so that the weighted mean moves well away from the
    # plain one; quarters are exact in float32 too, so every format holds the same values.
    w = np.random.default_rng(3).integers(0, 4, size=len(X)) / 4.0 + 2.0 * (lp < np.median(lp))
    w[0] = 0.0
    total = float(np.sum(w * lp))
    p = n_parameters(3, X.shape[1], cov)
    results = []
    for name in FORMATS:
        write_weights(tmp_path, name, w)
        results.append(cuem.json("score", "m.json", blobs["X"], "--weights", name))
    s = results[0]
    assert s["n_samples"] == len(X)
    assert s["sum_weights"] == w.sum()
    assert s["mean_log_likelihood"] == pytest.approx(total / w.sum(), rel=1e-10)
    assert s["bic"] == pytest.approx(-2 * total + p * np.log(w.sum()), rel=1e-10)
    assert s["aic"] == pytest.approx(-2 * total + 2 * p, rel=1e-10)
    # The weights change the answer (a vacuous pass would not).
    plain = cuem.json("score", "m.json", blobs["X"])
    assert abs(plain["mean_log_likelihood"] - s["mean_log_likelihood"]) > 0.1
    assert "sum_weights" not in plain
    for name, other in zip(FORMATS, results):
        assert other == s, name


def test_score_ones_equal_no_weights(cuem, tmp_path, blobs):
    np.save(tmp_path / "ones.npy", np.ones(blobs["n"]))
    plain = cuem.json("score", blobs["model"], blobs["X"])
    ones = cuem.json("score", blobs["model"], blobs["X"], "--weights", "ones.npy")
    assert ones.pop("sum_weights") == blobs["n"]
    assert ones == plain  # bitwise: w = 1 multiplies nothing away


def test_score_integer_weights_equal_repeated_rows(cuem, tmp_path, blobs):
    X = np.load(blobs["X"])
    w = int_weights(len(X), low=0, high=4)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "rep.npy", np.repeat(X, w.astype(int), axis=0))
    weighted = cuem("score", blobs["model"], blobs["X"], "--weights", "w.npy").stdout.splitlines()
    repeated = cuem("score", blobs["model"], "rep.npy").stdout.splitlines()
    # The same numbers to the printed precision; only the count of points differs.
    assert weighted[0].split() == ["points", str(len(X))]
    assert weighted[1].split() == ["sum", "of", "weights", str(int(w.sum()))]
    assert repeated[0].split() == ["points", str(int(w.sum()))]
    assert weighted[2:] == repeated[1:]
    assert len(weighted) == 5


def test_score_weights_from_standard_input(cuem, tmp_path, blobs):
    w = int_weights(blobs["n"])
    np.save(tmp_path / "w.npy", w)
    from_file = cuem.json("score", blobs["model"], blobs["X"], "--weights", "w.npy")
    text = "".join(f"{v!r}\n" for v in w.tolist()).encode()
    assert cuem.json("score", blobs["model"], blobs["X"], "--weights", "-", stdin=text) == from_file
    assert cuem.json("score", blobs["model"], blobs["X"], "--weights", "-",
                     stdin=(tmp_path / "w.npy").read_bytes()) == from_file


# ---- stdin and outputs: usage errors -------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["fit", "-", "-k", 1, "--weights", "-"],
    ["select", "-", "-k", 1, "--weights", "-"],
    ["score", "MODEL", "-", "--weights", "-"],
    ["score", "-", "x.npy", "--weights", "-"],
], ids=["fit", "select", "score-data", "score-model"])
def test_weights_and_data_not_both_standard_input(cuem, tmp_path, blobs, args):
    np.save(tmp_path / "x.npy", np.load(blobs["X"]))
    args = [blobs["model"] if a == "MODEL" else a for a in args]
    proc = cuem(*args, expect=USAGE, stdin=b"1\n2\n")
    assert "cannot" in proc.stderr and "'-' (standard input)" in proc.stderr and "--weights" in proc.stderr


def test_output_may_not_replace_the_weights(cuem, tmp_path, blobs):
    w = tmp_path / "w.json"  # a text column, whatever its name
    w.write_text("".join("1\n" for _ in range(blobs["n"])))
    before = w.read_bytes()
    for command in (["fit", blobs["X"], "-k", 2], ["select", blobs["X"], "-k", "1:2"]):
        proc = cuem(*command, "--weights", "w.json", "-o", "w.json", expect=USAGE)
        assert "the output 'w.json' is the input 'w.json'" in proc.stderr, proc.stderr
        assert w.read_bytes() == before


# ---- bad weights: exit 3, the file named, nothing written --------------------------------------

def bad_two_columns(p, n):
    np.save(p / "bad.npy", np.ones((n, 2)))
    return "bad.npy", "2 columns"


def bad_two_csv_columns(p, n):
    (p / "bad.csv").write_text("".join("1,2\n" for _ in range(n)))
    return "bad.csv", "2 columns"


def bad_too_few(p, n):
    np.save(p / "bad.npy", np.ones(n - 1))
    return "bad.npy", f"{n - 1} weights for {n} rows"


def bad_too_many(p, n):
    (p / "bad.csv").write_text("".join("1\n" for _ in range(n + 1)))
    return "bad.csv", f"{n + 1} weights for {n} rows"


def bad_negative(p, n):
    w = np.ones(n)
    w[5] = -0.5
    np.save(p / "bad.npy", w)
    return "bad.npy", "sample_weight[5] is -0.5; weights must be finite and non-negative"


def bad_nan(p, n):
    w = np.ones(n)
    w[7] = np.nan
    np.save(p / "bad.npy", w)
    return "bad.npy", "sample_weight[7] is nan"


def bad_inf(p, n):
    w = np.ones(n)
    w[n - 1] = np.inf
    w.tofile(p / "bad.bin")
    return "bad.bin", f"sample_weight[{n - 1}] is inf"


def bad_all_zero(p, n):
    (p / "bad.txt").write_text("".join("0\n" for _ in range(n)))
    return "bad.txt", "zero for every row"


def bad_missing(p, n):
    return "absent.npy", "absent.npy"


def bad_not_numbers(p, n):
    (p / "bad.csv").write_text("weight\n" + "".join("heavy\n" for _ in range(n)))
    return "bad.csv", "bad.csv"


BAD = [bad_two_columns, bad_two_csv_columns, bad_too_few, bad_too_many, bad_negative, bad_nan, bad_inf,
       bad_all_zero, bad_missing, bad_not_numbers]
COMMANDS = {
    "fit": lambda x, m: ["fit", x, "-k", 2, "-o", "out.json", "--trace", "trace.csv", "--report", "r.svg"],
    "score": lambda x, m: ["score", m, x],
    "select": lambda x, m: ["select", x, "-k", "1:2", "-o", "out.json"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", BAD, ids=[c.__name__[4:] for c in BAD])
def test_bad_weights_exit_3_and_write_nothing(cuem, tmp_path, blobs, helpers, command, case):
    name, words = case(tmp_path, blobs["n"])
    before = helpers.listing(tmp_path)
    proc = cuem(*COMMANDS[command](blobs["X"], blobs["model"]), "--weights", name, expect=BAD_DATA)
    error = proc.stderr.splitlines()[-1]  # after fit's and select's notice on the data
    assert error.startswith(f"cuem: bad input data: ") and name in error and words in error, proc.stderr
    assert proc.stdout == ""
    helpers.assert_no_new_files(tmp_path, before)


# ---- fit and select with weights ---------------------------------------------------------------

def model_arrays(path):
    m = json.loads(pathlib.Path(path).read_text())
    return {k: np.asarray(m[k], dtype=np.float64) for k in ("weights", "means", "covariances")}


@pytest.mark.parametrize("cov", COVARIANCES)
def test_fit_integer_weights_equal_repeated_rows(cuem, tmp_path, cov):
    X = two_blobs(90, d=3, seed=4)
    w = int_weights(len(X))
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "w.npy", w)
    # Repeated in place, so that seeding over cumulative weights picks the same points.
    np.save(tmp_path / "rep.npy", np.repeat(X, w.astype(int), axis=0))
    args = ["-k", 3, "--covariance", cov, "--seed", 5]
    weighted = cuem.json("fit", "x.npy", *args, "--weights", "w.npy", "-o", "mw.json")
    repeated = cuem.json("fit", "rep.npy", *args, "-o", "mr.json")
    assert weighted["sum_weights"] == w.sum() and weighted["n_samples"] == len(X)
    assert "sum_weights" not in repeated
    for key in ("lower_bound", "bic", "aic"):
        assert weighted[key] == pytest.approx(repeated[key], rel=1e-10), key
    assert weighted["n_iter"] == repeated["n_iter"]
    mw, mr = model_arrays(tmp_path / "mw.json"), model_arrays(tmp_path / "mr.json")
    for key in mw:
        np.testing.assert_allclose(mw[key], mr[key], rtol=1e-10, atol=1e-12, err_msg=key)
    # The text output carries the same numbers to its printed precision.
    tw = cuem("-q", "fit", "x.npy", *args, "--weights", "w.npy").stdout.splitlines()
    tr = cuem("-q", "fit", "rep.npy", *args).stdout.splitlines()
    assert tw[:2] == tr[:2]
    assert tw[2] == f"weights from w.npy, sum {int(w.sum())}"


def test_fit_zero_weights_drop_rows(cuem, tmp_path):
    X = two_blobs(80, d=2, seed=6)
    w = np.ones(len(X))
    w[::5] = 0.0
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "kept.npy", X[w > 0])
    weighted = cuem.json("fit", "x.npy", "-k", 2, "--seed", 1, "--weights", "w.npy", "-o", "mw.json")
    kept = cuem.json("fit", "kept.npy", "-k", 2, "--seed", 1, "-o", "mk.json")
    for key in ("lower_bound", "bic", "aic"):
        assert weighted[key] == pytest.approx(kept[key], rel=1e-12), key
    mw, mk = model_arrays(tmp_path / "mw.json"), model_arrays(tmp_path / "mk.json")
    for key in mw:
        np.testing.assert_allclose(mw[key], mk[key], rtol=1e-12, atol=1e-14, err_msg=key)


def test_select_integer_weights_equal_repeated_rows(cuem, tmp_path):
    X = two_blobs(90, d=2, seed=7)
    w = int_weights(len(X), seed=8)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "rep.npy", np.repeat(X, w.astype(int), axis=0))
    args = ["-k", "1:3", "--covariance", "full,diag", "--seed", 2]
    weighted = cuem.json("select", "x.npy", *args, "--weights", "w.npy")
    repeated = cuem.json("select", "rep.npy", *args)
    assert weighted.pop("sum_weights") == w.sum()
    assert weighted["best"] == repeated["best"]
    assert len(weighted["candidates"]) == len(repeated["candidates"]) == 6
    for cw, cr in zip(weighted["candidates"], repeated["candidates"]):
        assert cw["ok"] and cr["ok"]
        for key in ("lower_bound", "bic", "aic"):
            assert cw[key] == pytest.approx(cr[key], rel=1e-10), (cw["k"], cw["covariance"], key)


def test_select_counts_only_points_of_positive_weight(cuem, tmp_path):
    X = two_blobs(20, d=2, seed=9)
    w = np.zeros(len(X))
    w[[0, 1, 12]] = 1.0
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "w.npy", w)
    out = cuem("select", "x.npy", "-k", "1:5", "--seed", 0, "--weights", "w.npy").stdout
    assert "skipped: more components than the 3 points of positive weight" in out
