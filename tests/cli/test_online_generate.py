"""`cuem generate` written in chunks (issue 18): the file does not depend on the chunk
size, it holds the rows of sample()'s draws after the documented shuffle (a keyed Feistel
permutation with cycle walking, src/core/row_permutation.hpp; checked against a plain Python
re-implementation of the counter-based generator and the network), float32 output is the
float64 output rounded, and peak memory stays far below the file's size and does not grow
with the number of rows."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

M64 = (1 << 64) - 1


def mix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def rng_hash(seed, stream, counter):
    return mix(mix(mix(seed) ^ stream) ^ counter)


def uniform(seed, stream, counter):
    return (rng_hash(seed, stream, counter) >> 11) * 2.0 ** -53


def normal(seed, stream, counter):
    u1 = ((rng_hash(seed, stream, 2 * counter) >> 11) + 1) * 2.0 ** -53
    u2 = uniform(seed, stream, 2 * counter + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586476925286766559 * u2)


SAMPLE_COMPONENT, SAMPLE_NORMAL, SHUFFLE = 5, 6, 104


def feistel_permutation(n, seed, stream):
    """Row i of the file is grouped row perm[i]: a 6-round Feistel network on the smallest
    domain of t >= 2 bits holding n, cut into t // 2 left bits and the rest; a round maps
    (L, R) to (R, L ^ (mix(key_r ^ R) masked to L's width)), key_r the hash of (seed,
    stream, r), swapping the widths; applied again while the value is >= n."""
    bits = 2
    while bits < 64 and (1 << bits) < n:
        bits += 1
    left_bits = bits // 2
    right_bits = bits - left_bits
    keys = [rng_hash(seed, stream, r) for r in range(6)]

    def network(x):
        lw, rw = left_bits, right_bits
        left, right = x >> rw, x & ((1 << rw) - 1)
        for r in range(6):
            left, right = right, left ^ (mix(keys[r] ^ right) & ((1 << lw) - 1))
            lw, rw = rw, lw
        return (left << rw) | right

    perm = []
    for i in range(n):
        y = network(i)
        while y >= n:
            y = network(y)
        perm.append(y)
    return perm


def reference(model, n, seed):
    """sample(): component counts from n uniform draws, rows grouped by component, x = mu + L z;
    then generate's shuffle of the rows (feistel_permutation)."""
    w = model["weights"]
    K, D = len(w), len(model["means"][0])
    cumulative, acc = [], 0.0
    for v in w:
        acc += v
        cumulative.append(acc)
    counts = [0] * K
    for i in range(n):
        u = uniform(seed, SAMPLE_COMPONENT, i) * acc
        counts[min(int(np.searchsorted(cumulative, u, side="right")), K - 1)] += 1
    kind = model["covariance_type"]
    cov = np.asarray(model["covariances"], dtype=float)
    X, labels, row = np.empty((n, D)), np.empty(n, dtype=np.int64), 0
    for k in range(K):
        for _ in range(counts[k]):
            z = np.array([normal(seed, SAMPLE_NORMAL, row * D + d) for d in range(D)])
            mu = np.asarray(model["means"][k])
            if kind == "full":
                X[row] = mu + np.linalg.cholesky(cov[k]) @ z
            elif kind == "tied":
                X[row] = mu + np.linalg.cholesky(cov) @ z
            elif kind == "diag":
                X[row] = mu + np.sqrt(cov[k]) * z
            else:
                X[row] = mu + math.sqrt(cov[k]) * z
            labels[row] = k
            row += 1
    perm = feistel_permutation(n, seed, SHUFFLE)
    return X[perm], labels[perm]


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_generate_is_the_shuffled_sample(cuem, cov):
    cuem("-q", "generate", "-n", 157, "-d", 3, "-k", 4, "--covariance", cov, "--seed", 11, "-o", "g.npy",
         "--labels", "l.npy", "--model", "m.json", "--chunk-rows", 10)
    model = json.loads((cuem.cwd / "m.json").read_text())
    X, labels = reference(model, 157, 11)
    assert np.array_equal(np.load(cuem.cwd / "l.npy"), labels)
    np.testing.assert_allclose(np.load(cuem.cwd / "g.npy"), X, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 17, 65])
