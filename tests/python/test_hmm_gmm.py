"""cuem.GMMHMM against hmmlearn 0.3's GMMHMM from the same start parameters
(init_params=''): log-likelihood history, startprob_, transmat_, weights_, means_ and
covars_ after n iterations to 1e-8 relative, every covariance type, with hmmlearn's
default priors, with other scalar priors and with per-entry array priors; score, posteriors, Viterbi states, bic and
aic of the fitted model; n_mix = 1 gives the GaussianHMM's evaluations."""

import numpy as np
import pytest

import cuem

hmm = pytest.importorskip("hmmlearn.hmm", reason="hmmlearn is in scripts/test.sh's .venv")

TYPES = ["spherical", "diag", "full", "tied"]
LENGTHS = [150, 37, 1, 260, 52]
K, M, D = 3, 2, 2


def _data(seed=0):
    """Three states, each a mixture of two clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(K, M, D))
    trans = np.full((K, K), 0.1) + np.eye(K) * 0.7
    trans /= trans.sum(1, keepdims=True)
    X, s = [], 0
    for T in LENGTHS:
        for _ in range(T):
            s = rng.choice(K, p=trans[s])
            X.append(centres[s, rng.integers(M)] + rng.normal(scale=0.8 + 0.2 * s, size=D))
    return np.array(X)


def _start(covariance_type, seed=1):
    rng = np.random.default_rng(seed)
    startprob = rng.uniform(0.2, 1.0, K)
    startprob /= startprob.sum()
    transmat = rng.uniform(0.1, 1.0, (K, K)) + 2 * np.eye(K)
    transmat /= transmat.sum(1, keepdims=True)
    weights = rng.uniform(0.3, 1.0, (K, M))
    weights /= weights.sum(1, keepdims=True)
    means = rng.normal(scale=5.0, size=(K, M, D))

    def spd():
        A = rng.normal(size=(D, D))
        return A @ A.T + D * np.eye(D)

    covars = {
        "spherical": lambda: rng.uniform(1.0, 3.0, (K, M)),
        "diag": lambda: rng.uniform(1.0, 3.0, (K, M, D)),
        "full": lambda: np.array([[spd() for _ in range(M)] for _ in range(K)]),
        "tied": lambda: np.array([spd() for _ in range(K)]),
    }[covariance_type]()
    return startprob, transmat, weights, means, covars


def _pair(covariance_type, n_iter, **priors):
    startprob, transmat, weights, means, covars = _start(covariance_type)
    models = []
    for cls, extra in ((hmm.GMMHMM, {"implementation": "log", "random_state": 0}), (cuem.GMMHMM, {"device": "cpu"})):
        m = cls(n_components=K, n_mix=M, covariance_type=covariance_type, n_iter=n_iter,
                tol=-np.inf if cls is hmm.GMMHMM else 0.0, init_params="", **priors, **extra)
        m.startprob_ = startprob.copy()
        m.transmat_ = transmat.copy()
        m.weights_ = weights.copy()
        m.means_ = means.copy()
        m.covars_ = covars.copy()
        models.append(m)
    return models


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))


def _compare(ref, got):
    assert _rel(got.monitor_.history, ref.monitor_.history) < 1e-8
    for name in ("startprob_", "transmat_", "weights_", "means_", "covars_"):
        assert _rel(getattr(got, name), getattr(ref, name)) < 1e-8, name


@pytest.mark.parametrize("covariance_type", TYPES)
def test_baum_welch_matches_hmmlearn(covariance_type):
    X = _data()
    ref, got = _pair(covariance_type, n_iter=5)
    ref.fit(X, LENGTHS)
    got.fit(X, LENGTHS)
    assert len(got.monitor_.history) == 5
    _compare(ref, got)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_priors_match_hmmlearn(covariance_type):
    X = _data(seed=2)
    priors = dict(startprob_prior=1.5, transmat_prior=2.0, weights_prior=2.0, means_prior=0.5, means_weight=0.1,
                  covars_prior=0.5, covars_weight=2.0)
    # Two iterations: from this start one full component loses its frames, and a scalar
    # covars_prior (hmmlearn adds it to every entry) leaves its covariance singular later.
    ref, got = _pair(covariance_type, n_iter=2, **priors)
    ref.fit(X, LENGTHS)
    got.fit(X, LENGTHS)
    _compare(ref, got)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_array_priors_match_hmmlearn(covariance_type):
    """A different prior value for every state, component and feature, in hmmlearn's shapes."""
    X = _data(seed=2)
    D = X.shape[1]
    rng = np.random.default_rng(7)
    covars_prior_shape, covars_weight_shape = {
        "full": ((K, M, D, D), (K, M)),
        "tied": ((K, D, D), (K,)),
        "diag": ((K, M, D), (K, M, D)),
        "spherical": ((K, M), (K, M)),
    }[covariance_type]
    if covariance_type in ("full", "tied"):  # symmetric positive definite matrices
        covars_prior = np.eye(D) * rng.uniform(0.3, 0.8, covars_prior_shape[:-1])[..., None]
    else:
        covars_prior = rng.uniform(0.3, 0.8, covars_prior_shape)
    priors = dict(weights_prior=rng.uniform(1.5, 3.0, (K, M)), means_prior=rng.normal(size=(K, M, D)),
                  means_weight=rng.uniform(0.05, 0.3, (K, M)), covars_prior=covars_prior,
                  covars_weight=rng.uniform(1.5, 3.0, covars_weight_shape))
    ref, got = _pair(covariance_type, n_iter=2, **priors)
    ref.fit(X, LENGTHS)
    got.fit(X, LENGTHS)
    _compare(ref, got)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_evaluations_match_hmmlearn(covariance_type):
    X = _data(seed=3)
    ref, got = _pair(covariance_type, n_iter=3)
    ref.fit(X, LENGTHS)
    got.fit(X, LENGTHS)
    # Both hold the same parameters for the evaluations (hmmlearn's after its fit).
    for name in ("startprob_", "transmat_", "weights_", "means_", "covars_"):
        setattr(got, name, np.array(getattr(ref, name)))
    assert got.score(X, LENGTHS) == pytest.approx(ref.score(X, LENGTHS), rel=1e-10)
    np.testing.assert_allclose(got.predict_proba(X, LENGTHS), ref.predict_proba(X, LENGTHS), atol=1e-10)
    log_prob, states = got.decode(X, LENGTHS)
    ref_log_prob, ref_states = ref.decode(X, LENGTHS)
    assert log_prob == pytest.approx(ref_log_prob, rel=1e-10)
    np.testing.assert_array_equal(states, ref_states)
    assert got.bic(X, LENGTHS) == pytest.approx(ref.bic(X, LENGTHS), rel=1e-10)
    assert got.aic(X, LENGTHS) == pytest.approx(ref.aic(X, LENGTHS), rel=1e-10)


