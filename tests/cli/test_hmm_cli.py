"""Gaussian HMMs on the command line: `cuem fit --model hmm --lengths FILE`, `cuem decode`,
and `cuem score` / `cuem sample` on an HMM file. The file's parameters, put into
hmmlearn's GaussianHMM, give the reference for score, Viterbi states and posteriors; the
mixture commands refuse an HMM file and name `cuem decode`; bad lengths exit 3 and write
nothing; --missing marginalize fits, scores and decodes frames with NaN entries; --n-mix M
fits a GMMHMM (kind "gmm_hmm"), checked against hmmlearn's GMMHMM holding its parameters.

Run: python -m pytest -q tests/cli/test_hmm_cli.py --cuem-bin=build/cuem
"""
import csv
import json

import numpy as np
import pytest

hmm = pytest.importorskip("hmmlearn.hmm", reason="hmmlearn is in scripts/test.sh's .venv")

OK, USAGE, BAD_DATA = 0, 2, 3
LENGTHS = [300, 7, 200, 493]


def _write_data(folder, seed=0):
    rng = np.random.default_rng(seed)
    X, s = [], 0
    for T in LENGTHS:
        for _ in range(T):
            s = s if rng.random() < 0.9 else int(rng.integers(3))
            X.append(rng.normal(size=2) + [4.0 * s, -3.0 * s])
    np.save(folder / "x.npy", np.array(X))
    (folder / "len.txt").write_text("\n".join(map(str, LENGTHS)) + "\n")
    return np.array(X)


def _reference(model):
    """hmmlearn's GaussianHMM holding the file's parameters."""
    ref = hmm.GaussianHMM(n_components=model["n_components"], covariance_type=model["covariance_type"],
                          init_params="")
    ref.startprob_ = np.array(model["startprob"])
    ref.transmat_ = np.array(model["transmat"])
    ref.means_ = np.array(model["means"])
    ref.covars_ = np.array(model["covariances"])
    ref.n_features = len(model["means"][0])
    return ref


@pytest.mark.parametrize("covariance", ["full", "diag", "spherical", "tied"])
def test_fit_decode_score_against_hmmlearn(cuem, tmp_path, covariance):
    X = _write_data(tmp_path)
    s = cuem.json("fit", "x.npy", "--model", "hmm", "-k", 3, "--covariance", covariance, "--lengths", "len.txt",
                  "--max-iter", 30, "--tol", 1e-9, "-o", "m.json", "--trace", "t.csv")
    assert s["model"] == "hmm" and s["n_sequences"] == 4 and s["n_samples"] == 1000
    model = json.loads((tmp_path / "m.json").read_text())
    assert model["kind"] == "gaussian_hmm" and model["version"] == 3
    with open(tmp_path / "t.csv") as f:
        bounds = [float(r["mean_log_likelihood"]) for r in csv.DictReader(f)]
    assert len(bounds) == s["n_iter"]
    assert all(b >= a - 1e-10 * abs(a) for a, b in zip(bounds, bounds[1:]))
    ref = _reference(model)

    score = cuem.json("score", "m.json", "x.npy", "--lengths", "len.txt")
    assert score["log_likelihood"] == pytest.approx(ref.score(X, LENGTHS), rel=1e-10)
    assert score["bic"] == pytest.approx(ref.bic(X, LENGTHS), rel=1e-10)

    cuem("decode", "m.json", "x.npy", "--lengths", "len.txt", "-o", "states.npy", "--proba", "p.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "states.npy"), ref.predict(X, LENGTHS))
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), ref.predict_proba(X, LENGTHS), atol=1e-10)
    d = cuem.json("decode", "m.json", "x.npy", "--lengths", "len.txt", "--algorithm", "map")
    np.testing.assert_array_equal(d["states"], ref.decode(X, LENGTHS, algorithm="map")[1])


def test_mixture_commands_refuse_an_hmm_and_sample_takes_it(cuem, tmp_path):
    _write_data(tmp_path)
    cuem("fit", "x.npy", "--model", "hmm", "-k", 3, "--lengths", "len.txt", "-o", "m.json")
    p = cuem("predict", "m.json", "x.npy", expect=BAD_DATA)
    assert "cuem decode" in p.stderr
    cuem("sample", "m.json", "-n", 50, "-o", "s.npy", "--labels", "z.npy", "--seed", 4)
    assert np.load(tmp_path / "s.npy").shape == (50, 2)
    states = np.load(tmp_path / "z.npy")
    assert states.shape == (50,) and states.min() >= 0 and states.max() < 3


@pytest.mark.parametrize("text, message", [("300 7 200", "sum to 507"), ("300 0 200 500", "has length 0"),
                                           ("300 7 x 493", "not an integer"), ("300 -7 200 507", "has length -7")])
