#pragma once
// The plain HMM reference of the HMM tests: a known chain and frames drawn from it,
// forward-backward in log space over log-densities from test_util.hpp's own Cholesky,
// and hmmlearn's M-step by its textbook formulas (from the gamma-weighted moments).
#include <cmath>
#include <random>
#include <vector>

#include "cuem/fit.hpp"
#include "cuem/hmm.hpp"
#include "test_util.hpp"

namespace hmm_test {

using cuem::CovarianceType;
using cuem_test::Matrix;

// ---- a known HMM and its frames ---------------------------------------------------------

struct Chain {
  int K = 3, D = 2;
  CovarianceType type = CovarianceType::diag;
  std::vector<double> startprob, transmat;
  cuem::Model emissions;  // weights 1: log_joint gives log N(x | k)
};

inline Chain make_chain(CovarianceType type, int K, int D, std::uint64_t seed) {
  Chain c;
  c.K = K;
  c.D = D;
  c.type = type;
  const cuem_test::Mixture mix = cuem_test::make_mixture(type, K, D, 3.0, seed);
  c.emissions = cuem_test::model_from_mixture(mix, type);
  c.emissions.weights.assign(K, 1.0);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.2, 1.0);
  c.startprob.resize(K);
  double s = 0;
  for (double& p : c.startprob) s += p = u(rng);
  for (double& p : c.startprob) p /= s;
  c.transmat.resize(static_cast<std::size_t>(K) * K);
  for (int i = 0; i < K; ++i) {
    double r = 0;
    for (int j = 0; j < K; ++j) r += c.transmat[i * K + j] = u(rng) + (i == j ? 3.0 : 0.0);
    for (int j = 0; j < K; ++j) c.transmat[i * K + j] /= r;
  }
  return c;
}

// Frames of sequences of the given lengths, drawn from the chain by a plain loop.
inline std::vector<double> draw(const Chain& c, const std::vector<std::size_t>& lengths, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> z(0.0, 1.0);
  std::vector<Matrix> L;
  for (int k = 0; k < c.K; ++k) L.push_back(cuem_test::cholesky_lower(cuem_test::full_covariance(c.emissions, k), c.D));
  const auto pick = [&](const double* p) {
    const double v = u(rng);
    double acc = 0;
    for (int k = 0; k < c.K; ++k)
      if (v < (acc += p[k])) return k;
    return c.K - 1;
  };
  std::vector<double> X;
  for (std::size_t T : lengths) {
    int s = pick(c.startprob.data());
    for (std::size_t t = 0; t < T; ++t) {
      if (t > 0) s = pick(c.transmat.data() + s * c.K);
      std::vector<double> e(c.D);
      for (double& v : e) v = z(rng);
      for (int i = 0; i < c.D; ++i) {
        double v = c.emissions.means[s * c.D + i];
        for (int j = 0; j <= i; ++j) v += L[s][i * c.D + j] * e[j];
        X.push_back(v);
      }
    }
  }
  return X;
}

inline cuem::HmmModel to_hmm(const Chain& c) {
  cuem::HmmModel m;
  m.startprob = c.startprob;
  m.transmat = c.transmat;
  m.emissions = c.emissions;
  return m;
}

// ---- the reference: log-space forward-backward and hmmlearn's M-step ----------------------

struct Reference {
  double log_likelihood = 0;
  std::vector<double> gamma;  // T x K
  std::vector<double> start;  // K
  std::vector<double> trans;  // K x K
};

// Log-space forward-backward over given log-densities le (N x K, log p(x_t | k)).
inline Reference reference_chain(const Chain& c, const std::vector<double>& le, const std::vector<std::size_t>& lengths) {
  const int K = c.K;
  const std::size_t N = le.size() / K;
  Reference r;
  r.gamma.assign(N * K, 0.0);
  r.start.assign(K, 0.0);
  r.trans.assign(static_cast<std::size_t>(K) * K, 0.0);
  std::size_t lo = 0;
  for (std::size_t T : lengths) {
    std::vector<double> la(T * K), lb(T * K, 0.0), v(K);
    for (int k = 0; k < K; ++k) la[k] = std::log(c.startprob[k]) + le[lo * K + k];
    for (std::size_t t = 1; t < T; ++t)
      for (int j = 0; j < K; ++j) {
        for (int i = 0; i < K; ++i) v[i] = la[(t - 1) * K + i] + std::log(c.transmat[i * K + j]);
        la[t * K + j] = cuem_test::logsumexp(v.data(), K) + le[(lo + t) * K + j];
      }
    for (std::size_t t = T - 1; t-- > 0;)
      for (int i = 0; i < K; ++i) {
        for (int j = 0; j < K; ++j)
          v[j] = std::log(c.transmat[i * K + j]) + le[(lo + t + 1) * K + j] + lb[(t + 1) * K + j];
        lb[t * K + i] = cuem_test::logsumexp(v.data(), K);
      }
    const double ll = cuem_test::logsumexp(la.data() + (T - 1) * K, K);
    r.log_likelihood += ll;
    for (std::size_t t = 0; t < T; ++t)
      for (int k = 0; k < K; ++k) r.gamma[(lo + t) * K + k] = std::exp(la[t * K + k] + lb[t * K + k] - ll);
    for (int k = 0; k < K; ++k) r.start[k] += r.gamma[lo * K + k];
    for (std::size_t t = 0; t + 1 < T; ++t)
      for (int i = 0; i < K; ++i)
        for (int j = 0; j < K; ++j)
          r.trans[i * K + j] += std::exp(la[t * K + i] + std::log(c.transmat[i * K + j]) +
                                         le[(lo + t + 1) * K + j] + lb[(t + 1) * K + j] - ll);
    lo += T;
  }
  return r;
}

