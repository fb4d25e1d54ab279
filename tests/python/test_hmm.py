"""cuem.GaussianHMM against hmmlearn 0.3's GaussianHMM from the same start parameters
(init_params=''): log-likelihood history, startprob_, transmat_, means_ and covariances after
n iterations to 1e-8 relative, every covariance type, several sequences of unequal lengths;
Viterbi paths identical; posteriors to 1e-10; score, bic, aic; and the bad-input errors."""

import numpy as np
import pytest

import cuem

hmm = pytest.importorskip("hmmlearn.hmm", reason="hmmlearn is in scripts/test.sh's .venv")

TYPES = ["spherical", "diag", "full", "tied"]
LENGTHS = [120, 37, 1, 300, 52]


def _data(seed=0, D=3):
    rng = np.random.default_rng(seed)
    K = 3
    means = rng.normal(scale=4.0, size=(K, D))
    trans = np.full((K, K), 0.1) + np.eye(K) * 0.7
    trans /= trans.sum(1, keepdims=True)
    X, s = [], 0
    for T in LENGTHS:
        for _ in range(T):
            s = rng.choice(K, p=trans[s])
            X.append(means[s] + rng.normal(scale=1.0 + 0.3 * s, size=D))
    return np.array(X)


def _start(covariance_type, D=3, seed=1):
    rng = np.random.default_rng(seed)
    K = 3
    startprob = rng.uniform(0.2, 1.0, K)
    startprob /= startprob.sum()
    transmat = rng.uniform(0.1, 1.0, (K, K)) + 2 * np.eye(K)
    transmat /= transmat.sum(1, keepdims=True)
    means = rng.normal(scale=4.0, size=(K, D))
    if covariance_type == "spherical":
        covars = rng.uniform(1.0, 3.0, K)
    elif covariance_type == "diag":
        covars = rng.uniform(1.0, 3.0, (K, D))
    elif covariance_type == "tied":
        A = rng.normal(size=(D, D))
        covars = A @ A.T + D * np.eye(D)
    else:
        covars = np.array([(lambda A: A @ A.T + D * np.eye(D))(rng.normal(size=(D, D))) for _ in range(K)])
    return startprob, transmat, means, covars


def _pair(covariance_type, n_iter, **priors):
    startprob, transmat, means, covars = _start(covariance_type)
    models = []
    for cls, extra in ((hmm.GaussianHMM, {"implementation": "log"}), (cuem.GaussianHMM, {"device": "cpu"})):
        m = cls(n_components=3, covariance_type=covariance_type, n_iter=n_iter, tol=-np.inf if cls is hmm.GaussianHMM else 0.0,
                init_params="", **priors, **extra)
        m.startprob_ = startprob.copy()
        m.transmat_ = transmat.copy()
        m.means_ = means.copy()
        m.covars_ = covars.copy()
        models.append(m)
    return models


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))


def _typed_covars(model):
    """hmmlearn's _covars_ in cuem's per-type layout (its spherical one is tiled to n_features)."""
    c = np.asarray(model._covars_)
    return c[:, 0] if model.covariance_type == "spherical" and c.ndim == 2 else c


@pytest.mark.parametrize("covariance_type", TYPES)
def test_baum_welch_matches_hmmlearn(covariance_type):
    X = _data()
    ref, got = _pair(covariance_type, n_iter=5)
    ref.fit(X, LENGTHS)
    got.fit(X, LENGTHS)
    assert len(got.monitor_.history) == 5
    np.testing.assert_allclose(list(got.monitor_.history), list(ref.monitor_.history), rtol=1e-8)
    assert _rel(got.startprob_, ref.startprob_) < 1e-8
    assert _rel(got.transmat_, ref.transmat_) < 1e-8
    assert _rel(got.means_, ref.means_) < 1e-8
    assert _rel(got._covars_, _typed_covars(ref)) < 1e-8
    if covariance_type != "spherical":  # hmmlearn's spherical getter returns K * D matrices after a fit
        assert _rel(got.covars_, ref.covars_) < 1e-8
    assert got.monitor_.converged == ref.monitor_.converged


