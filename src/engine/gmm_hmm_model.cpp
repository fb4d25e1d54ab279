#include "engine/gmm_hmm_model.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/m_step.hpp"
#include "core/prepared_params.hpp"
#include "cuem/errors.hpp"

namespace cuem::engine {
namespace {

// The components' covariance type: hmmlearn's per-state tie is a full matrix per component.
CovarianceType component_type(CovarianceType t) { return t == CovarianceType::tied ? CovarianceType::full : t; }

// A prior array holds one value for every entry or one per entry.
double entry(const std::vector<double>& v, std::size_t i) { return v.size() == 1 ? v[0] : v[i]; }
bool is_default(const std::vector<double>& v) { return v.size() == 1 && std::isnan(v[0]); }

// hmmlearn's prior defaults per type (GMMHMM._init_covar_priors), entry i of the type's shape.
double covars_prior_of(const GmmHmmOptions& o, std::size_t i) {
  if (!is_default(o.priors.covars_prior)) return entry(o.priors.covars_prior, i);
  switch (o.covariance_type) {
    case CovarianceType::diag: return -1.5;
    case CovarianceType::spherical: return -(o.n_mix + 2.0) / 2.0;
    default: return 0.0;
  }
}
double covars_weight_of(const GmmHmmOptions& o, int n_features, std::size_t i) {
  if (!is_default(o.priors.covars_weight)) return entry(o.priors.covars_weight, i);
  const double D = static_cast<double>(n_features);
  switch (o.covariance_type) {
    case CovarianceType::full: return -(1.0 + D + 1.0);
    case CovarianceType::tied: return -(o.n_mix + D + 1.0);
    default: return 0.0;
  }
}

}  // namespace

Model gmm_hmm_components(const GmmHmmModel& g) {
  const int K = g.n_components, M = g.n_mix, D = g.n_features;
  const std::size_t uD = static_cast<std::size_t>(D), KM = static_cast<std::size_t>(K) * static_cast<std::size_t>(M);
  Model m;
  m.covariance_type = component_type(g.covariance_type);
  m.n_components = static_cast<int>(KM);
  m.n_features = D;
  m.weights.resize(KM);
  for (std::size_t c = 0; c < KM; ++c) m.weights[c] = g.weights[c] / K;
  m.means = g.means;
  if (g.covariance_type == CovarianceType::tied) {
    m.covariances.resize(KM * uD * uD);
    for (std::size_t c = 0; c < KM; ++c)
      std::copy(g.covars.begin() + static_cast<std::ptrdiff_t>(c / static_cast<std::size_t>(M) * uD * uD),
                g.covars.begin() + static_cast<std::ptrdiff_t>((c / static_cast<std::size_t>(M) + 1) * uD * uD),
                m.covariances.begin() + static_cast<std::ptrdiff_t>(c * uD * uD));
  } else {
    m.covariances = g.covars;
  }
  try {
    compute_precision_cholesky(m, 0.0);
  } catch (const NumericalError& e) {
    throw NumericalError(std::string("a GMMHMM component's covariance is not positive definite (") + e.what() +
                         "; component k M + m of state k); raise covars_prior or min_covar, or use fewer components");
  }
  return m;
}

HmmModel gmm_hmm_chain(const GmmHmmModel& g) {
  HmmModel h;
  h.startprob = g.startprob;
  h.transmat = g.transmat;
  h.emissions.n_components = g.n_components;
  h.emissions.n_features = g.n_features;
  return h;
}

void gmm_hmm_emissions(Primitives& prims, const GmmHmmModel& g, EmissionFrames& f, std::vector<double>& share) {
  const std::size_t N = prims.rows();
  const std::size_t K = static_cast<std::size_t>(g.n_components), M = static_cast<std::size_t>(g.n_mix);
  const Model comps = gmm_hmm_components(g);
  share.resize(N * K * M);
  f.b.resize(N * K);
  f.s.resize(N);
  // Under weights w_km / K: posterior_km = w_km p_km(x) / sum_j p_j(x), where p_j is
  // state j's mixture density, and log p(x) = log sum_j p_j(x) - log K.
  prims.posteriors(prepare(comps), 0, N, f.s.data(), share.data());
  const double log_K = std::log(static_cast<double>(K));
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t ti = 0; ti < static_cast<std::ptrdiff_t>(N); ++ti) {
    const std::size_t t = static_cast<std::size_t>(ti);
    f.s[t] += log_K;
    for (std::size_t k = 0; k < K; ++k) {
      double* r = share.data() + (t * K + k) * M;
      double b = 0.0;
      for (std::size_t m = 0; m < M; ++m) b += r[m];
      f.b[t * K + k] = b;
      for (std::size_t m = 0; m < M; ++m) r[m] = b > 0.0 ? r[m] / b : 0.0;
    }
  }
}

