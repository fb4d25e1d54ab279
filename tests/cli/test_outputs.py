"""Output files: checked before any work (folder there and writable, no two outputs or an
output and an input the same file however spelled), written in the format their names
ask for, and replaced without losing a link or the old file's permissions."""
import os
import stat

import numpy as np
import pytest

from conftest import OK, listing

USAGE = 2
BAD_DATA = 3
INPUT_CHANGED = 6


def _data(cuem, name="x.npy"):
    cuem("-q", "generate", "-n", 300, "-d", 2, "-k", 2, "--seed", 4, "-o", name)
    return name


@pytest.mark.parametrize("argv", [
    ["fit", "x.npy", "-k", 2, "-o", "./m.json", "--report", "m.json"],
    ["fit", "x.npy", "-k", 2, "-o", "m.json", "--trace", "sub/../m.json"],
    ["sample", "model.json", "-n", 4, "-o", "s.npy", "--labels", "./s.npy"],
    ["predict", "model.json", "x.npy", "-o", "l.npy", "--proba", "ABS/l.npy"],
])
def test_two_spellings_of_one_output_are_refused(cuem, tmp_path, argv):
    _data(cuem)
    (tmp_path / "sub").mkdir()
    cuem("-q", "fit", "x.npy", "-k", 2, "-o", "model.json")
    before = listing(tmp_path)
    argv = [str(tmp_path) + a[3:] if isinstance(a, str) and a.startswith("ABS") else a for a in argv]
    proc = cuem(*argv, expect=USAGE)
    assert "same file" in proc.stderr
    assert listing(tmp_path) == before


def test_a_hard_link_between_two_outputs_is_refused(cuem, tmp_path):
    _data(cuem)
    (tmp_path / "a.json").write_text("old")
    os.link(tmp_path / "a.json", tmp_path / "b.json")
    proc = cuem("fit", "x.npy", "-k", 2, "-o", "a.json", "--trace", "b.json", expect=USAGE)
    assert "same file" in proc.stderr
    assert (tmp_path / "a.json").read_text() == "old"


def test_an_output_in_a_missing_folder_fails_before_the_data_are_read(cuem, tmp_path):
    # The data file does not even exist: the output is checked first, so the message is
    # about the output and no fit runs.
    proc = cuem("fit", "missing.npy", "-k", 2, "-o", "nowhere/m.json", expect=USAGE)
    assert "nowhere" in proc.stderr and "does not exist" in proc.stderr
    proc = cuem("fit", "missing.npy", "-k", 2, "--report", "nowhere/r.svg", expect=USAGE)
    assert "does not exist" in proc.stderr


def test_option_mistakes_come_before_the_data_are_read(cuem):
    proc = cuem("fit", "missing.npy", "-k", 2, "--device", "gpu", expect=USAGE)
    assert "unknown device 'gpu'" in proc.stderr
    proc = cuem("score", "missing.json", "missing.npy", "--device", "gpu", expect=USAGE)
    assert "unknown device 'gpu'" in proc.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_or_file_is_refused_before_the_fit(cuem, tmp_path):
    _data(cuem)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = cuem("fit", "x.npy", "-k", 2, "-o", "ro/m.json", expect=USAGE)
        assert "not writable" in proc.stderr
    finally:
        ro.chmod(0o755)
    (tmp_path / "m.json").write_text("keep")
    (tmp_path / "m.json").chmod(0o444)
    proc = cuem("fit", "x.npy", "-k", 2, "-o", "m.json", expect=USAGE)
    assert "read-only" in proc.stderr
    assert (tmp_path / "m.json").read_text() == "keep"


