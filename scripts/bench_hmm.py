#!/usr/bin/env python3
"""Seconds per Baum-Welch iteration, cuem.GaussianHMM against hmmlearn's GaussianHMM
(implementation='scaling', its fastest), side by side in one run, on the configurations of
issue 16:

  H1  one sequence, T = 10^6, K = 8,  D = 4,  diag
  H2  1000 sequences of 1000,  K = 16, D = 8,  full
  H3  one sequence, T = 2x10^5, K = 64, D = 16, diag
  H4  one sequence, T = 2x10^5, K = 256, D = 16, diag (not the issue's; the device chain at
      large K; not run unless named)

Both start from the same parameters (init_params='') and run --iters iterations (tol
below reach); the time per iteration is the fit's wall time over the iterations, so the
one-off work (checks, placing the data) is included in both. --scale shrinks every T
(and H2's sequence count) for a quick run on a loaded machine. The log-likelihoods of
the two are printed as a check that they did the same work.

Run: .venv/bin/python scripts/bench_hmm.py [--configs H1,H2,H3] [--scale 0.1] [--iters 3]
     [--threads 2] [--device cpu] [--json out.json]

Bounded memory (--long T): one sequence of T frames, K = 8, D = 4, diag, fitted in a
child process per variant (so that each peak RSS is its own): cuem's automatic choice
(segments once the whole-data arrays would pass 1 GiB), optionally --long-whole (the
whole-data arrays, segment_frames=-1). It reports the peak RSS against the bound: the
process with X loaded and cuem imported, plus the data's placed copy where the backend
makes one, plus O(segment x K) for the chain, against 3 x T x K doubles for the arrays.
"""
import argparse
import json
import os
import platform
import time

import numpy as np

CONFIGS = {
    "H1": dict(lengths=[1_000_000], K=8, D=4, covariance_type="diag"),
    "H2": dict(lengths=[1000] * 1000, K=16, D=8, covariance_type="full"),
    "H3": dict(lengths=[200_000], K=64, D=16, covariance_type="diag"),
    # Not in the set: the device chain at large K (a sequence across a block).
    "H4": dict(lengths=[200_000], K=256, D=16, covariance_type="diag"),
}


def make_problem(cfg, scale, seed=0):
    rng = np.random.default_rng(seed)
    K, D = cfg["K"], cfg["D"]
    lengths = cfg["lengths"]
    if len(lengths) > 1:
        lengths = lengths[: max(1, int(len(lengths) * scale))]
    else:
        lengths = [max(10, int(lengths[0] * scale))]
    T = sum(lengths)
    means = rng.normal(scale=3.0, size=(K, D))
    trans = rng.uniform(size=(K, K)) + K * np.eye(K)
    trans /= trans.sum(1, keepdims=True)
    # Frames from the chain: a state path, then Gaussian noise about the state's mean.
    states = np.empty(T, dtype=np.int64)
    u = rng.uniform(size=T)
    cdf = np.cumsum(trans, axis=1)
    s = 0
    for t in range(T):
        s = int(np.searchsorted(cdf[s], u[t] * cdf[s, -1]))
        s = min(s, K - 1)
        states[t] = s
    X = means[states] + rng.normal(size=(T, D))
    start = dict(
        startprob=np.full(K, 1.0 / K),
        transmat=np.full((K, K), 1.0 / K) * 0.5 + 0.5 * np.eye(K),
        means=means + rng.normal(scale=0.5, size=(K, D)),
    )
    if cfg["covariance_type"] == "diag":
        start["covars"] = np.full((K, D), 1.5)
    else:
        start["covars"] = np.tile(1.5 * np.eye(D), (K, 1, 1))
    return X, lengths, start


def run(cls, cfg, X, lengths, start, iters, **kw):
    m = cls(n_components=cfg["K"], covariance_type=cfg["covariance_type"], n_iter=iters, tol=-1e300 if kw.get(
        "implementation") else 0.0, init_params="", **kw)
    m.startprob_ = start["startprob"].copy()
    m.transmat_ = start["transmat"].copy()
    m.means_ = start["means"].copy()
    m.covars_ = start["covars"].copy()
    t0 = time.perf_counter()
    m.fit(X, lengths)
    seconds = time.perf_counter() - t0
    return seconds / iters, float(m.monitor_.history[-1])