def test_bad_lengths_exit_3_and_write_nothing(cuem, tmp_path, text, message):
    _write_data(tmp_path)
    (tmp_path / "bad.txt").write_text(text)
    p = cuem("fit", "x.npy", "--model", "hmm", "-k", 3, "--lengths", "bad.txt", "-o", "m.json", expect=BAD_DATA)
    assert message in p.stderr
    assert not (tmp_path / "m.json").exists()


def test_hmm_options_refused_elsewhere(cuem, tmp_path):
    _write_data(tmp_path)
    p = cuem("fit", "x.npy", "-k", 3, "--lengths", "len.txt", expect=USAGE)
    assert "--model hmm" in p.stderr
    p = cuem("fit", "x.npy", "--model", "hmm", "-k", 3, "--acceleration", "fast", expect=USAGE)
    assert "--acceleration" in p.stderr


def test_hmm_fit_with_squarem_reaches_the_plain_fits_likelihood(cuem, tmp_path):
    _write_data(tmp_path)
    common = ["fit", "x.npy", "--model", "hmm", "-k", 3, "--lengths", "len.txt", "--tol", 1e-9, "--max-iter", 5000,
              "--seed", 1]
    plain = cuem.json(*common, "-o", "p.json")
    fast = cuem.json(*common, "-o", "s.json", "--acceleration", "squarem")
    assert plain["acceleration"] == "none" and fast["acceleration"] == "squarem"
    assert plain["converged"] and fast["converged"]
    assert plain["n_estep_passes"] == plain["n_iter"]
    assert fast["lower_bound"] >= plain["lower_bound"] - 1e-9
    assert fast["lower_bound"] == pytest.approx(plain["lower_bound"], abs=1e-6)


def test_hmm_fit_with_incremental_blocks_reaches_the_plain_fits_likelihood(cuem, tmp_path):
    _write_data(tmp_path)
    common = ["fit", "x.npy", "--model", "hmm", "-k", 3, "--lengths", "len.txt", "--tol", 1e-10, "--max-iter", 2000,
              "--seed", 1]
    plain = cuem.json(*common, "-o", "p.json")
    inc = cuem.json(*common, "-o", "i.json", "--incremental-blocks", 4)  # one sequence a block
    assert plain["converged"] and inc["converged"]
    # The same fixed point from the same start (the incremental bound adds the log prior / N).
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("p.json", "i.json"))
    np.testing.assert_allclose(b["means"], a["means"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b["transmat"], a["transmat"], rtol=1e-5, atol=1e-6)
    # Blocks hold whole sequences: more blocks than sequences is refused, nothing written.
    p = cuem(*common, "-o", "bad.json", "--incremental-blocks", 5, expect=USAGE)
    assert "sequences" in p.stderr
    assert not (tmp_path / "bad.json").exists()
    p = cuem(*common, "-o", "bad.json", "--incremental-blocks", 2, "--n-mix", 2, expect=USAGE)
    assert "--incremental-blocks" in p.stderr


def test_hmm_max_block_steps_stops_incremental_em_part_way(cuem, tmp_path):
    """--max-block-steps S with --incremental-blocks B: the trace is the unlimited fit's first
    S block steps, bitwise; S = B x P steps is the same fit as --max-iter P; without B > 1 it
    is a usage error and nothing is written."""
    _write_data(tmp_path)
    common = ["fit", "x.npy", "--model", "hmm", "-k", 3, "--lengths", "len.txt", "--tol", 0, "--seed", 1,
              "--incremental-blocks", 4]
    cuem.json(*common, "--max-iter", 5, "--trace", "all.csv", "-o", "all.json")
    part = cuem.json(*common, "--max-iter", 5, "--max-block-steps", 6, "--trace", "six.csv", "-o", "six.json")
    assert not part["converged"]
    # init, iteration and mean log-likelihood of each row (not its seconds)
    rows = [[r.split(",")[:3] for r in (tmp_path / name).read_text().splitlines()] for name in ("all.csv", "six.csv")]
    assert len(rows[0]) == 1 + 1 + 4 * 4  # the header; the first pass (full) is one row, then B a pass
    assert rows[1] == rows[0][:1 + 6]
    cuem.json(*common, "--max-iter", 2, "-o", "two_passes.json")
    cuem.json(*common, "--max-iter", 5, "--max-block-steps", 1 + 4, "-o", "five_steps.json")
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("two_passes.json", "five_steps.json"))
    for key in ("startprob", "transmat", "means", "covariances"):
        assert a[key] == b[key], key
    p = cuem("fit", "x.npy", "--model", "hmm", "-k", 3, "--lengths", "len.txt", "--max-block-steps", 3, "-o", "bad.json",
             expect=USAGE)
    assert "--max-block-steps" in p.stderr and not (tmp_path / "bad.json").exists()