GmmHmmStats GmmHmmEM::e_step(const GmmHmmModel& m) {
  const std::size_t K = static_cast<std::size_t>(m.n_components), M = static_cast<std::size_t>(m.n_mix);
  const std::size_t N = prims_.rows();
  GmmHmmStats s;
  s.start.assign(K, 0.0);
  s.trans.assign(K * K, 0.0);
  s.weight = static_cast<double>(N);
  s.at = m;
  gmm_hmm_emissions(prims_, m, frames_, share_);
  s.log_likelihood = chain_pass(gmm_hmm_chain(m), offsets_, frames_, s.start.data(), s.trans.data(), &chain_work_);
  // A component's weight: its state's posterior times its share of the state's density.
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t ti = 0; ti < static_cast<std::ptrdiff_t>(N); ++ti) {
    const std::size_t t = static_cast<std::size_t>(ti);
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t c = 0; c < M; ++c) share_[(t * K + k) * M + c] *= frames_.b[t * K + k];
  }
  const Model comps = gmm_hmm_components(m);
  s.emission = prims_.weighted_stats(Responsibilities::given_weights(share_.data()), comps.covariance_type,
                                     comps.n_components, comps.means);
  return s;
}

std::vector<double> additive_parts(const GmmHmmStats& s) {
  return chain_additive_parts(s.emission, gmm_hmm_components(s.at).means, s.start, s.trans, s.log_likelihood,
                              s.weight);
}

void set_additive_parts(GmmHmmStats& s, const std::vector<double>& v) {
  set_chain_additive_parts(v, s.emission, s.start, s.trans, s.log_likelihood, s.weight);
}

GmmHmmStats gmm_hmm_zero_stats(const GmmHmmModel& m) {
  const std::size_t K = static_cast<std::size_t>(m.n_components);
  const Model comps = gmm_hmm_components(m);
  GmmHmmStats s;
  s.emission = SufficientStats::zeros(comps.covariance_type, comps.n_components, comps.n_features, comps.means);
  s.start.assign(K, 0.0);
  s.trans.assign(K * K, 0.0);
  s.at = m;
  return s;
}