def test_fit_from_the_kmeans_start_rises():
    X = _data(seed=4)
    m = cuem.GMMHMM(n_components=K, n_mix=M, covariance_type="full", n_iter=30, tol=0.0, device="cpu",
                    random_state=0).fit(X, LENGTHS)
    h = np.array(m.monitor_.history)
    assert len(h) == 30 and np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))
    assert m.weights_.shape == (K, M) and m.means_.shape == (K, M, D) and m.covars_.shape == (K, M, D, D)
    np.testing.assert_allclose(m.weights_.sum(1), 1.0, rtol=1e-12)


def test_one_component_gives_the_gaussian_hmm_evaluations():
    X = _data(seed=5)
    startprob, transmat, _, means, covars = _start("diag")
    g = cuem.GMMHMM(n_components=K, n_mix=1, covariance_type="diag", device="cpu")
    g.startprob_, g.transmat_, g.weights_ = startprob, transmat, np.ones((K, 1))
    g.means_, g.covars_ = means[:, :1], covars[:, :1]
    h = cuem.GaussianHMM(n_components=K, covariance_type="diag", device="cpu")
    h.n_features = D
    h.startprob_, h.transmat_, h.means_, h.covars_ = startprob, transmat, means[:, 0], covars[:, 0]
    assert g.score(X, LENGTHS) == pytest.approx(h.score(X, LENGTHS), rel=1e-12)
    np.testing.assert_allclose(g.predict_proba(X, LENGTHS), h.predict_proba(X, LENGTHS), atol=1e-12)


def test_bad_input():
    X = _data()
    with pytest.raises(ValueError, match="n_mix"):
        cuem.GMMHMM(n_mix=0).fit(X)
    with pytest.raises(ValueError, match="letters"):
        cuem.GMMHMM(params="stmx").fit(X)
    with pytest.raises(ValueError, match="weights_prior"):
        cuem.GMMHMM(n_components=K, n_mix=M, weights_prior=np.ones(M + 1)).fit(X)
    with pytest.raises(ValueError, match="covars_prior"):
        cuem.GMMHMM(n_components=K, n_mix=M, covars_prior=np.nan).fit(X)
    _, got = _pair("diag", n_iter=2)
    got.weights_ = np.full((K, M), 0.6)
    with pytest.raises(ValueError, match="weights"):
        got.fit(X, LENGTHS)
    with pytest.raises(cuem.NotFittedError):
        cuem.GMMHMM().score(X)



def test_sample_follows_the_model():
    """Frames drawn from a GMMHMM: the state sequence's transitions and each state's
    component means and weights as the model's, within sampling error."""
    startprob, transmat, weights, means, covars = _start("diag")
    m = cuem.GMMHMM(n_components=K, n_mix=M, covariance_type="diag", random_state=3)
    m.startprob_, m.transmat_, m.weights_, m.means_, m.covars_ = startprob, transmat, weights, means, covars * 0.01
    X, states = m.sample(40000)
    assert X.shape == (40000, D) and states.shape == (40000,)
    counts = np.zeros((K, K))
    np.add.at(counts, (states[:-1], states[1:]), 1)
    np.testing.assert_allclose(counts / counts.sum(1, keepdims=True), transmat, atol=0.02)
    for k in range(K):
        Xk = X[states == k]
        # Each frame lies near one of its state's component means (variances 0.01-0.03).
        d = np.linalg.norm(Xk[:, None, :] - means[k][None], axis=2)
        nearest = np.argmin(d, axis=1)
        assert np.all(d.min(1) < 1.5)
        np.testing.assert_allclose(np.bincount(nearest, minlength=M) / len(Xk), weights[k], atol=0.03)
    again, _ = m.sample(40000)
    np.testing.assert_array_equal(X, again)  # deterministic for a seed