def test_a_symbolic_link_is_written_through(cuem, tmp_path):
    _data(cuem)
    (tmp_path / "real.json").write_text("old")
    os.symlink("real.json", tmp_path / "link.json")
    cuem("-q", "fit", "x.npy", "-k", 2, "-o", "link.json")
    assert os.path.islink(tmp_path / "link.json")
    assert '"n_components"' in (tmp_path / "real.json").read_text()
    os.symlink("gone.json", tmp_path / "dangling.json")
    proc = cuem("fit", "x.npy", "-k", 2, "-o", "dangling.json", expect=USAGE)
    assert "does not exist" in proc.stderr


def test_a_replaced_file_keeps_its_permissions(cuem, tmp_path):
    _data(cuem)
    target = tmp_path / "m.json"
    target.write_text("old")
    target.chmod(0o600)
    cuem("-q", "fit", "x.npy", "-k", 2, "-o", "m.json")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert '"n_components"' in target.read_text()


@pytest.mark.parametrize("ext,delim", [(".csv", ","), (".tsv", "\t"), (".txt", " "), (".CSV", ",")])
def test_text_outputs_follow_the_extension_and_read_back(cuem, tmp_path, ext, delim):
    data = "g" + ext
    cuem("-q", "generate", "-n", 50, "-d", 3, "-k", 2, "--seed", 1, "-o", data, "--labels", "lab" + ext)
    lines = (tmp_path / data).read_text().splitlines()
    assert lines[0] == delim.join(["x0", "x1", "x2"])
    assert len(lines) == 51 and len(lines[1].split(delim)) == 3
    labels = (tmp_path / ("lab" + ext)).read_text().split()
    assert len(labels) == 50 and set(labels) <= {"0", "1"}
    # The same points as the .npy of the same seed, exactly.
    cuem("-q", "generate", "-n", 50, "-d", 3, "-k", 2, "--seed", 1, "-o", "g.npy")
    ref = np.load(tmp_path / "g.npy")
    got = np.array([[float(v) for v in line.split(delim)] for line in lines[1:]])
    assert np.array_equal(got, ref)
    fitted = cuem.json("fit", data, "-k", 2)
    assert fitted["n_samples"] == 50 and fitted["n_features"] == 3
    cuem("-q", "fit", "g.npy", "-k", 2, "-o", "m.json")
    cuem("-q", "predict", "m.json", "g.npy", "-o", "pred" + ext, "--proba", "proba" + ext)
    proba = np.array([[float(v) for v in line.split(delim)] for line in (tmp_path / ("proba" + ext)).read_text().splitlines()])
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1.0)
    cuem("-q", "sample", "m.json", "-n", 7, "-o", "s" + ext, "--labels", "sl" + ext)
    assert len((tmp_path / ("s" + ext)).read_text().splitlines()) == 7


@pytest.mark.parametrize("argv,words", [
    # a data output with an unknown extension
    (["generate", "-n", 10, "-o", "x.bin"], ".npy, or text as .csv, .tsv or .txt"),
    (["generate", "-n", 10, "-o", "x.npy", "--labels", "lab.json"], ".npy, or text as .csv, .tsv or .txt"),
    (["predict", "m.json", "g.npy", "-o", "labels"], ".npy, or text as .csv, .tsv or .txt"),
    (["sample", "m.json", "-n", 3, "-o", "s.dat"], ".npy, or text as .csv, .tsv or .txt"),
    # a model output named as data
    (["fit", "g.npy", "-k", 2, "-o", "model.npy"], "a model is written as JSON"),
    (["fit", "g.npy", "-k", 2, "-o", "labels.CSV"], "a model is written as JSON"),
    (["select", "g.npy", "-k", "1:2", "-o", "best.tsv"], "a model is written as JSON"),
    (["generate", "-n", 10, "-o", "x.npy", "--model", "true.npy"], "a model is written as JSON"),
    # an empty value: -o "" (an unset shell variable, say) must not read as no -o
    (["fit", "g.npy", "-k", 2, "-o", ""], "an empty value is not allowed"),
    (["fit", "g.npy", "-k", 2, "--trace", ""], "an empty value is not allowed"),
    (["fit", "", "-k", 2], "an empty value is not allowed"),
    (["predict", "m.json", "g.npy", "--proba", ""], "an empty value is not allowed"),
    (["generate", "-n", 10, "-o", "x.npy", "--labels", ""], "an empty value is not allowed"),
    (["fit", "g.npy", "-k", 2, "--device", ""], "an empty value is not allowed"),
])
def test_output_names_and_empty_values_are_usage_errors(cuem, tmp_path, argv, words):
    cuem("-q", "generate", "-n", 50, "-d", 2, "-k", 2, "-o", "g.npy")
    cuem("-q", "fit", "g.npy", "-k", 2, "-o", "m.json")
    before = listing(tmp_path)
    proc = cuem(*argv, expect=USAGE)
    assert words in proc.stderr
    assert proc.stdout == ""
    assert listing(tmp_path) == before