def test_generate_shuffle_of_few_rows_is_the_reference(cuem, n):
    # Domains of 4 to 128 values (n = 5, 17 and 65 just above a power of 2): cycle walking
    # sends indices through the network more than once.
    cuem("-q", "generate", "-n", n, "-d", 2, "-k", 3, "--seed", 5, "-o", "g.npy", "--labels", "l.npy",
         "--model", "m.json", "--chunk-rows", 4)
    model = json.loads((cuem.cwd / "m.json").read_text())
    X, labels = reference(model, n, 5)
    assert sorted(feistel_permutation(n, 5, SHUFFLE)) == list(range(n))
    assert np.array_equal(np.load(cuem.cwd / "l.npy"), labels)
    np.testing.assert_allclose(np.load(cuem.cwd / "g.npy"), X, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("ext", ["npy", "csv", "txt"])
def test_generate_file_does_not_depend_on_the_chunk_size(cuem, ext):
    common = ["-q", "generate", "-n", 1003, "-d", 4, "-k", 5, "--seed", 3]
    cuem(*common, "-o", f"one.{ext}", "--labels", f"l1.{ext}")
    for chunk in (1, 7, 1003, 5000):
        cuem(*common, "-o", f"c.{ext}", "--labels", f"lc.{ext}", "--chunk-rows", chunk)
        assert (cuem.cwd / f"c.{ext}").read_bytes() == (cuem.cwd / f"one.{ext}").read_bytes()
        assert (cuem.cwd / f"lc.{ext}").read_bytes() == (cuem.cwd / f"l1.{ext}").read_bytes()


def test_generate_float32_is_the_float64_file_rounded(cuem):
    common = ["-q", "generate", "-n", 500, "-d", 3, "-k", 3, "--seed", 8]
    cuem(*common, "-o", "a.npy")
    cuem(*common, "-o", "b.npy", "--dtype", "float32", "--chunk-rows", 33)
    a, b = np.load(cuem.cwd / "a.npy"), np.load(cuem.cwd / "b.npy")
    assert b.dtype == np.float32 and b.shape == (500, 3)
    assert np.array_equal(b, a.astype(np.float32))
    cuem(*common, "-o", "b.csv", "--dtype", "float32")
    text = np.loadtxt(cuem.cwd / "b.csv", delimiter=",", skiprows=1)
    assert np.array_equal(text.astype(np.float32), b)


def test_generate_bad_dtype_and_chunk_write_nothing(cuem):
    for bad in (["--dtype", "float16"], ["--chunk-rows", "0"]):
        r = cuem("generate", "-n", 10, "-o", "g.npy", *bad, expect=2)
        assert not (cuem.cwd / "g.npy").exists(), r.stderr
    assert not list(cuem.cwd.iterdir())


def _peak_rss(cuem, cwd, *args):
    """(peak RSS in bytes, file size) of `cuem -q generate ARGS -o big.npy`. A child's
    ru_maxrss counts what its parent held when it forked (this pytest process is larger
    than the bound), so a small Python process in between starts cuem and reports the peak."""
    launcher = ("import os, sys\n"
                "pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)\n"
                "_, status, usage = os.wait4(pid, 0)\n"
                "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", launcher, cuem.binary, "-q", "generate", *map(str, args), "-o",
                          "big.npy"], cwd=cwd, capture_output=True, text=True, timeout=120)
    code, maxrss = (int(v) for v in out.stdout.split()[-2:])
    assert code == 0, out.stderr
    size = (cwd / "big.npy").stat().st_size
    (cwd / "big.npy").unlink()
    return maxrss * 1024, size  # Linux: kibibytes


def test_generate_memory_is_bounded_by_a_chunk_not_the_file(cuem, tmp_path):
    # 2e6 x 8 float64 is a 128 MB file; generate holds one chunk (20000 rows) and no
    # permutation. An in-memory generator would hold the data at least once (128 MB).
    n, d = 2_000_000, 8
    peak, size = _peak_rss(cuem, tmp_path, "-n", n, "-d", d, "-k", 4, "--chunk-rows", 20000)
    assert size >= n * d * 8
    # Under AddressSanitizer (scripts/test.sh's asan phase sets ASAN_OPTIONS) the shadow
    # memory and the allocator's quarantine add tens of MB whatever generate holds: there
    # the bound is the file itself, which an in-memory generator would exceed.
    asan = "ASAN_OPTIONS" in os.environ
    bound = size if asan else 64 << 20
    assert peak < bound, f"peak RSS {peak} bytes for a {size}-byte file (bound {bound})"
    if asan:
        return
    # Ten times the rows, one column: a stored permutation would add 4 bytes a row (72 MB
    # between the two); the keyed one adds nothing.
    small, _ = _peak_rss(cuem, tmp_path, "-n", 2_000_000, "-d", 1, "--dtype", "float32", "--chunk-rows", 20000)
    large, _ = _peak_rss(cuem, tmp_path, "-n", 20_000_000, "-d", 1, "--dtype", "float32", "--chunk-rows", 20000)
    assert large - small < 8 << 20, f"peak RSS {small} bytes for 2e6 rows, {large} for 2e7"