def test_missing_entries_marginalised(cuem, tmp_path):
    """--missing marginalize for HMMs: NaN entries missing at random. The score is checked
    against a forward pass written here over the diagonal Gaussians' marginal densities
    (a diagonal density's marginal is the product over the observed features)."""
    X = _write_data(tmp_path, seed=3)
    rng = np.random.default_rng(5)
    X[rng.uniform(size=X.shape) < 0.2] = np.nan
    X[[10, 400]] = np.nan  # frames with nothing observed
    np.save(tmp_path / "xn.npy", X)
    p = cuem("fit", "xn.npy", "--model", "hmm", "-k", 3, "--lengths", "len.txt", "-o", "m.json", expect=BAD_DATA)
    assert "missing" in p.stderr and not (tmp_path / "m.json").exists()
    s = cuem.json("fit", "xn.npy", "--model", "hmm", "-k", 3, "--covariance", "diag", "--lengths", "len.txt",
                  "--missing", "marginalize", "--max-iter", 20, "--tol", 1e-9, "-o", "m.json")
    n_empty = int(np.isnan(X).all(1).sum())
    assert any(f"{n_empty} frames have every entry missing" in n for n in s["notices"])
    model = json.loads((tmp_path / "m.json").read_text())
    means, var = np.array(model["means"]), np.array(model["covariances"])
    obs = ~np.isnan(X)
    z = np.where(obs[:, None, :], (np.nan_to_num(X)[:, None, :] - means) ** 2 / var + np.log(2 * np.pi * var), 0.0)
    log_b = -0.5 * z.sum(2)
    log_a, total, lo = np.log(np.array(model["transmat"])), 0.0, 0
    for T in LENGTHS:
        alpha = np.log(np.array(model["startprob"])) + log_b[lo]
        for t in range(1, T):
            v = alpha[:, None] + log_a
            alpha = np.log(np.exp(v - v.max(0)).sum(0)) + v.max(0) + log_b[lo + t]
        total += np.log(np.exp(alpha - alpha.max()).sum()) + alpha.max()
        lo += T
    score = cuem.json("score", "m.json", "xn.npy", "--lengths", "len.txt", "--missing", "marginalize")
    assert score["log_likelihood"] == pytest.approx(total, rel=1e-10)
    cuem("decode", "m.json", "xn.npy", "--lengths", "len.txt", "--missing", "marginalize", "-o", "states.npy")
    states = np.load(tmp_path / "states.npy")
    assert states.shape == (len(X),) and states.min() >= 0 and states.max() < 3
    cuem("decode", "m.json", "xn.npy", "--lengths", "len.txt", "-o", "bad.npy", expect=BAD_DATA)


@pytest.mark.parametrize("covariance", ["full", "diag", "spherical", "tied"])
def test_gmmhmm_fit_decode_score_against_hmmlearn(cuem, tmp_path, covariance):
    """--n-mix M fits a GMMHMM (model kind "gmm_hmm"); its file's parameters, put into
    hmmlearn's GMMHMM, give the reference for score, Viterbi states and posteriors."""
    X = _write_data(tmp_path, seed=1)
    s = cuem.json("fit", "x.npy", "--model", "hmm", "-k", 3, "--n-mix", 2, "--covariance", covariance, "--lengths",
                  "len.txt", "--max-iter", 10, "-o", "g.json")
    assert s["model"] == "gmmhmm"
    model = json.loads((tmp_path / "g.json").read_text())
    assert model["kind"] == "gmm_hmm" and model["n_mix"] == 2
    ref = hmm.GMMHMM(n_components=3, n_mix=2, covariance_type=covariance, init_params="")
    ref.startprob_ = np.array(model["startprob"])
    ref.transmat_ = np.array(model["transmat"])
    ref.weights_ = np.array(model["weights"])
    ref.means_ = np.array(model["means"])
    ref.covars_ = np.array(model["covariances"])
    ref.n_features = 2
    score = cuem.json("score", "g.json", "x.npy", "--lengths", "len.txt")
    assert score["kind"] == "gmm_hmm"
    assert score["log_likelihood"] == pytest.approx(ref.score(X, LENGTHS), rel=1e-10)
    assert score["bic"] == pytest.approx(ref.bic(X, LENGTHS), rel=1e-10)
    cuem("decode", "g.json", "x.npy", "--lengths", "len.txt", "-o", "states.npy", "--proba", "p.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "states.npy"), ref.predict(X, LENGTHS))
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), ref.predict_proba(X, LENGTHS), atol=1e-10)
    p = cuem("predict", "g.json", "x.npy", expect=BAD_DATA)
    assert "cuem decode" in p.stderr
    cuem("sample", "g.json", "-n", 5, "-o", "s.npy", "--labels", "z.npy")
    assert np.load(tmp_path / "s.npy").shape == (5, 2) and np.load(tmp_path / "z.npy").max() < 3
    p = cuem("fit", "x.npy", "-k", 3, "--n-mix", 2, expect=USAGE)
    assert "--n-mix" in p.stderr