def test_every_command_says_on_stdout_what_it_wrote(cuem):
    # As fit says "model written to": stdout holds the result, stderr progress and notes.
    out = cuem("-q", "generate", "-n", 20, "-d", 2, "-k", 2, "-o", "g.npy", "--labels", "l.npy",
               "--model", "t.json").stdout
    assert out.splitlines() == ["20 points x 2 features from 2 components written to g.npy",
                                "labels written to l.npy", "true model written to t.json"]
    out = cuem("-q", "sample", "t.json", "-n", 5, "-o", "s.csv", "--labels", "sl.npy").stdout
    assert out.splitlines() == ["5 points written to s.csv", "labels written to sl.npy"]
    assert "model written to m.json" in cuem("-q", "fit", "g.npy", "-k", 2, "-o", "m.json").stdout


def test_dev_null_takes_any_output(cuem):
    _data(cuem)
    cuem("-q", "fit", "x.npy", "-k", 2, "-o", "m.json")
    cuem("-q", "sample", "m.json", "-n", 3, "-o", "/dev/null")


def test_a_seed_past_64_bits_is_refused(cuem):
    _data(cuem)
    proc = cuem("fit", "x.npy", "-k", 2, "--seed", "18446744073709551616", expect=USAGE)
    assert "at most 18446744073709551615" in proc.stderr
    cuem("-q", "fit", "x.npy", "-k", 2, "--seed", "18446744073709551615")


def test_select_with_more_components_than_points_everywhere_is_bad_data(cuem, tmp_path):
    np.save(tmp_path / "one.npy", np.array([[1.0, 2.0]]))
    proc = cuem("select", "one.npy", "-k", "2:3", expect=BAD_DATA)
    assert "fewer than every candidate" in proc.stderr


def test_select_json_counts_parameters_as_integers(cuem):
    _data(cuem)
    out = cuem.json("select", "x.npy", "-k", "1:2")
    assert all(isinstance(c["n_parameters"], int) for c in out["candidates"] if c["ok"])


def test_a_model_with_the_wrong_covariance_shape_says_so(cuem, tmp_path):
    _data(cuem)
    cuem("-q", "fit", "x.npy", "-k", 2, "-o", "m.json")
    text = (tmp_path / "m.json").read_text().replace('"covariance_type": "full"', '"covariance_type": "diag"')
    (tmp_path / "bad.json").write_text(text)
    proc = cuem("predict", "bad.json", "x.npy", expect=BAD_DATA)
    assert "shape (2, 2)" in proc.stderr and "more levels" in proc.stderr