inline Reference reference_estep(const Chain& c, const std::vector<double>& X, const std::vector<std::size_t>& lengths) {
  const std::size_t N = X.size() / c.D;
  return reference_chain(c, cuem_test::log_joint(c.emissions, cuem::DataView(X.data(), N, c.D)), lengths);
}

// hmmlearn's GaussianHMM M-step with its default priors (covars_prior 1e-2, covars_weight 1,
// no mean prior), in its own raw-moment form.
// The gamma-weighted moments of each state: post_k = sum g, obs_k = sum g x, oo_k = sum g x x^T.
struct Moments {
  std::vector<double> post, obs;
  std::vector<Matrix> oo;
  Moments(int K, int D)
      : post(K, 0.0), obs(static_cast<std::size_t>(K) * D, 0.0), oo(K, Matrix(static_cast<std::size_t>(D) * D, 0.0)) {}
};

inline Chain reference_mstep_from(const Chain& c, const Reference& r, const Moments& mo) {
  const int K = c.K, D = c.D;
  const std::vector<double>& post = mo.post;
  const std::vector<double>& obs = mo.obs;
  const std::vector<Matrix>& oo = mo.oo;
  Chain n = c;
  double s = 0;
  for (int k = 0; k < K; ++k) s += n.startprob[k] = r.start[k];
  for (int k = 0; k < K; ++k) n.startprob[k] /= s;
  for (int i = 0; i < K; ++i) {
    double row = 0;
    for (int j = 0; j < K; ++j) row += n.transmat[i * K + j] = r.trans[i * K + j];
    for (int j = 0; j < K; ++j) n.transmat[i * K + j] /= row;
  }
  for (int k = 0; k < K; ++k)
    for (int i = 0; i < D; ++i) n.emissions.means[k * D + i] = obs[k * D + i] / post[k];
  const auto scatter = [&](int k, int i, int j) {  // sum g (x - mu)_i (x - mu)_j
    const double* mu = n.emissions.means.data() + k * D;
    return oo[k][i * D + j] - obs[k * D + i] * mu[j] - mu[i] * obs[k * D + j] + mu[i] * mu[j] * post[k];
  };
  const double prior = 1e-2, cw = 1.0;
  switch (c.type) {
    case CovarianceType::diag:
      for (int k = 0; k < K; ++k)
        for (int i = 0; i < D; ++i) n.emissions.covariances[k * D + i] = (prior + scatter(k, i, i)) / post[k];
      break;
    case CovarianceType::spherical:
      for (int k = 0; k < K; ++k) {
        double m = 0;
        for (int i = 0; i < D; ++i) m += (prior + scatter(k, i, i)) / post[k];
        n.emissions.covariances[k] = m / D;
      }
      break;
    case CovarianceType::full:
      for (int k = 0; k < K; ++k)
        for (int i = 0; i < D; ++i)
          for (int j = 0; j < D; ++j)
            n.emissions.covariances[(k * D + i) * D + j] =
                (prior + scatter(k, i, j)) / (std::max(cw - D, 0.0) + post[k]);
      break;
    case CovarianceType::tied: {
      double total = 0;
      for (int k = 0; k < K; ++k) total += post[k];
      for (int i = 0; i < D; ++i)
        for (int j = 0; j < D; ++j) {
          double v = prior;
          for (int k = 0; k < K; ++k) v += scatter(k, i, j);
          n.emissions.covariances[i * D + j] = v / (std::max(cw - D, 0.0) + total);
        }
      break;
    }
  }
  return n;
}

inline Chain reference_mstep(const Chain& c, const Reference& r, const std::vector<double>& X) {
  const int K = c.K, D = c.D;
  const std::size_t N = X.size() / D;
  Moments mo(K, D);
  for (std::size_t t = 0; t < N; ++t)
    for (int k = 0; k < K; ++k) {
      const double g = r.gamma[t * K + k];
      mo.post[k] += g;
      for (int i = 0; i < D; ++i) {
        mo.obs[k * D + i] += g * X[t * D + i];
        for (int j = 0; j < D; ++j) mo.oo[k][i * D + j] += g * X[t * D + i] * X[t * D + j];
      }
    }
  return reference_mstep_from(c, r, mo);
}

inline cuem::HmmOptions options_from(const Chain& c, int n_iter) {
  cuem::HmmOptions o;
  o.n_components = c.K;
  o.covariance_type = c.type;
  o.n_iter = n_iter;
  o.tol = 0.0;
  o.init_params = "";
  o.startprob_init = c.startprob;
  o.transmat_init = c.transmat;
  o.means_init = c.emissions.means;
  o.covars_init = c.emissions.covariances;
  o.device = cuem::parse_device("cpu");
  return o;
}

}  // namespace hmm_test
