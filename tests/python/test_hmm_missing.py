"""cuem.GaussianHMM(missing='marginalize') on frames with NaN entries (hmmlearn refuses
them, hmmlearn#327): score and posteriors against a numpy forward-backward over the
marginal Gaussian densities of each frame's observed entries; one Baum-Welch step against
a numpy EM step with the conditional expectations; the trace never falls; without NaN the
policy changes nothing, bit for bit; the errors."""

import numpy as np
import pytest

import cuem

TYPES = ["spherical", "diag", "full", "tied"]
LENGTHS = [80, 23, 1, 140]


def _data(seed=0, D=3, p=0.25):
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
    X = np.array(X)
    X[rng.uniform(size=X.shape) < p] = np.nan
    X[[5, 81, 150]] = np.nan  # frames with nothing observed
    return X


def _model(covariance_type, D=3, seed=1, n_iter=1):
    rng = np.random.default_rng(seed)
    K = 3
    m = cuem.GaussianHMM(n_components=K, covariance_type=covariance_type, n_iter=n_iter, tol=0.0, init_params="",
                         device="cpu", missing="marginalize")
    m.n_features = D
    m.startprob_ = rng.uniform(0.2, 1.0, K)
    m.startprob_ /= m.startprob_.sum()
    m.transmat_ = rng.uniform(0.1, 1.0, (K, K)) + 2 * np.eye(K)
    m.transmat_ /= m.transmat_.sum(1, keepdims=True)
    m.means_ = rng.normal(scale=4.0, size=(K, D))
    if covariance_type == "spherical":
        m.covars_ = rng.uniform(1.0, 3.0, K)
    elif covariance_type == "diag":
        m.covars_ = rng.uniform(1.0, 3.0, (K, D))
    elif covariance_type == "tied":
        A = rng.normal(size=(D, D))
        m.covars_ = A @ A.T + D * np.eye(D)
    else:
        m.covars_ = np.array([(lambda A: A @ A.T + D * np.eye(D))(rng.normal(size=(D, D))) for _ in range(K)])
    return m


def _logsumexp(a, axis):
    top = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(a - top), axis=axis))


def _reference(m, X, lengths):
    """log p(X), gamma, and the expected moments (post, sum g x^, sum g (x^ x^T + C)) per state."""
    K, D = m.means_.shape
    covs = m.covars_  # K full matrices whatever the type
    N = len(X)
    le = np.zeros((N, K))
    filled = np.zeros((N, K, D))
    cond = np.zeros((N, K, D, D))
    observed = ~np.isnan(X)
    for t in range(N):
        o, mi = observed[t], ~observed[t]
        if not o.any():
            continue
        for k in range(K):
            S, mu = covs[k], m.means_[k]
            Soo = S[np.ix_(o, o)]
            r = X[t, o] - mu[o]
            w = np.linalg.solve(Soo, r)
            le[t, k] = -0.5 * (o.sum() * np.log(2 * np.pi) + np.linalg.slogdet(Soo)[1] + r @ w)
            x = X[t].copy()
            x[mi] = mu[mi] + S[np.ix_(mi, o)] @ w
            filled[t, k] = x
            cond[t, k][np.ix_(mi, mi)] = S[np.ix_(mi, mi)] - S[np.ix_(mi, o)] @ np.linalg.solve(Soo, S[np.ix_(o, mi)])
    logA = np.log(m.transmat_)
    total, gamma, lo = 0.0, np.zeros((N, K)), 0
    xi = np.zeros((K, K))
    for T in lengths:
        la, lb = np.zeros((T, K)), np.zeros((T, K))
        la[0] = np.log(m.startprob_) + le[lo]
        for t in range(1, T):
            la[t] = _logsumexp(la[t - 1][:, None] + logA, 0) + le[lo + t]
        for t in range(T - 2, -1, -1):
            lb[t] = _logsumexp(logA + le[lo + t + 1] + lb[t + 1], 1)
        ll = _logsumexp(la[-1], 0)
        total += ll
        gamma[lo:lo + T] = np.exp(la + lb - ll)
        for t in range(T - 1):
            xi += np.exp(la[t][:, None] + logA + le[lo + t + 1] + lb[t + 1] - ll)
        lo += T
    has = observed.any(1)
    g = gamma * has[:, None]
    post = g.sum(0)
    obs = np.einsum("tk,tkd->kd", g, filled)
    oo = np.einsum("tk,tkd,tke->kde", g, filled, filled) + np.einsum("tk,tkde->kde", g, cond)
    start = np.zeros(K)
    lo = 0
    for T in lengths:
        start += gamma[lo]
        lo += T
    return total, gamma, post, obs, oo, start, xi


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))


