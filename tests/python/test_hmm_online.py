"""cuem.GaussianHMM's incremental EM (incremental_blocks) and stepwise EM (partial_fit)
against hmmlearn 0.3 from the same start: the incremental fixed point is Baum-Welch's, its
history never falls; a partial_fit step with rho = 1 is one Baum-Welch iteration on the
batch; and the bad-input errors."""

import numpy as np
import pytest

import cuem

hmm = pytest.importorskip("hmmlearn.hmm", reason="hmmlearn is in scripts/test.sh's .venv")

from test_hmm import LENGTHS, TYPES, _data, _rel, _start, _typed_covars  # noqa: E402


def _models(covariance_type, n_iter, **extra):
    startprob, transmat, means, covars = _start(covariance_type)
    ref = hmm.GaussianHMM(n_components=3, covariance_type=covariance_type, n_iter=n_iter, tol=-np.inf,
                          init_params="", implementation="log")
    got = cuem.GaussianHMM(n_components=3, covariance_type=covariance_type, n_iter=n_iter, tol=0.0, init_params="",
                           device="cpu", **extra)
    for m in (ref, got):
        m.startprob_, m.transmat_, m.means_, m.covars_ = startprob.copy(), transmat.copy(), means.copy(), covars.copy()
    return ref, got


@pytest.mark.parametrize("covariance_type", TYPES)
def test_incremental_reaches_hmmlearn_optimum(covariance_type):
    X = _data(seed=3)
    ref, got = _models(covariance_type, 300, incremental_blocks=3)
    ref.fit(X, LENGTHS)
    got.fit(X, LENGTHS)
    history = np.array(got.monitor_.history)
    assert len(history) == 1 + 299 * 3  # a full E-step, then one block a step
    assert np.all(np.diff(history) >= -1e-12 * np.abs(history[1:]))
    assert _rel(got.startprob_, ref.startprob_) < 1e-7
    assert _rel(got.transmat_, ref.transmat_) < 1e-7
    assert _rel(got.means_, ref.means_) < 1e-7
    assert _rel(got._covars_, _typed_covars(ref)) < 1e-7


@pytest.mark.parametrize("covariance_type", TYPES)
def test_partial_fit_on_a_fitted_model_is_one_baum_welch_step(covariance_type):
    X = _data(seed=4)
    ref, got = _models(covariance_type, 4, learning_decay=1.0)
    ref.fit(X, LENGTHS)
    got.fit(X, LENGTHS)
    batch, lengths = X[:157], LENGTHS[:2]
    one = hmm.GaussianHMM(n_components=3, covariance_type=covariance_type, n_iter=1, tol=-np.inf, init_params="",
                          implementation="log")
    one.startprob_, one.transmat_, one.means_, one.covars_ = got.startprob_, got.transmat_, got.means_, got._covars_
    before = got.score(batch, lengths) / len(batch)
    one.fit(batch, lengths)
    got.partial_fit(batch, lengths)  # the first step: rho = 1, from the fitted parameters
    assert got.n_steps_ == 1 and got.n_frames_seen_ == len(batch)
    assert got.lower_bound_ == pytest.approx(before, rel=1e-12)
    assert _rel(got.startprob_, one.startprob_) < 1e-8
    assert _rel(got.transmat_, one.transmat_) < 1e-8
    assert _rel(got.means_, one.means_) < 1e-8
    assert _rel(got._covars_, _typed_covars(one)) < 1e-8


def test_partial_fit_from_nothing_initialises_then_steps():
    X = _data(seed=5)
    model = cuem.GaussianHMM(n_components=3, covariance_type="diag", random_state=0, device="cpu")
    bounds = np.cumsum([0] + LENGTHS)
    model.partial_fit(X[:bounds[1]])  # the first batch initialises (k-means on its frames), then steps
    first = model.score(X, LENGTHS)
    for epoch in range(3):
        for q in range(len(LENGTHS)):
            model.partial_fit(X[bounds[q]:bounds[q + 1]])
    assert model.n_steps_ == 1 + 3 * len(LENGTHS)
    assert model.n_frames_seen_ == bounds[1] + 3 * len(X)
    assert model.transmat_.shape == (3, 3) and model.means_.shape == (3, 3)
    np.testing.assert_allclose(model.transmat_.sum(1), 1.0, rtol=1e-12)
    assert model.score(X, LENGTHS) > first  # the later batches taught it the rest of the data


def test_online_bad_input():
    X = _data(seed=6)
    model = cuem.GaussianHMM(n_components=3, random_state=0, device="cpu")
    model.partial_fit(X, LENGTHS)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(np.ones((10, 4)))
    with pytest.raises(ValueError, match="incremental_blocks"):
        cuem.GaussianHMM(n_components=3, incremental_blocks=0).fit(X, LENGTHS)
    with pytest.raises(ValueError, match="sequences"):
        cuem.GaussianHMM(n_components=3, incremental_blocks=6, device="cpu").fit(X, LENGTHS)
    with pytest.raises(ValueError, match="learning_decay"):
        cuem.GaussianHMM(n_components=3, learning_decay=0.5).partial_fit(X, LENGTHS)
    with pytest.raises(NotImplementedError):
        cuem.GMMHMM(n_components=2, n_mix=2).partial_fit(X, LENGTHS)


def test_max_block_steps_stops_part_way():
    """max_block_steps=S: the history is the unlimited fit's first S block steps, bitwise;
    S = 1 + B (P - 1) steps (a full first pass, then B a pass) is the fit with n_iter=P."""
    X = _data(seed=6)
    _, whole = _models("diag", 6, incremental_blocks=3)
    whole.fit(X, LENGTHS)
    _, part = _models("diag", 6, incremental_blocks=3, max_block_steps=5)
    part.fit(X, LENGTHS)
    assert len(whole.monitor_.history) == 1 + 5 * 3
    assert list(part.monitor_.history) == list(whole.monitor_.history)[:5]
    _, passes = _models("diag", 3, incremental_blocks=3)
    passes.fit(X, LENGTHS)
    _, steps = _models("diag", 6, incremental_blocks=3, max_block_steps=1 + 3 * 2)
    steps.fit(X, LENGTHS)
    for name in ("startprob_", "transmat_", "means_", "_covars_"):
        np.testing.assert_array_equal(getattr(steps, name), getattr(passes, name), err_msg=name)
    with pytest.raises(ValueError, match="max_block_steps"):
        cuem.GaussianHMM(n_components=3, max_block_steps=-1).fit(X, LENGTHS)
    with pytest.raises(ValueError, match="incremental_blocks > 1"):
        cuem.GaussianHMM(n_components=3, max_block_steps=4).fit(X, LENGTHS)