def _named_csv(path, names, X):
    path.write_text(",".join(names) + "\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in X))


def test_feature_names_from_a_header_are_kept_and_checked(cuem, tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3)) + np.array([0.0, 10.0, 100.0])
    _named_csv(tmp_path / "train.csv", ["a", "b", "c"], X)
    cuem("-q", "fit", "train.csv", "-k", 2, "-o", "m.json")
    import json
    assert json.loads((tmp_path / "m.json").read_text())["feature_names"] == ["a", "b", "c"]
    # The same columns: fine; no header (an .npy): nothing to check.
    cuem("-q", "predict", "m.json", "train.csv", "-o", "l.npy")
    np.save(tmp_path / "x.npy", X)
    cuem("-q", "score", "m.json", "x.npy")
    # Reordered columns: refused with the fix, which then works.
    _named_csv(tmp_path / "shuffled.csv", ["c", "a", "b"], X[:, [2, 0, 1]])
    before = listing(tmp_path)
    proc = cuem("predict", "m.json", "shuffled.csv", "-o", "p.npy", expect=BAD_DATA)
    assert "another order" in proc.stderr and "--columns 1,2,0" in proc.stderr
    assert listing(tmp_path) == before
    cuem("score", "m.json", "shuffled.csv", expect=BAD_DATA)
    for columns in ("1,2,0", "a,b,c"):
        cuem("-q", "predict", "m.json", "shuffled.csv", "--columns", columns, "-o", "p.npy")
        assert np.array_equal(np.load(tmp_path / "p.npy"), np.load(tmp_path / "l.npy"))
    # Other columns: refused.
    _named_csv(tmp_path / "other.csv", ["a", "b", "z"], X)
    proc = cuem("predict", "m.json", "other.csv", expect=BAD_DATA)
    assert "not the features the model was fitted to" in proc.stderr
    # A model fitted to unnamed data carries no names and checks nothing.
    cuem("-q", "fit", "x.npy", "-k", 2, "-o", "plain.json")
    assert "feature_names" not in json.loads((tmp_path / "plain.json").read_text())
    cuem("-q", "predict", "plain.json", "shuffled.csv")


def test_an_input_truncated_during_the_fit_is_bad_data_not_a_crash(cuem, tmp_path):
    # The .npy is read in place from its mapping: pages past a new end of file raise
    # SIGBUS, which cuem reports as an input changed while read (exit 6), leaving no output.
    rng = np.random.default_rng(5)
    np.save(tmp_path / "x.npy", rng.normal(size=(400_000, 4)))
    proc = cuem.popen("fit", "x.npy", "-k", 3, "--max-iter", 100000, "--tol", 0, "-o", "m.json")
    line = proc.stderr.readline()
    while line and "iter" not in line:
        line = proc.stderr.readline()
    os.truncate(tmp_path / "x.npy", 1000)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == INPUT_CHANGED, rest
    assert "truncated or became unreadable" in rest
    assert not any(p.name.startswith("m.json") for p in tmp_path.iterdir())


def test_ambiguous_header_names_are_not_kept(cuem, tmp_path):
    import json
    rng = np.random.default_rng(4)
    X = rng.normal(size=(100, 3))
    for header in (["x", "x", "y"], ["", "b", "c"]):
        _named_csv(tmp_path / "d.csv", header, X)
        cuem("-q", "fit", "d.csv", "-k", 2, "-o", "m.json")
        assert "feature_names" not in json.loads((tmp_path / "m.json").read_text())
    # A model whose names repeat is refused by every reader, sample included.
    cuem("-q", "fit", "x.npy" if (tmp_path / "x.npy").exists() else "d.csv", "-k", 2, "-o", "m.json")
    model = json.loads((tmp_path / "m.json").read_text())
    model["feature_names"] = ["p", "p", "q"]
    (tmp_path / "bad.json").write_text(json.dumps(model))
    proc = cuem("sample", "bad.json", "-n", 3, "-o", "s.npy", expect=BAD_DATA)
    assert "twice" in proc.stderr


def test_dev_null_takes_several_outputs(cuem):
    _data(cuem)
    cuem("-q", "fit", "x.npy", "-k", 2, "-o", "/dev/null", "--trace", "/dev/null")


def test_a_name_too_long_for_a_suffix_is_still_written(cuem, tmp_path):
    name = "a" * 250 + ".npy"
    cuem("-q", "generate", "-n", 5, "-o", name)
    assert (tmp_path / name).exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