@pytest.mark.parametrize("covariance_type", TYPES)
def test_priors_match_hmmlearn(covariance_type):
    X = _data(seed=3)
    priors = dict(startprob_prior=2.0, transmat_prior=1.5, means_prior=0.5, means_weight=2.0, covars_prior=0.3,
                  covars_weight=5.0)
    ref, got = _pair(covariance_type, n_iter=4, **priors)
    ref.fit(X, LENGTHS)
    got.fit(X, LENGTHS)
    np.testing.assert_allclose(list(got.monitor_.history), list(ref.monitor_.history), rtol=1e-8)
    assert _rel(got.transmat_, ref.transmat_) < 1e-8
    assert _rel(got.means_, ref.means_) < 1e-8
    assert _rel(got._covars_, _typed_covars(ref)) < 1e-8


class _HmmlearnCovarsWithoutMeans(hmm.GaussianHMM):
    """hmmlearn 0.3 sums the posteriors and gamma-weighted frames only when 'm' is in params,
    yet its covariance update reads them: with 'c' but not 'm' it divides the raw second
    moments by max(0, 1e-5). This corrects that and nothing else."""

    def _needs_sufficient_statistics_for_mean(self):
        return "m" in self.params or "c" in self.params


@pytest.mark.parametrize("params", ["st", "mc", "tc", "c"])
def test_params_letters_match_hmmlearn(params):
    X = _data(seed=4)
    ref, got = _pair("diag", n_iter=3)
    if "c" in params and "m" not in params:
        fixed = _HmmlearnCovarsWithoutMeans(n_components=3, covariance_type="diag", n_iter=3, tol=-np.inf,
                                            init_params="", implementation="log")
        fixed.startprob_, fixed.transmat_, fixed.means_ = ref.startprob_, ref.transmat_, ref.means_
        fixed._covars_ = ref._covars_
        ref = fixed
    ref.params = got.params = params
    ref.fit(X, LENGTHS)
    got.fit(X, LENGTHS)
    assert _rel(got.startprob_, ref.startprob_) < 1e-8
    assert _rel(got.transmat_, ref.transmat_) < 1e-8
    assert _rel(got.means_, ref.means_) < 1e-8
    assert _rel(got._covars_, ref._covars_) < 1e-8


@pytest.mark.parametrize("covariance_type", TYPES)
def test_evaluations_match_hmmlearn(covariance_type):
    X = _data(seed=5)
    ref, got = _pair(covariance_type, n_iter=1)
    assert got.score(X, LENGTHS) == pytest.approx(ref.score(X, LENGTHS), rel=1e-10)
    lp_ref, post_ref = ref.score_samples(X, LENGTHS)
    lp, post = got.score_samples(X, LENGTHS)
    assert lp == pytest.approx(lp_ref, rel=1e-10)
    assert np.max(np.abs(post - post_ref)) < 1e-10
    assert np.max(np.abs(got.predict_proba(X, LENGTHS) - post_ref)) < 1e-10
    vit_ref = ref.decode(X, LENGTHS, algorithm="viterbi")
    vit = got.decode(X, LENGTHS, algorithm="viterbi")
    assert vit[0] == pytest.approx(vit_ref[0], rel=1e-10)
    np.testing.assert_array_equal(vit[1], vit_ref[1])
    np.testing.assert_array_equal(got.predict(X, LENGTHS), ref.predict(X, LENGTHS))
    map_ref = ref.decode(X, LENGTHS, algorithm="map")
    m = got.decode(X, LENGTHS, algorithm="map")
    assert m[0] == pytest.approx(map_ref[0], rel=1e-10)
    np.testing.assert_array_equal(m[1], map_ref[1])
    got.n_features = ref.n_features = X.shape[1]
    assert got.bic(X, LENGTHS) == pytest.approx(ref.bic(X, LENGTHS), rel=1e-10)
    assert got.aic(X, LENGTHS) == pytest.approx(ref.aic(X, LENGTHS), rel=1e-10)


def test_fit_from_kmeans_start_rises_to_a_stationary_point():
    X = _data(seed=6)
    model = cuem.GaussianHMM(n_components=3, covariance_type="full", n_iter=200, tol=1e-6, random_state=0).fit(X, LENGTHS)
    history = np.array(model.monitor_.history)
    assert model.monitor_.converged and len(history) < 200
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))
    # hmmlearn, started where cuem stopped, scores the model as cuem does and barely moves it.
    ref = hmm.GaussianHMM(n_components=3, covariance_type="full", n_iter=2, tol=-np.inf, init_params="",
                          implementation="log")
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = model.startprob_, model.transmat_, model.means_, model.covars_
    ref.fit(X, LENGTHS)
    assert ref.monitor_.history[0] == pytest.approx(model.score(X, LENGTHS), rel=1e-10)
    assert ref.monitor_.history[1] - ref.monitor_.history[0] < 1e-5
    assert model.covars_.shape == (3, 3, 3)
    assert model.n_features == 3