@pytest.mark.parametrize("covariance_type", TYPES)
def test_evaluations_match_the_marginal_forward_backward(covariance_type):
    X = _data()
    m = _model(covariance_type)
    total, gamma, *_ = _reference(m, X, LENGTHS)
    assert abs(m.score(X, LENGTHS) - total) <= 1e-10 * abs(total)
    log_prob, posteriors = m.score_samples(X, LENGTHS)
    assert abs(log_prob - total) <= 1e-10 * abs(total)
    assert np.max(np.abs(posteriors - gamma)) < 1e-10
    assert m.decode(X, LENGTHS)[1].shape == (len(X),)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_one_step_matches_numpy_em_with_conditional_expectations(covariance_type):
    X = _data(seed=3)
    m = _model(covariance_type)
    total, _, post, obs, oo, start, xi = _reference(m, X, LENGTHS)
    with pytest.warns(Warning, match="every entry missing"):
        m.fit(X, LENGTHS)
    assert abs(m.monitor_.history[0] - total) <= 1e-10 * abs(total)
    assert _rel(m.startprob_, start / start.sum()) < 1e-10
    assert _rel(m.transmat_, xi / xi.sum(1, keepdims=True)) < 1e-10
    means = obs / post[:, None]
    assert _rel(m.means_, means) < 1e-10
    # hmmlearn's covariance update with its default priors (covars_prior 1e-2, covars_weight 1).
    D = X.shape[1]
    scatter = oo - np.einsum("kd,ke->kde", means, obs) - np.einsum("kd,ke->kde", obs, means) + \
        np.einsum("k,kd,ke->kde", post, means, means)
    if covariance_type == "full":
        covs = (1e-2 + scatter) / (max(1 - D, 0) + post)[:, None, None]
    elif covariance_type == "tied":
        covs = np.broadcast_to((1e-2 + scatter.sum(0)) / (max(1 - D, 0) + post.sum()), scatter.shape)
    else:
        diag = (1e-2 + np.einsum("kdd->kd", scatter)) / np.maximum(post, 1e-5)[:, None]
        if covariance_type == "spherical":
            diag = np.repeat(diag.mean(1, keepdims=True), D, axis=1)
        covs = np.array([np.diag(v) for v in diag])
    assert _rel(m.covars_, covs) < 1e-10


@pytest.mark.parametrize("covariance_type", TYPES)
def test_trace_never_decreases_from_a_kmeans_start(covariance_type):
    X = _data(seed=5, p=0.3)
    with pytest.warns(Warning, match="every entry missing"):
        m = cuem.GaussianHMM(n_components=3, covariance_type=covariance_type, n_iter=30, tol=0.0, device="cpu",
                             missing="marginalize", random_state=0).fit(X, LENGTHS)
    h = np.array(m.monitor_.history)
    assert len(h) == 30
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))
    assert np.all(np.isfinite(m.means_))


def test_without_nan_the_policy_changes_nothing():
    X = np.nan_to_num(_data(p=0.0), nan=0.5)
    a = cuem.GaussianHMM(n_components=3, covariance_type="full", n_iter=5, device="cpu", random_state=2).fit(X, LENGTHS)
    b = cuem.GaussianHMM(n_components=3, covariance_type="full", n_iter=5, device="cpu", random_state=2,
                         missing="marginalize").fit(X, LENGTHS)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.monitor_.history == b.monitor_.history


def test_errors():
    X = _data()
    with pytest.raises(ValueError, match="missing='marginalize'"):
        cuem.GaussianHMM(n_components=3, device="cpu").fit(X, LENGTHS)
    with pytest.raises(ValueError, match="missing"):
        cuem.GaussianHMM(missing="drop").fit(X, LENGTHS)
    no_column = X.copy()
    no_column[:, 1] = np.nan
    with pytest.raises(cuem.DataError):
        cuem.GaussianHMM(n_components=3, device="cpu", missing="marginalize").fit(no_column, LENGTHS)
    inf = X.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        cuem.GaussianHMM(n_components=3, device="cpu", missing="marginalize").fit(inf, LENGTHS)
