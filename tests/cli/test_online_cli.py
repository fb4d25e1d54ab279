"""The online and incremental forms of the command line (docs/ONLINE.md):
`cuem fit --incremental-blocks B`, `cuem fit --chunk-rows R` (out of core) and
`cuem fit-online FILE...` (stepwise EM over a stream of batches), their summaries and
their bad input: a clear exit code, and no model file left behind (a data file that
changes while read: exit 6)."""
import csv
import json
import os
import time

import numpy as np
import pytest

from conftest import listing

INPUT_CHANGED = 6  # exit code: an input file changed while it was read


def three_blobs(seed, n, d=3):
    """n points around each of three centres (unit spread), shuffled."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, 0.0], [1.0, 6.0, 2.0]])[:, :d]
    return np.vstack([rng.normal(c, 1.0, (n, d)) for c in centres])[rng.permutation(3 * n)], rng


@pytest.fixture(scope="module")
def data(make_cuem, tmp_path_factory):
    folder = tmp_path_factory.mktemp("online")
    X, _ = three_blobs(0, 3000)
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


def test_incremental_first_pass_fit_and_trace(data):
    batch = data.json("fit", "x.npy", "-k", "3", "--tol", "1e-10", "--max-iter", "2000")
    inc = data.json("fit", "x.npy", "-k", "3", "--tol", "1e-10", "--max-iter", "2000", "--incremental-blocks", "6",
                    "--first-pass", "incremental", "--trace", "inc_first.csv")
    assert inc["first_pass"] == "incremental" and "first_pass" not in batch
    assert inc["converged"] and inc["n_decreases"] == 0
    assert inc["lower_bound"] == pytest.approx(batch["lower_bound"], abs=1e-8)
    with open(data.cwd / "inc_first.csv") as f:
        values = [float(r["mean_log_likelihood"]) for r in csv.DictReader(f)]
    assert len(values) == inc["n_iter"] * 6  # the first pass has a row per block too
    assert all(b >= a - 1e-12 for a, b in zip(values[5:], values[6:]))  # from the first complete bound on
    assert "incremental first pass" in data("fit", "x.npy", "-k", "3", "--incremental-blocks", "6",
                                            "--first-pass", "incremental").stdout


def test_max_block_steps_stops_part_way(data):
    full = data.json("fit", "x.npy", "-k", "3", "--incremental-blocks", "6", "--first-pass", "incremental",
                     "--tol", "0", "--max-iter", "3", "--trace", "all_steps.csv")
    part = data.json("fit", "x.npy", "-k", "3", "--incremental-blocks", "6", "--first-pass", "incremental",
                     "--tol", "0", "--max-iter", "3", "--max-block-steps", "4", "--trace", "four_steps.csv",
                     "-o", "four_steps.json")
    assert part["max_block_steps"] == 4 and "max_block_steps" not in full
    assert not part["converged"] and part["n_iter"] == 1
    with open(data.cwd / "all_steps.csv") as f:
        every = list(csv.DictReader(f))
    with open(data.cwd / "four_steps.csv") as f:
        four = list(csv.DictReader(f))
    assert len(every) == 18 and len(four) == 4
    # The same steps as the unlimited fit's first four.
    assert [r["mean_log_likelihood"] for r in four] == [r["mean_log_likelihood"] for r in every[:4]]
    assert (data.cwd / "four_steps.json").exists()
    assert "limited to 4 block steps" in data("fit", "x.npy", "-k", "3", "--incremental-blocks", "6",
                                              "--max-block-steps", "4").stdout


@pytest.mark.parametrize("extra", [["--max-block-steps", "3"], ["--max-block-steps", "-1", "--incremental-blocks", "6"],
                                   ["--max-block-steps", "3", "--model", "hmm"],
                                   ["--max-block-steps", "3", "--model", "bayesian"]])
def test_max_block_steps_bad_uses_are_usage_errors(data, extra):
    proc = data("fit", "x.npy", "-k", "3", *extra, "-o", "bad_steps.json", expect=2)
    assert "max-block-steps" in proc.stderr
    assert not (data.cwd / "bad_steps.json").exists()


@pytest.mark.parametrize("extra", [["--first-pass", "half"], ["--first-pass", "full", "--model", "hmm"],
                                   ["--first-pass", "full", "--model", "bayesian"]])
def test_first_pass_bad_uses_are_usage_errors(data, extra):
    proc = data("fit", "x.npy", "-k", "3", "--incremental-blocks", "6", *extra, "-o", "bad_first.json", expect=2)
    assert "first-pass" in proc.stderr or "first_pass" in proc.stderr
    assert not (data.cwd / "bad_first.json").exists()


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


@pytest.fixture(scope="module")
def weighted(make_cuem, tmp_path_factory):
    """Three parts with integer weights 1-3 and the same rows repeated by their weights."""
    folder = tmp_path_factory.mktemp("online_weights")
    X, rng = three_blobs(3, 1500, d=2)
    w = rng.integers(1, 4, len(X)).astype(float)
    np.save(folder / "x.npy", X)
    np.save(folder / "w.npy", w)
    for i in range(3):
        np.save(folder / f"p{i}.npy", X[i * 1500:(i + 1) * 1500])
        np.save(folder / f"w{i}.npy", w[i * 1500:(i + 1) * 1500])
    np.save(folder / "zero.npy", np.zeros(1500))
    np.save(folder / "short.npy", np.ones(10))
    return make_cuem(folder)


def test_fit_online_weights_reach_the_weighted_batch_fit(weighted):
    c = weighted
    out = c.json("fit-online", "p0.npy", "p1.npy", "p2.npy", "--weights", "w0.npy", "w1.npy", "w2.npy", "-k", "3",
                 "--batch-size", "300", "--epochs", "4", "--seed", "2", "-o", "online.json")
    assert out["n_batches"] == 4 * 15
    c.json("fit", "x.npy", "--weights", "w.npy", "-k", "3", "--tol", "1e-10", "--max-iter", "2000", "-o", "batch.json")
    online = c.json("score", "online.json", "x.npy", "--weights", "w.npy")["mean_log_likelihood"]
    best = c.json("score", "batch.json", "x.npy", "--weights", "w.npy")["mean_log_likelihood"]
    assert best - 2e-3 < online <= best + 1e-9
    # Unweighted, the stream ends elsewhere: the weights were used.
    c.json("fit-online", "p0.npy", "p1.npy", "p2.npy", "-k", "3", "--batch-size", "300", "--epochs", "4",
           "--seed", "2", "-o", "plain.json")
    assert json.loads((c.cwd / "plain.json").read_text())["means"] != json.loads((c.cwd / "online.json").read_text())["means"]


def test_fit_online_bad_weights_write_nothing(weighted):
    c = weighted
    p = c("fit-online", "p0.npy", "p1.npy", "--weights", "w0.npy", "-k", "3", "-o", "bad.json", expect=2)
    assert "one weights file per data file" in p.stderr
    p = c("fit-online", "p0.npy", "--weights", "short.npy", "-k", "3", "-o", "bad.json", expect=3)
    assert "10 weights for 1500 rows" in p.stderr
    p = c("fit-online", "p0.npy", "p1.npy", "--weights", "w0.npy", "zero.npy", "-k", "3", "-o", "bad.json", expect=3)
    assert not (c.cwd / "bad.json").exists()


@pytest.fixture(scope="module")
def holes(make_cuem, tmp_path_factory):
    folder = tmp_path_factory.mktemp("online_missing")
    X, rng = three_blobs(5, 1500)
    X[rng.random(X.shape) < 0.15] = np.nan
    np.save(folder / "x.npy", X)
    return make_cuem(folder)


def test_fit_with_missing_incremental_and_out_of_core(holes):
    c = holes
    common = ["fit", "x.npy", "-k", "3", "--missing", "marginalize", "--tol", "1e-12", "--max-iter", "3000"]
    batch = c.json(*common)
    inc = c.json(*common, "--incremental-blocks", "5")
    assert inc["converged"] and inc["n_decreases"] == 0
    assert inc["lower_bound"] == pytest.approx(batch["lower_bound"], abs=1e-8)
    chunked = c.json(*common, "--chunk-rows", "700")
    assert "out of core" in chunked["device"] and chunked["converged"] and chunked["n_decreases"] == 0
    # The chunked criteria are `cuem score`'s on the same model and data.
    (c.cwd / "chunked.json").write_text(json.dumps(chunked["model"]))
    s = c.json("score", "chunked.json", "x.npy", "--missing", "marginalize")
    assert chunked["bic"] == pytest.approx(s["bic"], rel=1e-10)
    online = c.json("fit-online", "x.npy", "-k", "3", "--missing", "marginalize", "--batch-size", "300",
                    "--epochs", "4", "--seed", "0", "-o", "online.json")
    assert online["n_batches"] == 4 * 15
    (c.cwd / "batch.json").write_text(json.dumps(batch["model"]))
    best = c.json("score", "batch.json", "x.npy", "--missing", "marginalize")["mean_log_likelihood"]
    got = c.json("score", "online.json", "x.npy", "--missing", "marginalize")["mean_log_likelihood"]
    assert best - 3e-3 < got <= best + 1e-9
    # Without --missing marginalize, NaN is still an error (exit 3), and nothing is written.
    c("fit-online", "x.npy", "-k", "3", "-o", "no.json", expect=3)
    assert not (c.cwd / "no.json").exists()


def _change(path, how):
    """Grows, shrinks or rewrites in place (same size, a modification time of its own:
    two writes within a clock tick can share one) the file at `path`."""
    if how == "grow":
        with open(path, "ab") as f:
            f.write(b"more bytes")
    elif how == "shrink":
        os.truncate(path, path.stat().st_size // 2)
    else:
        with open(path, "r+b") as f:
            f.seek(4096)
            f.write(b"\x01\x02\x03\x04")
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_007))


CHANGE_MESSAGE = {"grow": ["changed while it was read: it grew by 10 bytes"],
                  # in a chunk past the new end the read itself fails (SIGBUS), else the check after a chunk
                  "shrink": ["changed while it was read: it shrank by", "truncated or became unreadable"],
                  "rewrite": ["changed while it was read: it was written to (same size"]}


@pytest.mark.parametrize("how", ["grow", "shrink", "rewrite"])
def test_fit_out_of_core_stops_when_its_file_changes(cuem, tmp_path, how):
    X, _ = three_blobs(7, 40_000)
    np.save(tmp_path / "x.npy", X)
    before = listing(tmp_path)
    proc = cuem.popen("fit", "x.npy", "-k", 3, "--chunk-rows", 4000, "--max-iter", 100000, "--tol", 0,
                      "-o", "m.json", "--trace", "t.csv")
    line = proc.stderr.readline()
    while line and "iter" not in line:  # the iterations have started: the file is mapped and checked
        line = proc.stderr.readline()
    _change(tmp_path / "x.npy", how)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == INPUT_CHANGED, line + rest
    assert any(m in rest for m in CHANGE_MESSAGE[how]), rest
    assert listing(tmp_path) == before


def test_fit_online_stops_when_a_file_changes(cuem, tmp_path):
    X, _ = three_blobs(8, 100_000)
    np.save(tmp_path / "x.npy", X)
    # A model saved after every batch: its first appearance says the stream is in the file.
    proc = cuem.popen("fit-online", "x.npy", "-k", 3, "--batch-size", 100, "-o", "m.json", "--save-every", 1)
    deadline = time.monotonic() + 60
    while not (tmp_path / "m.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    _change(tmp_path / "x.npy", "grow")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == INPUT_CHANGED, err
    assert CHANGE_MESSAGE["grow"][0] in err, err
    # The last model saved before the change stays, whole; no temporary file is left.
    saved = json.loads((tmp_path / "m.json").read_text())
    assert 0 < saved["fit"]["n_iter"] < 3000
    assert listing(tmp_path) == ["m.json", "x.npy"]


def test_fit_in_memory_writes_nothing_when_its_file_grew(cuem, tmp_path):
    # In memory the mapped file is checked once, before the outputs are written.
    X, _ = three_blobs(9, 20_000)
    np.save(tmp_path / "x.npy", X)
    proc = cuem.popen("fit", "x.npy", "-k", 3, "--max-iter", 1000, "--tol", 0, "-o", "m.json")
    line = proc.stderr.readline()
    while line and "iter" not in line:
        line = proc.stderr.readline()
    _change(tmp_path / "x.npy", "grow")
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == INPUT_CHANGED, line + rest
    assert CHANGE_MESSAGE["grow"][0] in rest, rest
    assert listing(tmp_path) == ["x.npy"]
