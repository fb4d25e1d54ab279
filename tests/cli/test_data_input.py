"""Reading data files from the command line: the format chosen by content where it can be
(the NPY signature), --columns for every format and counted from 0 in every message,
options that do not apply to a format refused, decimal numbers only, RFC 4180 quoting.

A failing case checks the exit code (2 usage, 3 bad data), words of the message and that
no output file appeared.

Run: python -m pytest -q tests/cli/test_data_input.py --cuem-bin=build/cuem
"""
import shutil

import numpy as np
import pytest

USAGE, BAD_DATA = 2, 3
FIT = ["-k", 2, "--seed", 0]


def data(n=60, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, (n // 2, d)), rng.normal(5, 1, (n - n // 2, d))])


def lower_bound(cuem, *args):
    return cuem.json("fit", *args, *FIT)["lower_bound"]


def fails(cuem, helpers, tmp_path, args, code, words):
    """Runs a failing command writing to m.json; checks code, words (any case), no output."""
    before = helpers.listing(tmp_path)
    proc = cuem(*args, "-o", "m.json", expect=code)
    err = proc.stderr.lower()
    assert err.startswith("cuem: ") and "internal error" not in err, proc.stderr
    for w in words:
        assert w.lower() in err, f"stderr lacks {w!r}:\n{proc.stderr}"
    assert proc.stdout == ""
    helpers.assert_no_new_files(tmp_path, before)
    return proc.stderr


# --- 1. --columns for .npy and raw binary; text options refused for them ---------------

@pytest.mark.parametrize("columns,picked", [("0,1", [0, 1]), ("2,0", [2, 0]), ("1", [1]), (" 2 , 1", [2, 1])])
def test_columns_select_npy_columns(cuem, tmp_path, columns, picked):
    X = data()
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "want.npy", X[:, picked])
    j = cuem.json("fit", "x.npy", "--columns", columns, *FIT)
    assert j["n_features"] == len(picked)
    assert j["lower_bound"] == lower_bound(cuem, "want.npy")


def test_columns_select_raw_columns(cuem, tmp_path):
    X = data()
    X.astype("<f8").tofile(tmp_path / "x.bin")
    X.astype("<f4").tofile(tmp_path / "x.f32")
    np.save(tmp_path / "want.npy", X[:, [2, 1]])
    np.save(tmp_path / "want32.npy", X.astype(np.float32)[:, [2, 1]])
    assert lower_bound(cuem, "x.bin", "--dims", 3, "--columns", "2,1") == lower_bound(cuem, "want.npy")
    assert lower_bound(cuem, "x.f32", "--dims", 3, "--columns", "2,1") == lower_bound(cuem, "want32.npy")


def test_columns_apply_to_predict_and_score(cuem, tmp_path):
    np.save(tmp_path / "x.npy", data())
    cuem("-q", "fit", "x.npy", "--columns", "0,2", *FIT, "-o", "m.json")
    cuem("-q", "predict", "m.json", "x.npy", "--columns", "0,2", "-o", "l.npy")
    assert np.load(tmp_path / "l.npy").shape == (60,)
    cuem("score", "m.json", "x.npy", "--columns", "0,2")
    err = cuem("score", "m.json", "x.npy", expect=BAD_DATA).stderr
    assert "3 features" in err and "fitted to 2" in err


@pytest.mark.parametrize("setup,args,words", [
    ("npy", ["x.npy", "--columns", "a"], ["'a' is not a column number", ".npy data have no column names"]),
    ("npy", ["x.npy", "--columns", "x0"], ["no column names"]),
    ("raw", ["x.bin", "--dims", 3, "--columns", "b"], ["raw binary data have no column names"]),
    ("npy", ["x.npy", "--columns", "3"], ["no column '3'", "0 to 2"]),
    ("raw", ["x.bin", "--dims", 3, "--columns", "0,0"], ["column 0 twice"]),
    ("npy", ["x.npy", "--delimiter", ","], ["--delimiter applies to csv/text input", "read as .npy"]),
    ("npy", ["x.npy", "--header", "yes"], ["--header applies to csv/text input"]),
    ("npy", ["x.npy", "--header", "no", "--delimiter", "tab"], ["--delimiter and --header apply"]),
    ("raw", ["x.bin", "--dims", 3, "--delimiter", ";"], ["--delimiter applies", "raw binary"]),
    ("raw", ["x.bin", "--dims", 3, "--header", "no"], ["--header applies", "raw binary"]),
    ("npy_as_tsv", ["x.tsv", "--delimiter", "tab"], ["--delimiter applies", "read as .npy"]),
])
def test_binary_input_refuses_what_does_not_apply(cuem, helpers, tmp_path, setup, args, words):
    X = data()
    if setup == "raw":
        X.astype("<f8").tofile(tmp_path / "x.bin")
    else:
        np.save(tmp_path / "x.npy", X)
        if setup == "npy_as_tsv":
            shutil.move(tmp_path / "x.npy", tmp_path / "x.tsv")
    fails(cuem, helpers, tmp_path, ["fit", *args, *FIT], USAGE, words)


# --- 2. the NPY signature decides, whatever the name -------------------------------------

@pytest.mark.parametrize("name", ["x.txt", "x.tsv", "x.csv", "x.CSV", "x.bin", "x.dat", "x.raw", "x.f64", "x"])
def test_npy_bytes_are_read_as_npy_whatever_the_name(cuem, tmp_path, name):
    np.save(tmp_path / "ref.npy", data())
    shutil.copy(tmp_path / "ref.npy", tmp_path / name)
    assert lower_bound(cuem, name) == lower_bound(cuem, "ref.npy")


def test_generated_tsv_and_txt_can_be_fitted(cuem, tmp_path):
    # Whatever generate writes for these names (npy bytes or text), fit reads it back.
    for name in ["g.tsv", "g.txt"]:
        cuem("-q", "generate", "-n", 100, "-d", 2, "-k", 2, "--seed", 5, "-o", name)
        assert cuem.json("fit", name, *FIT)["n_features"] == 2


def test_dims_on_npy_bytes_says_so(cuem, helpers, tmp_path):
    np.save(tmp_path / "x.npy", data())
    shutil.move(tmp_path / "x.npy", tmp_path / "x.bin")
    fails(cuem, helpers, tmp_path, ["fit", "x.bin", "--dims", 3, *FIT], BAD_DATA,
          ["this is a .npy file", "without --dims"])


# --- 3. --dims on text is refused ---------------------------------------------------------

@pytest.mark.parametrize("name,words", [
    ("mult.csv", ["text file by its name", "without --dims"]),
    ("mult.tsv", ["text file by its name"]),
    ("mult.TXT", ["text file by its name"]),
    ("mult.dat", ["holds text", "without --dims"]),
    ("mult.bin", ["holds text"]),
    ("mult", ["holds text"]),
])
def test_dims_on_text_is_a_usage_error(cuem, helpers, tmp_path, name, words):
    (tmp_path / name).write_text("1.0,2.0,3.0\n" * 8)  # 96 bytes: 12 whole float64 values
    fails(cuem, helpers, tmp_path, ["fit", name, "--dims", 1, "-k", 1], USAGE, words)
    fails(cuem, helpers, tmp_path, ["fit", name, "--dims", 3, "--dtype", "float32", "-k", 1], USAGE, words)


def test_raw_binary_with_any_name_still_reads(cuem, tmp_path):
    X = data()
    np.save(tmp_path / "ref.npy", X)
    X.astype("<f8").tofile(tmp_path / "x.data")
    assert lower_bound(cuem, "x.data", "--dims", 3) == lower_bound(cuem, "ref.npy")


# --- 4. columns counted from 0 everywhere; --columns mistakes are usage errors ------------

def test_non_numeric_column_is_named_as_columns_counts_it(cuem, helpers, tmp_path):
    X = data(d=2)
    rows = ["a,b,species"] + [f"{float(x)!r},{float(y)!r},setosa" for x, y in X]
    (tmp_path / "iris.csv").write_text("\n".join(rows) + "\n")
    err = fails(cuem, helpers, tmp_path, ["fit", "iris.csv", *FIT], BAD_DATA,
                ["iris.csv:2:", "column 2 ('setosa') is not a number", "--columns, 0-based"])
    assert "field" not in err
    # Leaving out the column the message names is what fixes it.
    np.save(tmp_path / "ref.npy", X)
    assert lower_bound(cuem, "iris.csv", "--columns", "0,1") == lower_bound(cuem, "ref.npy")


@pytest.mark.parametrize("text,words", [
    ("a,b\n1,2\n# comment\n3,4\n5,nan\n", ["x.csv:5:", "nan at row 2, column 1"]),
    ("1,2,3\n4,5,6\n-inf,7,8\n", ["x.csv:3:", "inf at row 2, column 0"]),
    ("1,2\n3,1e999\n", ["x.csv:2:", "inf at row 1, column 1", "'1e999' is beyond the float64 range"]),
])
def test_non_finite_values_name_the_file_line_and_column(cuem, helpers, tmp_path, text, words):
    (tmp_path / "x.csv").write_text(text)
    fails(cuem, helpers, tmp_path, ["fit", "x.csv", "-k", 1], BAD_DATA, words)


def test_non_finite_column_is_the_file_column_under_selection(cuem, helpers, tmp_path):
    (tmp_path / "x.csv").write_text("a,b,c\n1,2,3\n4,5,nan\n6,7,8\n")
    fails(cuem, helpers, tmp_path, ["fit", "x.csv", "--columns", "2,0", "-k", 1], BAD_DATA,
          ["x.csv:3:", "nan at row 1, column 2"])
    assert cuem.json("fit", "x.csv", "--columns", "0,1", "-k", 1)["n_features"] == 2


@pytest.mark.parametrize("columns,words", [
    ("0,0,1", ["column 0 twice"]),
    ("a,0", ["column 0 twice", "'a' and '0'"]),
    ("0,,1", ["empty entry"]),
    ("0,1,", ["empty entry"]),
    ("", ["--columns: an empty value is not allowed"]),
    ("3", ["no column '3'", "counts from 0", "0 to 2"]),
    ("zz", ["no column 'zz'", "a, b, c"]),
    ("-1", ["no column '-1'"]),
])
def test_bad_column_lists_are_usage_errors(cuem, helpers, tmp_path, columns, words):
    (tmp_path / "x.csv").write_text("a,b,c\n1,2,3\n4,5,7\n6,7,9\n")
    fails(cuem, helpers, tmp_path, ["fit", "x.csv", "--columns", columns, "-k", 1], USAGE, words)


def test_names_need_a_header(cuem, helpers, tmp_path):
    (tmp_path / "x.csv").write_text("1,2,3\n4,5,7\n6,7,9\n")
    fails(cuem, helpers, tmp_path, ["fit", "x.csv", "--columns", "x0", "-k", 1], USAGE,
          ["'x0' is not a column number", "no header line"])


def test_column_lists_are_trimmed_and_may_repeat_the_option(cuem, tmp_path):
    (tmp_path / "x.csv").write_text("a,b,c\n" + "".join(f"{i},{i * i % 7},{i % 3}\n" for i in range(20)))
    ref = lower_bound(cuem, "x.csv", "--columns", "0,2")
    assert lower_bound(cuem, "x.csv", "--columns", " 0, 2 ") == ref
    assert lower_bound(cuem, "x.csv", "--columns", "a, c") == ref
    assert lower_bound(cuem, "x.csv", "--columns", "0", "--columns", "c") == ref


# --- 5. decimal numbers only ---------------------------------------------------------------

@pytest.mark.parametrize("cell", ["0x10", "0X1A", "-0x1p3", "1_000", "1d3", "nan(1)", "1e"])
def test_only_decimal_numbers_are_read(cuem, helpers, tmp_path, cell):
    (tmp_path / "x.csv").write_text(f"a,b\n1,2\n{cell},4\n5,6\n")
    fails(cuem, helpers, tmp_path, ["fit", "x.csv", "-k", 1], BAD_DATA,
          ["x.csv:3:", f"column 0 ('{cell}') is not a number"])


def test_decimal_forms_are_read(cuem, tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n+1.5,.5\n5.,-2e-1\n1E+2,007\n-3,4\n")
    (tmp_path / "y.csv").write_text("a,b\n1.5,0.5\n5,-0.2\n100,7\n-3,4\n")
    assert lower_bound(cuem, "x.csv") == lower_bound(cuem, "y.csv")


# --- 6. quoted fields ----------------------------------------------------------------------

def test_quoted_fields_may_hold_the_delimiter_and_quotes(cuem, tmp_path):
    rows = ['"x,1","say ""hi""",c'] + [f'"{i}.5", {i % 4} ,"{i % 3}"' for i in range(20)]
    (tmp_path / "q.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "plain.csv").write_text("".join(f"{i}.5,{i % 4},{i % 3}\n" for i in range(20)))
    out = cuem("fit", "q.csv", *FIT).stdout
    assert 'features: x,1 say "hi" c' in out
    assert lower_bound(cuem, "q.csv") == lower_bound(cuem, "plain.csv")
    assert cuem.json("fit", "q.csv", "--columns", "say \"hi\"", *FIT)["n_features"] == 1


@pytest.mark.parametrize("text,words", [
    ('a,b\n1,2\n"3,4\n', ["x.csv:3:", "not closed"]),
    ('a,b\n"1"x,2\n', ["x.csv:2:", "closing quote"]),
    ('a,b\n1,2\n"3,5",4\n', ["x.csv:3:", "column 0 ('3,5') is not a number"]),
])
def test_bad_quoting_names_the_line(cuem, helpers, tmp_path, text, words):
    (tmp_path / "x.csv").write_text(text)
    fails(cuem, helpers, tmp_path, ["fit", "x.csv", "-k", 1], BAD_DATA, words)


# --- 7. standard input, and files that are not data ---------------------------------------

def _npy_bytes(X):
    import io
    buf = io.BytesIO()
    np.save(buf, X)
    return buf.getvalue()


def test_dash_reads_standard_input_as_text_or_npy(cuem, tmp_path):
    X = data()
    np.save(tmp_path / "x.npy", X)
    text = "a,b,c\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in X)
    want = lower_bound(cuem, "x.npy")
    assert cuem.json("fit", "-", *FIT, stdin=text.encode())["lower_bound"] == want
    assert cuem.json("fit", "-", *FIT, stdin=_npy_bytes(X))["lower_bound"] == want
    cuem("-q", "fit", "x.npy", *FIT, "-o", "m.json")
    scored = cuem.json("score", "m.json", "-", stdin=_npy_bytes(X))
    assert scored["mean_log_likelihood"] == cuem.json("score", "m.json", "x.npy")["mean_log_likelihood"]
    proc = cuem("fit", "-", *FIT, stdin=b"a,b\n1,x\n", expect=BAD_DATA)
    assert "(standard input):2: column 1 ('x') is not a number" in proc.stderr


def _gzip(b):
    import gzip
    return gzip.compress(b)


@pytest.mark.parametrize("name,content,words", [
    ("x.csv.gz", lambda: _gzip(b"a,b\n1,2\n3,4\n"), ["gzip-compressed", "gunzip -k x.csv.gz"]),
    ("x.npz", None, ["zip archive", "numpy.save"]),
    ("x.h5", lambda: b"\x89HDF\r\n\x1a\n" + bytes(200), ["HDF5"]),
    ("x.csv", lambda: "a,b\n1,2\n".encode("utf-16"), ["UTF-16"]),
    ("x.xls", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), ["OLE document"]),
])
def test_compressed_and_foreign_files_are_named_not_parsed(cuem, helpers, tmp_path, name, content, words):
    if content is None:
        np.savez(tmp_path / name, a=data())
    else:
        (tmp_path / name).write_bytes(content())
    fails(cuem, helpers, tmp_path, ["fit", name, "-k", 1], BAD_DATA, words)


def test_a_decimal_comma_is_named(cuem, helpers, tmp_path):
    (tmp_path / "x.csv").write_text("a;b\n5,1;3,5\n4,9;3\n")
    fails(cuem, helpers, tmp_path, ["fit", "x.csv", "-k", 1], BAD_DATA,
          ["x.csv:2:", "('5,1') is not a number", "decimal comma", "write 5.1"])


def test_an_unnamed_first_column_is_noted_as_a_likely_index(cuem, tmp_path):
    # pandas' DataFrame.to_csv writes the index first, under an empty name.
    X = data()
    lines = [",a,b,c"] + [f"{i}," + ",".join(repr(float(v)) for v in row) for i, row in enumerate(X)]
    (tmp_path / "pd.csv").write_text("\n".join(lines) + "\n")
    proc = cuem("fit", "pd.csv", *FIT)
    assert "column 0 has no name" in proc.stderr and "--columns 1,2,3" in proc.stderr
    np.save(tmp_path / "x.npy", X)
    assert lower_bound(cuem, "pd.csv", "--columns", "1,2,3") == lower_bound(cuem, "x.npy")
    assert "no name" not in cuem("fit", "pd.csv", "--columns", "1,2,3", *FIT).stderr
    assert "no name" not in cuem("-q", "fit", "pd.csv", *FIT).stderr


def test_data_without_names_for_a_named_model_is_noted(cuem, tmp_path):
    X = data()
    (tmp_path / "named.csv").write_text("a,b,c\n" + "".join(",".join(repr(float(v)) for v in r) + "\n" for r in X))
    np.save(tmp_path / "x.npy", X)
    cuem("-q", "fit", "named.csv", *FIT, "-o", "m.json")
    for cmd in (["score", "m.json", "x.npy"], ["predict", "m.json", "x.npy", "-o", "l.npy"]):
        assert "has no column names, but the model was fitted with named features" in cuem(*cmd).stderr
    np.save(tmp_path / "x.npy", X)
    cuem("-q", "fit", "x.npy", *FIT, "-o", "m2.json")
    assert "column names" not in cuem("score", "m2.json", "x.npy").stderr


def test_raw_binary_may_start_with_any_bytes(cuem, tmp_path):
    # A float32 whose bytes are ff fe 00 3f (about 0.50389): UTF-16's byte-order mark, were it text.
    first = np.frombuffer(b"\xff\xfe\x00\x3f", dtype="<f4")[0]
    X = np.array([[first, 1.0], [0.25, 2.0], [0.75, 0.5], [0.6, 1.5]], dtype=np.float32)
    assert X.tobytes()[:2] == b"\xff\xfe"
    (tmp_path / "r.f32").write_bytes(X.tobytes())
    assert cuem.json("fit", "r.f32", "--dims", 2, "-k", 1)["model"]["means"][0][0] == pytest.approx(X[:, 0].mean())
    assert cuem.json("fit", "-", "--dims", 2, "--dtype", "float32", "-k", 1,
                     stdin=X.tobytes())["model"]["means"][0][0] == pytest.approx(X[:, 0].mean())


def test_stray_carriage_returns_read_alike_from_a_file_and_a_stream(cuem, helpers, tmp_path):
    for text in [b"\r\r\n", b"\r\t\n", b"\xef\xbb\xbf \n\r \n"]:
        (tmp_path / "f.csv").write_bytes(text)
        a = cuem("fit", "f.csv", "-k", 1, "--header", "no", expect=BAD_DATA).stderr
        b = cuem("fit", "-", "-k", 1, "--header", "no", stdin=text, expect=BAD_DATA).stderr
        assert "is empty" in a and "is empty" in b, (a, b)


def test_a_decimal_comma_is_only_suggested_where_commas_do_not_separate(cuem, helpers, tmp_path):
    (tmp_path / "x.txt").write_text("1,2 3\n4,5 6\n")
    err = fails(cuem, helpers, tmp_path, ["fit", "x.txt", "-k", 1, "--delimiter", "space"], BAD_DATA, ["not a number"])
    assert "decimal comma" not in err


def test_standard_input_named_so_and_not_taken_twice(cuem, tmp_path):
    X = data()
    np.save(tmp_path / "x.npy", X)
    cuem("-q", "fit", "x.npy", *FIT, "-o", "m.json")
    proc = cuem("predict", "m.json", "-", stdin=_npy_bytes(np.ones((3, 2))), expect=BAD_DATA)
    assert "(standard input)" in proc.stderr and "-:" not in proc.stderr
    proc = cuem("predict", "-", "-", stdin=b"", expect=USAGE)
    assert "cannot both be '-'" in proc.stderr


def test_binary_bytes_in_a_message_are_escaped(cuem, helpers, tmp_path):
    (tmp_path / "x.csv").write_bytes(b"a,b\n1,2\n3,\x01\x9bz\n")
    err = fails(cuem, helpers, tmp_path, ["fit", "x.csv", "-k", 1], BAD_DATA, ["x.csv:3:", r"('\x01\x9Bz')"])
    assert "\x01" not in err
