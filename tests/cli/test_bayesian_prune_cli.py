"""`cuem fit --model bayesian --prune-threshold X [--prune-patience N]`: pruning during the
variational fit (beyond scikit-learn, off by default). Ten components on three
well-separated clusters end as three at the clusters' centres; the summary and the model
file say so; without the flags the output is the same as before; bad values exit 2.

Run: python -m pytest -q tests/cli/test_bayesian_prune_cli.py --cuem-bin=build/cuem
"""
import csv
import json

import numpy as np
import pytest

OK, USAGE = 0, 2
CENTRES = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
BASE = ["fit", "x.npy", "-k", 10, "--model", "bayesian", "--weight-concentration-prior", 0.001, "--seed", 0,
        "--tol", 1e-8, "--max-iter", 500]


def three_clusters(path, n_per=150, seed=5):
    rng = np.random.default_rng(seed)
    X = np.concatenate([c + rng.standard_normal((n_per, 2)) for c in CENTRES])
    X = X[rng.permutation(len(X))]
    np.save(path, X)
    return X


def test_prunes_ten_components_to_the_three_clusters(cuem, tmp_path):
    three_clusters(tmp_path / "x.npy")
    s = cuem.json(*BASE, "--prune-threshold", 0.01, "--prune-patience", 5, "-o", "b.json", "--trace", "t.csv")
    assert s["n_components_start"] == 10
    assert s["n_components"] == 3
    assert len(s["kept_components"]) == 3
    removed = [k for e in s["prunes"] for k in e["components"]]
    assert sorted(removed + s["kept_components"]) == list(range(10))
    assert all(e["iteration"] >= 5 for e in s["prunes"])
    with open(tmp_path / "b.json") as f:
        model = json.load(f)
    assert model["n_components"] == 3
    means = np.asarray(model["means"])
    dist = np.linalg.norm(means[:, None, :] - CENTRES[None, :, :], axis=2)
    assert np.all((dist < 0.3).sum(axis=0) == 1), dist
    with open(tmp_path / "t.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == s["n_iter"] > s["prunes"][-1]["iteration"] + 1  # the fit went on after the last prune
    bounds = [float(r["lower_bound"]) for r in rows]
    after_prune = {e["iteration"] for e in s["prunes"]}
    for i in range(1, len(bounds)):
        if i not in after_prune:
            assert bounds[i] >= bounds[i - 1] - 1e-9 * abs(bounds[i - 1]), i + 1
    assert s["n_decreases"] == 0 and s["converged"] is True


def test_text_summary_says_what_was_pruned(cuem, tmp_path):
    three_clusters(tmp_path / "x.npy")
    s = cuem.json(*BASE, "--prune-threshold", 0.01, "--prune-patience", 5, "-o", "b.json")
    out = cuem("-q", *BASE, "--prune-threshold", 0.01, "--prune-patience", 5, "-o", "b2.json").stdout
    assert "pruning (share below 0.01 for 5 iterations): removed 7 of 10 components" in out, out
    for e in s["prunes"]:
        assert f"at iteration {e['iteration']}: " + " ".join(str(k) for k in e["components"]) in out
    kept = next(l for l in out.splitlines() if l.startswith("kept components"))
    assert [int(t) for t in kept.split(":")[1].split()] == s["kept_components"]


def test_without_the_flags_nothing_is_pruned_and_the_model_is_the_same(cuem, tmp_path):
    three_clusters(tmp_path / "x.npy")
    plain = cuem.json(*BASE, "-o", "a.json")
    off = cuem.json(*BASE, "--prune-threshold", 0, "--prune-patience", 3, "-o", "b.json")
    assert plain["n_components"] == off["n_components"] == 10
    assert plain["kept_components"] == list(range(10)) and plain["prunes"] == []
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    out = cuem("-q", *BASE, "-o", "c.json").stdout
    assert "pruning" not in out


@pytest.mark.parametrize("extra,says", [
    (["--prune-threshold", "-0.1"], "prune_threshold must be at least 0"),
    (["--prune-threshold", "1"], "prune_threshold must be at least 0"),
    (["--prune-threshold", "nan"], "must be a finite number"),
    (["--prune-threshold", "0.01", "--prune-patience", "0"], "prune_patience must be at least 1"),
    (["--prune-patience", "4"], "--prune-patience needs --prune-threshold"),
])
def test_bad_prune_values_exit_2(cuem, tmp_path, extra, says):
    three_clusters(tmp_path / "x.npy")
    r = cuem("fit", "x.npy", "-k", 4, "--model", "bayesian", "-o", "b.json", *extra, expect=USAGE)
    assert says in r.stderr, r.stderr
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize("flag", [["--prune-threshold", "0.01"], ["--prune-patience", "3"]])
def test_prune_flags_without_model_bayesian_exit_2(cuem, tmp_path, flag):
    three_clusters(tmp_path / "x.npy")
    r = cuem("fit", "x.npy", "-k", 3, "-o", "g.json", *flag, expect=USAGE)
    assert "--prune-threshold and --prune-patience apply to --model bayesian only" in r.stderr
    assert not (tmp_path / "g.json").exists()