GmmHmmModel gmm_hmm_m_step(const GmmHmmStats& s, const GmmHmmOptions& o) {
  const GmmHmmModel& old = s.at;
  const int K = old.n_components, M = old.n_mix, D = old.n_features;
  const std::size_t uK = static_cast<std::size_t>(K), uM = static_cast<std::size_t>(M), uD = static_cast<std::size_t>(D);
  const std::size_t KM = uK * uM;
  const auto updates = [&](char c) { return o.params.find(c) != std::string::npos; };
  const GmmHmmPriors& p = o.priors;
  GmmHmmModel m = old;
  HmmPriors chain_priors;
  chain_priors.startprob_prior = p.startprob_prior;
  chain_priors.transmat_prior = p.transmat_prior;
  chain_m_step(s.start, s.trans, chain_priors, o.params, old.startprob, old.transmat, m.startprob, m.transmat);

  const std::vector<double>& nk = s.emission.nk;  // post_mix_sum, K x M
  std::vector<double> post(uK, 0.0);              // post_sum
  for (std::size_t c = 0; c < KM; ++c) post[c / uM] += nk[c];
  if (updates('w')) {
    // hmmlearn: (N_km + a_km - 1) / (N_k + sum_m (a_km - 1)).
    for (std::size_t c = 0; c < KM; ++c) {
      double sum_a = 0.0;
      for (std::size_t j = (c / uM) * uM; j < (c / uM + 1) * uM; ++j) sum_a += entry(p.weights_prior, j) - 1.0;
      const double d = post[c / uM] + sum_a;
      if (d != 0.0) m.weights[c] = (nk[c] + entry(p.weights_prior, c) - 1.0) / d;
    }
  }
  if (updates('m')) {
    // (lambda mu0 + sum g x) / (N + lambda), with sum g x = N c + S1 about the shift c.
    for (std::size_t c = 0; c < KM; ++c) {
      const double lambda = entry(p.means_weight, c);
      const double d = nk[c] + lambda;
      if (d == 0.0) continue;  // no weight and no prior: the mean is kept
      for (std::size_t i = 0; i < uD; ++i) {
        const std::size_t at = c * uD + i;
        const double shift = s.emission.shift[at];
        m.means[at] = shift + (lambda * (entry(p.means_prior, at) - shift) + s.emission.s1[at]) / d;
      }
    }
  }
  if (updates('c')) {
    // hmmlearn's scatter is about the means the E-step ran under (the old ones).
    const SufficientStats sc = s.emission.recentred(old.means);
    const auto lambda = [&](std::size_t c) { return entry(p.means_weight, c); };
    const auto psi = [&](std::size_t i) { return covars_prior_of(o, i); };
    const auto nu = [&](std::size_t i) { return covars_weight_of(o, D, i); };
    const auto cm = [&](std::size_t c, std::size_t i) { return m.means[c * uD + i] - entry(p.means_prior, c * uD + i); };
    const auto scatter = [&](std::size_t c, std::size_t i, std::size_t j) {  // full layout, upper triangle
      return sc.s2[(c * uD + std::min(i, j)) * uD + std::max(i, j)];
    };
    switch (o.covariance_type) {
      case CovarianceType::full:
        for (std::size_t c = 0; c < KM; ++c) {
          const double d = nk[c] + 1.0 + nu(c) + D + 1.0;
          for (std::size_t i = 0; i < uD; ++i)
            for (std::size_t j = 0; j < uD; ++j) {
              const std::size_t at = (c * uD + i) * uD + j;
              m.covars[at] = (psi(at) + lambda(c) * cm(c, i) * cm(c, j) + scatter(c, i, j)) / d;
            }
        }
        break;
      case CovarianceType::tied:
        for (std::size_t k = 0; k < uK; ++k) {
          const double d = post[k] + M + nu(k) + D + 1.0;
          for (std::size_t i = 0; i < uD; ++i)
            for (std::size_t j = 0; j < uD; ++j) {
              const std::size_t at = (k * uD + i) * uD + j;
              double v = psi(at);
              for (std::size_t c = k * uM; c < (k + 1) * uM; ++c)
                v += lambda(c) * cm(c, i) * cm(c, j) + scatter(c, i, j);
              m.covars[at] = v / d;
            }
        }
        break;
      case CovarianceType::diag:
        for (std::size_t c = 0; c < KM; ++c)
          for (std::size_t i = 0; i < uD; ++i) {
            const std::size_t at = c * uD + i;
            m.covars[at] = (lambda(c) * cm(c, i) * cm(c, i) + 2.0 * nu(at) + sc.s2[at]) / (nk[c] + 1.0 + 2.0 * (psi(at) + 1.0));
          }
        break;
      case CovarianceType::spherical:
        for (std::size_t c = 0; c < KM; ++c) {
          double n2 = 0.0, s2 = 0.0;
          for (std::size_t i = 0; i < uD; ++i) {
            n2 += cm(c, i) * cm(c, i);
            s2 += sc.s2[c * uD + i];
          }
          m.covars[c] = (lambda(c) * n2 + 2.0 * nu(c) + s2) / (D * (nk[c] + 1.0) + 2.0 * (psi(c) + 1.0));
        }
        break;
    }
  }
  gmm_hmm_components(m);  // positive definite, or a NumericalError naming the way out
  return m;
}

GmmHmmModel GmmHmmEM::initialize(std::uint64_t seed, std::vector<std::string>*) {
  const int K = o_.n_components, M = o_.n_mix, D = static_cast<int>(X_.n_cols);
  const std::size_t uK = static_cast<std::size_t>(K), uM = static_cast<std::size_t>(M), uD = static_cast<std::size_t>(D);
  const auto starts = [&](char c) { return o_.init_params.find(c) != std::string::npos; };
  GmmHmmModel m = o_.init;
  m.n_components = K;
  m.n_mix = M;
  m.n_features = D;
  m.covariance_type = o_.covariance_type;
  if (starts('s')) m.startprob.assign(uK, 1.0 / K);
  if (starts('t')) m.transmat.assign(uK * uK, 1.0 / K);
  if (starts('w')) m.weights.assign(uK * uM, 1.0 / M);
  if (starts('m')) m.means = kmeans(prims_, X_, K * M, seed, 300, 1e-4, o_.interrupted, &shared_).centers;
  if (starts('c')) {
    const std::vector<double> cv = frames_covariance(prims_, D, o_.min_covar);
    m.covars.clear();
    switch (o_.covariance_type) {
      case CovarianceType::full:
        for (std::size_t c = 0; c < uK * uM; ++c) m.covars.insert(m.covars.end(), cv.begin(), cv.end());
        break;
      case CovarianceType::tied:
        for (std::size_t k = 0; k < uK; ++k) m.covars.insert(m.covars.end(), cv.begin(), cv.end());
        break;
      case CovarianceType::diag:
        for (std::size_t c = 0; c < uK * uM; ++c)
          for (std::size_t d = 0; d < uD; ++d) m.covars.push_back(cv[d * uD + d]);
        break;
      case CovarianceType::spherical: {
        double mean = 0.0;
        for (double v : cv) mean += v;
        m.covars.assign(uK * uM, mean / static_cast<double>(uD * uD));
        break;
      }
    }
  }
  return m;
}

}  // namespace cuem::engine
