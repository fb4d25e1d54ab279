"""The online and incremental forms of the command line (docs/ONLINE.md):
`cuem fit --incremental-blocks B`, `cuem fit --chunk-rows R` (out of core) and
`cuem fit-online FILE...` (stepwise EM over a stream of batches), their summaries and
their bad input: a clear exit code, and no model file left behind."""
import csv
import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def data(make_cuem, tmp_path_factory):
    folder = tmp_path_factory.mktemp("online")
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, 0.0], [1.0, 6.0, 2.0]])
    X = np.vstack([rng.normal(c, 1.0, (3000, 3)) for c in centres])[rng.permutation(9000)]
    np.save(folder / "x.npy", X)
    for i in range(3):
        np.save(folder / f"part{i}.npy", X[i * 3000:(i + 1) * 3000])
    np.save(folder / "two_columns.npy", X[:100, :2])
    np.save(folder / "empty.npy", np.empty((0, 3)))
    return make_cuem(folder)


def test_incremental_blocks_fit_and_trace(data):
    batch = data.json("fit", "x.npy", "-k", "3", "--tol", "1e-10", "--max-iter", "2000")
    inc = data.json("fit", "x.npy", "-k", "3", "--tol", "1e-10", "--max-iter", "2000", "--incremental-blocks", "6",
                    "--trace", "inc.csv")
    assert inc["incremental_blocks"] == 6 and batch["incremental_blocks"] == 1
    assert inc["converged"] and inc["n_decreases"] == 0
    assert inc["lower_bound"] == pytest.approx(batch["lower_bound"], abs=1e-8)
    with open(data.cwd / "inc.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 + (inc["n_iter"] - 1) * 6
    values = [float(r["mean_log_likelihood"]) for r in rows]
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:]))
    text = data("fit", "x.npy", "-k", "3", "--incremental-blocks", "6").stdout
    assert "incremental EM over 6 blocks" in text


def test_chunked_fit_matches_its_in_memory_criteria(data):
    chunked = data.json("fit", "x.npy", "-k", "3", "--chunk-rows", "1000", "--tol", "1e-10", "--max-iter", "2000")
    assert "out of core in chunks of 1000 rows" in chunked["device"]
    # The chunked criteria equal `cuem score`'s on the same model.
    (data.cwd / "chunked.json").write_text(json.dumps(chunked["model"]))
    s = data.json("score", "chunked.json", "x.npy")
    assert chunked["bic"] == pytest.approx(s["bic"], rel=1e-10)
    assert chunked["aic"] == pytest.approx(s["aic"], rel=1e-10)


def test_fit_online_over_files(data):
    out = data.json("fit-online", "part0.npy", "part1.npy", "part2.npy", "-k", "3", "--batch-size", "500",
                    "--epochs", "3", "--seed", "1", "-o", "online.json")
    assert out["n_batches"] == 3 * 18 and out["n_points_seen"] == 3 * 9000
    data.json("fit", "x.npy", "-k", "3", "--tol", "1e-10", "--max-iter", "2000", "-o", "batch.json")
    online = data.json("score", "online.json", "x.npy")
    best = data.json("score", "batch.json", "x.npy")
    assert best["mean_log_likelihood"] - 2e-3 < online["mean_log_likelihood"] <= best["mean_log_likelihood"] + 1e-9


def test_fit_online_bad_input_writes_nothing(data):
    p = data("fit-online", "part0.npy", "two_columns.npy", "-k", "3", "-o", "bad1.json", expect=3)
    assert "2 columns" in p.stderr and not (data.cwd / "bad1.json").exists()
    p = data("fit-online", "part0.npy", "empty.npy", "-k", "3", "-o", "bad2.json", expect=3)
    assert not (data.cwd / "bad2.json").exists()
    for decay in ("0.5", "1.2"):
        p = data("fit-online", "part0.npy", "-k", "3", "--learning-decay", decay, "-o", "bad3.json", expect=2)
        assert "(0.5, 1]" in p.stderr and not (data.cwd / "bad3.json").exists()
    data("fit-online", "part0.npy", "-k", "3", "--save-every", "2", expect=2)


@pytest.mark.parametrize("flag", [["--tol", "1e-3"], ["--max-iter", "5"], ["--n-init", "2"],
                                  ["--acceleration", "squarem"]])
def test_fit_online_refuses_the_batch_fits_stopping_and_restart_options(data, flag):
    # A stream takes one step per batch: these would be ignored, so they are unexpected arguments.
    p = data("fit-online", "part0.npy", "-k", "3", *flag, "-o", "bad4.json", expect=2)
    assert flag[0] in p.stderr and not (data.cwd / "bad4.json").exists()