def long_problem(T, K, D, seed=0):
    """A sticky chain drawn with NumPy's vector operations (T = 10^7 in seconds)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(K, D))
    switch = rng.uniform(size=T) < 0.05
    switch[0] = True
    draws = rng.integers(0, K, size=T)
    last = np.maximum.accumulate(np.where(switch, np.arange(T), 0))
    states = draws[last]
    X = means[states] + rng.normal(size=(T, D))
    return X, means


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def long_child(a):
    """One bounded-memory fit in this process; prints a JSON line with its peak RSS (the
    high-water mark reset after the data are drawn, so that it is the fit's own)."""
    import cuem

    K, D = 8, 4
    X, means = long_problem(a.long, K, D)
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current RSS (Linux 4.0 on)
        f.write("5")
    base_kib = _status_kib("VmRSS")
    m = cuem.GaussianHMM(n_components=K, covariance_type="diag", n_iter=a.iters, tol=0.0, init_params="",
                         n_threads=a.threads, segment_frames=a.child_segment)
    m.startprob_ = np.full(K, 1.0 / K)
    m.transmat_ = np.full((K, K), 0.5 / K) + 0.5 * np.eye(K)
    m.means_ = means + 0.3
    m.covars_ = np.full((K, D), 1.5)
    t0 = time.perf_counter()
    m.fit(X)
    seconds = (time.perf_counter() - t0) / a.iters
    peak_kib = _status_kib("VmHWM")
    print(json.dumps(dict(T=a.long, K=K, D=D, segment_frames=a.child_segment, s_per_iter=seconds,
                          rss_before_fit_mib=base_kib / 1024, peak_rss_mib=peak_kib / 1024,
                          log_likelihood=float(m.monitor_.history[-1]))))


def run_long(a):
    import subprocess
    import sys

    K = 8
    T = a.long
    whole_arrays_mib = 3 * T * K * 8 / 2**20
    print(f"machine: {platform.node()} ({os.cpu_count()} cores), load {os.getloadavg()[0]:.2f}; one sequence "
          f"T = {T}, K = {K}, D = 4, diag; {a.iters} iterations, {a.threads} threads; the whole-data arrays "
          f"(b, a, r) would be {whole_arrays_mib:.0f} MiB")
    rows = []
    for segment in ([None, -1] if a.long_whole else [None]):
        cmd = [sys.executable, __file__, "--long", str(T), "--iters", str(a.iters), "--threads", str(a.threads),
               "--child-segment", "auto" if segment is None else str(segment)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["load"] = os.getloadavg()[0]
        rows.append(row)
        grown = row["peak_rss_mib"] - row["rss_before_fit_mib"]
        print(f"segment_frames {str(segment):5}: {row['s_per_iter']:.2f} s/iter, RSS before the fit "
              f"{row['rss_before_fit_mib']:.0f} MiB, peak {row['peak_rss_mib']:.0f} MiB (the fit added "
              f"{grown:.0f} MiB; the whole-data arrays alone are {whole_arrays_mib:.0f} MiB), "
              f"log-likelihood {row['log_likelihood']:.8f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="H1,H2,H3")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="float32")
    p.add_argument("--skip-hmmlearn", action="store_true")
    p.add_argument("--json")
    p.add_argument("--long", type=int, help="bounded-memory run: one sequence of this many frames")
    p.add_argument("--long-whole", action="store_true", help="also fit with the whole-data arrays")
    p.add_argument("--child-segment", help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if a.long:
        if a.child_segment is not None:
            a.child_segment = None if a.child_segment == "auto" else int(a.child_segment)
            return long_child(a)
        return run_long(a)
    import cuem

    rows = []
    print(f"machine: {platform.node()} ({os.cpu_count()} cores), load {os.getloadavg()[0]:.2f}; "
          f"cuem threads {a.threads}, device {a.device}; scale {a.scale}; {a.iters} iterations")
    print(f"{'config':6} {'T':>9} {'seqs':>5} {'K':>3} {'D':>3} {'type':5} {'cuem s/it':>10} {'hmmlearn s/it':>14} "
          f"{'speed-up':>9}  log-likelihood (cuem / hmmlearn)")
    for name in a.configs.split(","):
        cfg = CONFIGS[name]
        X, lengths, start = make_problem(cfg, a.scale)
        c_s, c_ll = run(cuem.GaussianHMM, cfg, X, lengths, start, a.iters, device=a.device, precision=a.precision,
                        n_threads=a.threads)
        h_s = h_ll = float("nan")
        if not a.skip_hmmlearn:
            from hmmlearn.hmm import GaussianHMM
            h_s, h_ll = run(GaussianHMM, cfg, X, lengths, start, a.iters, implementation="scaling")
        row = dict(config=name, T=len(X), sequences=len(lengths), K=cfg["K"], D=cfg["D"],
                   covariance_type=cfg["covariance_type"], cuem_s_per_iter=c_s, hmmlearn_s_per_iter=h_s,
                   speedup=h_s / c_s, cuem_log_likelihood=c_ll, hmmlearn_log_likelihood=h_ll, threads=a.threads,
                   device=a.device, scale=a.scale, load=os.getloadavg()[0])
        rows.append(row)
        print(f"{name:6} {len(X):>9} {len(lengths):>5} {cfg['K']:>3} {cfg['D']:>3} {cfg['covariance_type']:5} "
              f"{c_s:>10.4f} {h_s:>14.4f} {h_s / c_s:>8.1f}x  {c_ll:.6f} / {h_ll:.6f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
