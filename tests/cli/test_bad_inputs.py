"""The bad-input corpus: each case writes a bad file into tmp_path, runs the command that
reads it with its outputs directed into tmp_path, and checks the exit code, words of the
message on stderr (case-insensitive), and that no output (nor temporary) file appeared.

Run: python -m pytest -q tests/cli/test_bad_inputs.py --cuem-bin=build/cuem
"""
import json
import os
import shutil
import struct

import numpy as np
import pytest

USAGE, BAD_DATA = 2, 3


def npy_header(descr, shape, fortran=False, version=(1, 0), pad_to=64):
    """The bytes numpy.save writes before the data, for any (even a bad) header dict."""
    d = "{'descr': %r, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    length_bytes = 2 if version[0] == 1 else 4
    pre = 6 + 2 + length_bytes
    total = len(d) + 1
    total += (-(pre + total)) % pad_to
    d = d.ljust(total - 1) + "\n"
    length = struct.pack("<H" if length_bytes == 2 else "<I", len(d))
    return b"\x93NUMPY" + bytes(version) + length + d.encode("latin1")


def good_data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, (n // 2, d)), rng.normal(5, 1, (n - n // 2, d))])


# Each setup(p, model) writes its bad input(s) into folder p and returns the command line
# (`model` is the path of a good 3-feature model in p).

def npy_truncated(p, m):
    np.save(p / "x.npy", np.zeros((100, 3)))
    raw = (p / "x.npy").read_bytes()
    (p / "x.npy").write_bytes(raw[: len(raw) - 800])  # header says 100 x 3, 2400 bytes; 1600 follow
    return ["fit", "x.npy", "-k", 2, "-o", "m.json"]


def npy_wrong_magic(p, m):
    np.save(p / "x.npy", good_data())
    raw = bytearray((p / "x.npy").read_bytes())
    raw[1:6] = b"NUMPX"
    (p / "x.npy").write_bytes(bytes(raw))
    return ["fit", "x.npy", "-k", 2, "-o", "m.json"]


def npy_text_file(p, m):
    (p / "x.npy").write_text("1,2,3\n4,5,6\n")
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_absurd_header_length(p, m):
    data = b"\x93NUMPY\x01\x00\xff\xff" + b"{'descr'  "  # 20 bytes claiming a 65535-byte header
    assert len(data) == 20
    (p / "x.npy").write_bytes(data)
    return ["fit", "x.npy", "-k", 2, "-o", "m.json"]


def npy_absurd_header_length_v2(p, m):
    (p / "x.npy").write_bytes(b"\x93NUMPY\x02\x00\xff\xff\xff\xff" + b"{}" * 4)
    return ["fit", "x.npy", "-k", 2, "-o", "m.json"]


def npy_preamble_only(p, m):
    (p / "x.npy").write_bytes(b"\x93NUMPY\x01")
    return ["fit", "x.npy", "-k", 2, "-o", "m.json"]


def npy_bad_version(p, m):
    (p / "x.npy").write_bytes(npy_header("<f8", (2, 1), version=(9, 0)) + b"\0" * 16)
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_garbage_header(p, m):
    h = bytearray(npy_header("<f8", (2, 1)))
    h[10:20] = b"@@@@@@@@@@"
    (p / "x.npy").write_bytes(bytes(h) + b"\0" * 16)
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_absurd_shape(p, m):
    (p / "x.npy").write_bytes(npy_header("<f8", (2**62, 2**62)) + b"\0" * 16)
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_trailing_bytes(p, m):
    np.save(p / "x.npy", good_data())
    with open(p / "x.npy", "ab") as f:
        f.write(b"\0" * 24)
    return ["fit", "x.npy", "-k", 2, "-o", "m.json"]


def npy_big_endian(p, m):
    np.save(p / "x.npy", good_data().astype(">f8"))
    return ["fit", "x.npy", "-k", 2, "-o", "m.json"]


def npy_object(p, m):
    np.save(p / "x.npy", np.array([[1.0, "a"], [2.0, "b"]], dtype=object), allow_pickle=True)
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_unicode(p, m):
    np.save(p / "x.npy", np.array([["1.0", "2.0"], ["3.0", "4.5"]], dtype="<U5"))
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_bytes_string(p, m):
    np.save(p / "x.npy", np.array([[b"1", b"2"]], dtype="S3"))
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_complex(p, m):
    np.save(p / "x.npy", good_data().astype(np.complex128))
    return ["fit", "x.npy", "-k", 2, "-o", "m.json"]


def npy_structured(p, m):
    np.save(p / "x.npy", np.zeros(4, dtype=[("a", "<f8"), ("b", "<f8")]))
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_datetime(p, m):
    np.save(p / "x.npy", np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]"))
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_3d(p, m):
    np.save(p / "x.npy", np.zeros((4, 3, 2)))
    return ["fit", "x.npy", "-k", 2, "-o", "m.json"]


def npy_0d(p, m):
    np.save(p / "x.npy", np.float64(3.0))
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_nan(p, m):
    X = good_data()
    X[4, 1] = np.nan
    np.save(p / "x.npy", X)
    return ["fit", "x.npy", "-k", 2, "-o", "m.json", "--trace", "t.csv"]


def npy_inf(p, m):
    X = good_data()
    X[7, 2] = -np.inf
    np.save(p / "x.npy", X)
    return ["fit", "x.npy", "-k", 2, "-o", "m.json"]


def npy_empty_file(p, m):
    (p / "x.npy").write_bytes(b"")
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_zero_columns(p, m):
    np.save(p / "x.npy", np.zeros((5, 0)))
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def npy_zero_rows(p, m):
    np.save(p / "x.npy", np.zeros((0, 3)))
    return ["fit", "x.npy", "-k", 1, "-o", "m.json"]


def csv_nan(p, m):
    (p / "x.csv").write_text("a,b\n1,2\n3,4\n5,nan\n6,7\n")
    return ["fit", "x.csv", "-k", 1, "-o", "m.json"]


def csv_inf(p, m):
    (p / "x.csv").write_text("1,2\ninf,4\n5,6\n")
    return ["fit", "x.csv", "-k", 1, "-o", "m.json"]


def csv_overflow(p, m):
    (p / "x.csv").write_text("1,2\n3,1e999\n5,6\n")
    return ["fit", "x.csv", "-k", 1, "-o", "m.json"]


def csv_empty_file(p, m):
    (p / "x.csv").write_text("")
    return ["fit", "x.csv", "-k", 1, "-o", "m.json"]


def csv_blank_lines_only(p, m):
    (p / "x.csv").write_text("\n  \n\n")
    return ["fit", "x.csv", "-k", 1, "-o", "m.json"]


def csv_header_only(p, m):
    (p / "x.csv").write_text("a,b,c\n")
    return ["fit", "x.csv", "-k", 1, "-o", "m.json"]


def csv_ragged(p, m):
    (p / "x.csv").write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n")
    return ["fit", "x.csv", "-k", 1, "-o", "m.json"]


def csv_too_many_fields(p, m):
    (p / "x.csv").write_text("1,2\n3,4\n5,6\n7,8,9\n")
    return ["fit", "x.csv", "-k", 1, "-o", "m.json"]


def csv_non_numeric(p, m):
    (p / "x.csv").write_text("a,b\n1,2\n3,abc\n5,6\n")
    return ["fit", "x.csv", "-k", 1, "-o", "m.json"]


def csv_no_such_column(p, m):
    (p / "x.csv").write_text("a,b\n1,2\n3,4\n")
    return ["fit", "x.csv", "-k", 1, "--columns", "a,zz", "-o", "m.json"]


def csv_column_index_out_of_range(p, m):
    (p / "x.csv").write_text("a,b\n1,2\n3,4\n")
    return ["fit", "x.csv", "-k", 1, "--columns", "5", "-o", "m.json"]


def raw_partial_row(p, m):
    (p / "x.bin").write_bytes(b"\0" * 20)
    return ["fit", "x.bin", "--dims", 3, "-k", 1, "-o", "m.json"]


def raw_without_dims(p, m):
    good_data().tofile(p / "x.bin")
    return ["fit", "x.bin", "-k", 2, "-o", "m.json"]


def raw_empty(p, m):
    (p / "x.bin").write_bytes(b"")
    return ["fit", "x.bin", "--dims", 2, "-k", 1, "-o", "m.json"]


def raw_given_npy(p, m):
    np.save(p / "x.npy", good_data())
    return ["fit", "x.npy", "--dims", 3, "-k", 2, "-o", "m.json"]


def k_greater_than_n(p, m):
    (p / "x.csv").write_text("1,2\n3,4\n5,6\n7,8\n9,10\n")
    return ["fit", "x.csv", "-k", 6, "-o", "m.json"]


def missing_file(p, m):
    return ["fit", "nothere.npy", "-k", 2, "-o", "m.json"]


def missing_csv(p, m):
    return ["fit", "nothere.csv", "-k", 2, "-o", "m.json"]


def directory_as_data(p, m):
    os.mkdir(p / "data.npy")
    return ["fit", "data.npy", "-k", 2, "-o", "m.json"]


def directory_as_data_csv(p, m):
    os.mkdir(p / "folder.csv")
    return ["select", "folder.csv", "-k", "1:2", "-o", "m.json"]


def output_in_missing_folder(p, m):
    np.save(p / "x.npy", good_data())
    return ["fit", "x.npy", "-k", 2, "-o", "nowhere/m.json"]


def output_is_a_folder(p, m):
    np.save(p / "x.npy", good_data())
    os.mkdir(p / "out")
    return ["fit", "x.npy", "-k", 2, "-o", "out"]


def model_truncated(p, m):
    text = m.read_text()
    m.write_text(text[: len(text) // 2])
    np.save(p / "x.npy", good_data())
    return ["predict", m.name, "x.npy", "-o", "l.npy", "--proba", "p.npy"]


def model_empty(p, m):
    m.write_text("")
    np.save(p / "x.npy", good_data())
    return ["score", m.name, "x.npy"]


def model_not_json(p, m):
    m.write_bytes(b"\x93NUMPY\x01\x00garbage")
    return ["sample", m.name, "-n", 10, "-o", "s.npy"]


def _edit_model(m, edit):
    j = json.loads(m.read_text())
    edit(j)
    m.write_text(json.dumps(j))


def model_future_version(p, m):
    _edit_model(m, lambda j: j.update(version=99))
    np.save(p / "x.npy", good_data())
    return ["predict", m.name, "x.npy", "-o", "l.npy"]


def model_other_format(p, m):
    _edit_model(m, lambda j: j.update(format="sklearn-pickle"))
    np.save(p / "x.npy", good_data())
    return ["score", m.name, "x.npy"]


def model_json_array(p, m):
    m.write_text("[1, 2, 3]")
    return ["sample", m.name, "-n", 5, "-o", "s.npy"]


def model_missing_field(p, m):
    _edit_model(m, lambda j: j.pop("means"))
    np.save(p / "x.npy", good_data())
    return ["predict", m.name, "x.npy", "-o", "l.npy"]


def model_missing_version(p, m):
    _edit_model(m, lambda j: j.pop("version"))
    return ["sample", m.name, "-n", 5, "-o", "s.npy"]


def model_wrong_means_shape(p, m):
    _edit_model(m, lambda j: j.update(means=[row[:-1] for row in j["means"]]))
    np.save(p / "x.npy", good_data())
    return ["predict", m.name, "x.npy", "-o", "l.npy"]


def model_wrong_covariance_shape(p, m):
    _edit_model(m, lambda j: j.update(covariances=j["covariances"][:-1]))
    return ["sample", m.name, "-n", 5, "-o", "s.npy", "--labels", "l.npy"]


def model_wrong_n_components(p, m):
    _edit_model(m, lambda j: j.update(n_components=j["n_components"] + 1))
    np.save(p / "x.npy", good_data())
    return ["score", m.name, "x.npy"]


def model_bad_covariance_type(p, m):
    _edit_model(m, lambda j: j.update(covariance_type="banana"))
    return ["sample", m.name, "-n", 5, "-o", "s.npy"]


def model_string_in_array(p, m):
    def edit(j):
        j["weights"][0] = "0.5"
    _edit_model(m, edit)
    return ["sample", m.name, "-n", 5, "-o", "s.npy"]


def model_weights_not_summing_to_1(p, m):
    def edit(j):
        j["weights"] = [w * 1.5 for w in j["weights"]]
    _edit_model(m, edit)
    np.save(p / "x.npy", good_data())
    return ["predict", m.name, "x.npy", "-o", "l.npy"]


def model_negative_weight(p, m):
    def edit(j):
        j["weights"][0], j["weights"][1] = -0.5, j["weights"][1] + j["weights"][0] + 0.5
    _edit_model(m, edit)
    return ["sample", m.name, "-n", 5, "-o", "s.npy"]


def model_non_positive_precision(p, m):
    def edit(j):
        j["precisions_cholesky"][0][0][0] = -1.0
    _edit_model(m, edit)
    np.save(p / "x.npy", good_data())
    return ["predict", m.name, "x.npy", "-o", "l.npy"]


def model_missing(p, m):
    m.unlink()
    np.save(p / "x.npy", good_data())
    return ["predict", "nomodel.json", "x.npy", "-o", "l.npy"]


def predict_wrong_number_of_features(p, m):
    np.save(p / "x.npy", good_data(d=2))
    return ["predict", m.name, "x.npy", "-o", "l.npy", "--proba", "p.npy"]


def score_wrong_number_of_features(p, m):
    (p / "x.csv").write_text("1,2,3,4\n5,6,7,8\n")
    return ["score", m.name, "x.csv"]


def predict_nan_data(p, m):
    X = good_data()
    X[10, 0] = np.nan
    np.save(p / "x.npy", X)
    return ["predict", m.name, "x.npy", "-o", "l.npy"]


def select_bad_data(p, m):
    (p / "x.csv").write_text("1,2\n3\n")
    return ["select", "x.csv", "-k", "1:3", "-o", "best.json"]


# (setup, exit code, words the message must contain (case-insensitive))
CASES = {
    "npy_truncated": (npy_truncated, BAD_DATA, ["truncated", "2400 bytes", "1600"]),
    "npy_wrong_magic": (npy_wrong_magic, BAD_DATA, ["not a .npy file"]),
    "npy_text_file": (npy_text_file, BAD_DATA, ["not a .npy file"]),
    "npy_absurd_header_length": (npy_absurd_header_length, BAD_DATA, ["header claims 65535 bytes", "truncated"]),
    "npy_absurd_header_length_v2": (npy_absurd_header_length_v2, BAD_DATA, ["header claims 4294967295 bytes"]),
    "npy_preamble_only": (npy_preamble_only, BAD_DATA, ["truncated"]),
    "npy_bad_version": (npy_bad_version, BAD_DATA, ["unsupported .npy format version 9.0"]),
    "npy_garbage_header": (npy_garbage_header, BAD_DATA, ["header is malformed"]),
    "npy_absurd_shape": (npy_absurd_shape, BAD_DATA, ["absurdly large"]),
    "npy_trailing_bytes": (npy_trailing_bytes, BAD_DATA, ["24 unexpected bytes"]),
    "npy_big_endian": (npy_big_endian, BAD_DATA, ["big-endian", "astype('<f8')"]),
    "npy_object": (npy_object, BAD_DATA, ["python objects", "astype"]),
    "npy_unicode": (npy_unicode, BAD_DATA, ["strings", "<u5"]),
    "npy_bytes_string": (npy_bytes_string, BAD_DATA, ["strings"]),
    "npy_complex": (npy_complex, BAD_DATA, ["complex"]),
    "npy_structured": (npy_structured, BAD_DATA, ["structured"]),
    "npy_datetime": (npy_datetime, BAD_DATA, ["dates"]),
    "npy_3d": (npy_3d, BAD_DATA, ["3 dimensions", "(4, 3, 2)"]),
    "npy_0d": (npy_0d, BAD_DATA, ["0-dimensional"]),
    "npy_nan": (npy_nan, BAD_DATA, ["nan at row 4, column 1"]),
    "npy_inf": (npy_inf, BAD_DATA, ["inf at row 7, column 2"]),
    "npy_empty_file": (npy_empty_file, BAD_DATA, ["empty"]),
    "npy_zero_rows": (npy_zero_rows, BAD_DATA, ["no points"]),
    "npy_zero_columns": (npy_zero_columns, BAD_DATA, ["no features"]),
    "csv_nan": (csv_nan, BAD_DATA, ["nan at row 2, column 1"]),
    "csv_inf": (csv_inf, BAD_DATA, ["inf at row 1, column 0"]),
    "csv_overflow": (csv_overflow, BAD_DATA, ["inf at row 1, column 1"]),
    "csv_empty_file": (csv_empty_file, BAD_DATA, ["the file is empty"]),
    "csv_blank_lines_only": (csv_blank_lines_only, BAD_DATA, ["the file is empty"]),
    "csv_header_only": (csv_header_only, BAD_DATA, ["no data rows"]),
    "csv_ragged": (csv_ragged, BAD_DATA, ["x.csv:3:", "2 fields", "ragged"]),
    "csv_too_many_fields": (csv_too_many_fields, BAD_DATA, ["x.csv:4:", "3 fields", "ragged"]),
    "csv_non_numeric": (csv_non_numeric, BAD_DATA, ["x.csv:3:", "'abc'", "not a number"]),
    "csv_no_such_column": (csv_no_such_column, USAGE, ["no column 'zz'"]),
    "csv_column_index_out_of_range": (csv_column_index_out_of_range, USAGE, ["no column '5'"]),
    "raw_partial_row": (raw_partial_row, BAD_DATA, ["20 bytes is not a whole number of rows"]),
    "raw_without_dims": (raw_without_dims, BAD_DATA, ["--dims"]),
    "raw_empty": (raw_empty, BAD_DATA, ["empty"]),
    "raw_given_npy": (raw_given_npy, BAD_DATA, ["this is a .npy file", "without --dims"]),
    "k_greater_than_n": (k_greater_than_n, BAD_DATA, ["n_components = 6", "5 points"]),
    "missing_file": (missing_file, BAD_DATA, ["nothere.npy", "no such file"]),
    "missing_csv": (missing_csv, BAD_DATA, ["nothere.csv", "no such file"]),
    "directory_as_data": (directory_as_data, BAD_DATA, ["folder"]),
    "directory_as_data_csv": (directory_as_data_csv, BAD_DATA, ["folder"]),
    "output_in_missing_folder": (output_in_missing_folder, USAGE, ["cannot write", "nowhere/m.json"]),
    "output_is_a_folder": (output_is_a_folder, USAGE, ["'out' is a folder"]),
    "model_truncated": (model_truncated, BAD_DATA, ["model file", "not valid json"]),
    "model_empty": (model_empty, BAD_DATA, ["not valid json"]),
    "model_not_json": (model_not_json, BAD_DATA, ["not valid json"]),
    "model_future_version": (model_future_version, BAD_DATA, ["version 99", "upgrade"]),
    "model_other_format": (model_other_format, BAD_DATA, ["not a cuem model"]),
    "model_json_array": (model_json_array, BAD_DATA, ["not a cuem model"]),
    "model_missing_field": (model_missing_field, BAD_DATA, ['missing field "means"']),
    "model_missing_version": (model_missing_version, BAD_DATA, ['missing field "version"']),
    "model_wrong_means_shape": (model_wrong_means_shape, BAD_DATA, ['"means"', "shape (2, 3)"]),
    "model_wrong_covariance_shape": (model_wrong_covariance_shape, BAD_DATA, ['"covariances"', "shape (2, 3, 3)"]),
    "model_wrong_n_components": (model_wrong_n_components, BAD_DATA, ['"weights"', "shape (3)"]),
    "model_bad_covariance_type": (model_bad_covariance_type, BAD_DATA, ["banana"]),
    "model_string_in_array": (model_string_in_array, BAD_DATA, ['"weights"', "not a number"]),
    "model_weights_not_summing_to_1": (model_weights_not_summing_to_1, BAD_DATA, ["weights", "sum to 1"]),
    "model_negative_weight": (model_negative_weight, BAD_DATA, ["weights", "non-negative"]),
    "model_non_positive_precision": (model_non_positive_precision, BAD_DATA, ["precisions_cholesky"]),
    "model_missing": (model_missing, BAD_DATA, ["nomodel.json", "no such file"]),
    "predict_wrong_number_of_features": (predict_wrong_number_of_features, BAD_DATA,
                                         ["2 features", "fitted to 3"]),
    "score_wrong_number_of_features": (score_wrong_number_of_features, BAD_DATA, ["4 features", "fitted to 3"]),
    "predict_nan_data": (predict_nan_data, BAD_DATA, ["nan at row 10, column 0"]),
    "select_bad_data": (select_bad_data, BAD_DATA, ["x.csv:2:", "ragged"]),
}


@pytest.fixture(scope="module")
def good_model(make_cuem, tmp_path_factory):
    """A good 2-component, 3-feature full-covariance model file."""
    d = tmp_path_factory.mktemp("good_model")
    np.save(d / "x.npy", good_data())
    make_cuem(d)("-q", "fit", "x.npy", "-k", 2, "--seed", 0, "-o", "model.json")
    return d / "model.json"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(cuem, tmp_path, good_model, helpers, case):
    setup, code, words = CASES[case]
    model = tmp_path / "model.json"
    shutil.copy(good_model, model)
    args = setup(tmp_path, model)
    before = helpers.listing(tmp_path)
    proc = cuem(*args, expect=code)
    err = proc.stderr.lower()
    assert err.startswith("cuem: "), proc.stderr
    for w in words:
        assert w.lower() in err, f"stderr lacks {w!r}:\n{proc.stderr}"
    assert "internal error" not in err
    assert proc.stdout == ""
    helpers.assert_no_new_files(tmp_path, before)
    # --quiet silences progress and notices, never the error itself
    proc_q = cuem("-q", *args, expect=code)
    assert proc_q.stderr.startswith("cuem: ") and proc.stderr.endswith(proc_q.stderr), proc_q.stderr
    helpers.assert_no_new_files(tmp_path, before)