def test_squarem_reaches_the_plain_optimum_in_fewer_passes():
    X = _data(seed=6)
    common = dict(n_components=3, covariance_type="diag", n_iter=5000, tol=1e-7, random_state=0)
    plain = cuem.GaussianHMM(**common).fit(X, LENGTHS)
    fast = cuem.GaussianHMM(acceleration="squarem", **common).fit(X, LENGTHS)
    assert plain.monitor_.converged and fast.monitor_.converged
    assert plain.n_estep_passes_ == len(plain.monitor_.history)
    assert fast.n_estep_passes_ <= plain.n_estep_passes_
    assert fast.score(X, LENGTHS) >= plain.score(X, LENGTHS) - 1e-6
    assert fast.score(X, LENGTHS) == pytest.approx(plain.score(X, LENGTHS), abs=1e-4)
    history = np.array(fast.monitor_.history)
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))
    with pytest.raises(ValueError, match="acceleration"):
        cuem.GaussianHMM(acceleration="fast").fit(X, LENGTHS)


def test_sample_shapes_and_states():
    model = cuem.GaussianHMM(n_components=2, covariance_type="spherical", init_params="")
    model.startprob_ = np.array([1.0, 0.0])
    model.transmat_ = np.array([[0.0, 1.0], [1.0, 0.0]])
    model.means_ = np.array([[0.0, 0.0], [10.0, 10.0]])
    model.covars_ = np.array([0.01, 0.01])
    model.n_features = 2
    X, states = model.sample(100, random_state=3)
    assert X.shape == (100, 2)
    np.testing.assert_array_equal(states, np.arange(100) % 2)
    np.testing.assert_allclose(X, model.means_[states], atol=0.6)
    X2, _ = model.sample(100, random_state=3)
    np.testing.assert_array_equal(X, X2)


def test_bad_input():
    X = _data(seed=7)
    _, got = _pair("diag", n_iter=2)
    with pytest.raises(ValueError, match="lengths sum to"):
        got.fit(X, [10, 20])
    with pytest.raises(ValueError, match="lengths must be positive"):
        got.fit(X, [len(X), 0])
    got.transmat_ = np.array([[0.5, 0.4, 0.1], [0.3, 0.3, 0.3], [0.2, 0.2, 0.6]])
    with pytest.raises(ValueError, match="row 1 sums to 0.9"):
        got.fit(X, LENGTHS)
    with pytest.raises(ValueError, match="covariance_type"):
        cuem.GaussianHMM(covariance_type="banana").fit(X)
    with pytest.raises(cuem.NotFittedError):
        cuem.GaussianHMM().score(X)


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_bounded_memory_segments_match_hmmlearn_and_the_whole_pass(covariance_type):
    # One long sequence and the short ones, fitted a segment of 64 frames at a time
    # (segment_frames) and with the whole-data arrays (-1): both against hmmlearn, and
    # the segmented fit against the whole one to rounding.
    X = _data(seed=3)
    fits = {}
    for segment in (64, -1):
        ref, got = _pair(covariance_type, n_iter=4)
        got.segment_frames = segment
        got.fit(X, LENGTHS)
        fits[segment] = got
    ref.fit(X, LENGTHS)
    for got in fits.values():
        np.testing.assert_allclose(list(got.monitor_.history), list(ref.monitor_.history), rtol=1e-8)
        assert _rel(got.transmat_, ref.transmat_) < 1e-8
        assert _rel(got.means_, ref.means_) < 1e-8
    a, b = fits[64], fits[-1]
    np.testing.assert_allclose(list(a.monitor_.history), list(b.monitor_.history), rtol=1e-12)
    assert _rel(a.transmat_, b.transmat_) < 1e-12
    assert _rel(a.means_, b.means_) < 1e-12
    assert _rel(a._covars_, b._covars_) < 1e-12
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="segment_frames"):
            cuem.GaussianHMM(segment_frames=bad).fit(X)
