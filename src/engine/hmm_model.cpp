#include "engine/hmm_model.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <string>

#include "core/incremental_bound.hpp"
#include "core/m_step.hpp"
#include "core/point_math.hpp"
#include "core/prepared_params.hpp"
#include "cuem/errors.hpp"
#include "engine/hmm_chain.hpp"
#include "engine/hmm_device_chain.hpp"
#include "engine/hmm_pipeline.hpp"
#include "engine/incomplete_rows.hpp"
#include "engine/large_arrays.hpp"

namespace cuem::engine {
namespace {

// A prior array holds one value for every entry or one per entry.
double entry(const std::vector<double>& v, std::size_t i) { return v.size() == 1 ? v[0] : v[i]; }

// hmmlearn's normalisation of a row: divided by its sum, left as it is where the sum is 0.
void normalise(double* a, int n) {
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += a[i];
  if (sum == 0.0) return;
  for (int i = 0; i < n; ++i) a[i] /= sum;
}

std::vector<double> transpose(const std::vector<double>& A, std::size_t n) {
  std::vector<double> t(n * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) t[j * n + i] = A[i * n + j];
  return t;
}

}  // namespace

void HmmStats::merge(const HmmStats& o) {
  if (start.size() != o.start.size() || trans.size() != o.trans.size())
    throw Error("internal: HMM statistics of different numbers of states");
  emission.merge(o.emission);
  for (std::size_t i = 0; i < start.size(); ++i) start[i] += o.start[i];
  for (std::size_t i = 0; i < trans.size(); ++i) trans[i] += o.trans[i];
  log_likelihood += o.log_likelihood;
  weight += o.weight;
  if (o.serial > serial) {
    at = o.at;
    serial = o.serial;
  }
}

std::vector<double> chain_additive_parts(const SufficientStats& emission, const std::vector<double>& means,
                                         const std::vector<double>& start, const std::vector<double>& trans,
                                         double log_likelihood, double weight) {
  const SufficientStats e = emission.shift == means ? emission : emission.recentred(means);
  std::vector<double> v;
  v.reserve(e.nk.size() + e.s1.size() + e.s2.size() + 3 + start.size() + trans.size() + 2);
  for (const std::vector<double>* part : {&e.nk, &e.s1, &e.s2}) v.insert(v.end(), part->begin(), part->end());
  v.push_back(e.log_likelihood);
  v.push_back(static_cast<double>(e.n_points));
  v.push_back(e.weight);
  v.insert(v.end(), start.begin(), start.end());
  v.insert(v.end(), trans.begin(), trans.end());
  v.push_back(log_likelihood);
  v.push_back(weight);
  return v;
}

void set_chain_additive_parts(const std::vector<double>& v, SufficientStats& e, std::vector<double>& start,
                              std::vector<double>& trans, double& log_likelihood, double& weight) {
  if (v.size() != e.nk.size() + e.s1.size() + e.s2.size() + 3 + start.size() + trans.size() + 2)
    throw Error("internal: HMM statistics of another shape");
  auto at = v.begin();
  const auto take = [&](std::vector<double>& part) {
    std::copy_n(at, part.size(), part.begin());
    at += static_cast<std::ptrdiff_t>(part.size());
  };
  take(e.nk);
  take(e.s1);
  take(e.s2);
  e.log_likelihood = at[0];
  e.n_points = static_cast<std::size_t>(at[1]);
  e.weight = at[2];
  at += 3;
  take(start);
  take(trans);
  log_likelihood = at[0];
  weight = at[1];
}

std::vector<double> additive_parts(const HmmStats& s) {
  return chain_additive_parts(s.emission, s.at.emissions.means, s.start, s.trans, s.log_likelihood, s.weight);
}

void set_additive_parts(HmmStats& s, const std::vector<double>& v) {
  set_chain_additive_parts(v, s.emission, s.start, s.trans, s.log_likelihood, s.weight);
}

namespace {

// Every additive part of s times f (the emission sums are linear in the weights, whatever
// their shift).
void scale(HmmStats& s, double f) {
  for (double& v : s.emission.nk) v *= f;
  for (double& v : s.emission.s1) v *= f;
  for (double& v : s.emission.s2) v *= f;
  s.emission.log_likelihood *= f;
  s.emission.weight *= f;
  for (double& v : s.start) v *= f;
  for (double& v : s.trans) v *= f;
  s.log_likelihood *= f;
  s.weight *= f;
}

// -(c / 2) log|Sigma| - tr(Sigma^-1 M) / 2 from a precision factor P (Sigma^-1 = P P^T,
// log_det = log|P| = -log|Sigma| / 2) and a symmetric D x D matrix M.
double inverse_wishart_term(double c, double log_det, const double* P, const std::vector<double>& M, std::size_t D) {
  double tr = 0.0;  // tr(P^T M P)
  for (std::size_t j = 0; j < D; ++j)
    for (std::size_t a = 0; a < D; ++a) {
      double mp = 0.0;
      for (std::size_t b = 0; b < D; ++b) mp += M[a * D + b] * P[b * D + j];
      tr += P[a * D + j] * mp;
    }
  return c * log_det - 0.5 * tr;
}

}  // namespace

void stepwise_update(HmmStats& s, double rho, const HmmStats& batch) {
  if (!(rho > 0.0 && rho <= 1.0)) throw Error("internal: a stepwise EM step size outside (0, 1]");
  if (!(batch.weight > 0.0)) throw DataError("a batch of no frames carries no information");
  if (rho == 1.0) {  // s may be the empty statistics of no step yet
    s = batch;
    return;
  }
  const double seen = s.weight + batch.weight;
  HmmStats next = batch;
  scale(next, rho * seen / batch.weight);
  HmmStats kept = s;
  scale(kept, (1.0 - rho) * seen / s.weight);
  kept.merge(next);  // `at` from the batch: its E-step is the later one
  kept.at = batch.at;
  kept.serial = batch.serial;
  kept.emission.n_points = s.emission.n_points + batch.emission.n_points;
  s = std::move(kept);
}

double hmm_complete_log_likelihood(const HmmStats& s, const HmmModel& m) {
  const std::size_t K = static_cast<std::size_t>(m.n_components());
  if (s.start.size() != K || s.trans.size() != K * K) throw Error("internal: HMM statistics of another model");
  // 0 log 0 = 0: a count can be positive only where its probability is.
  const auto term = [](double count, double p) { return count == 0.0 ? 0.0 : count * std::log(p); };
  double q = 0.0;
  for (std::size_t k = 0; k < K; ++k) q += term(s.start[k], m.startprob[k]);
  for (std::size_t i = 0; i < K * K; ++i) q += term(s.trans[i], m.transmat[i]);
  // The mixture's Q under weights 1 / K, less the weights' sum_k N_k log(1 / K).
  const Model uniform = hmm_emissions(m.covariance_type(), m.n_components(), m.n_features(), m.emissions.means,
                                      m.emissions.covariances);
  q += expected_complete_log_likelihood(s.emission, uniform);
  double n = 0.0;
  for (double v : s.emission.nk) n += v;
  return q + n * std::log(static_cast<double>(K));
}

double hmm_log_prior(const HmmModel& m, const HmmPriors& p, const std::string& params) {
  const auto updates = [&](char c) { return params.find(c) != std::string::npos; };
  const std::size_t K = static_cast<std::size_t>(m.n_components()), D = static_cast<std::size_t>(m.n_features());
  double lp = 0.0;
  // Dirichlet rows: sum (alpha - 1) log p over the entries that can move.
  const auto dirichlet = [&](const std::vector<double>& prob, const std::vector<double>& alpha) {
    for (std::size_t i = 0; i < prob.size(); ++i) {
      const double a = entry(alpha, i) - 1.0;
      if (a != 0.0 && prob[i] > 0.0) lp += a * std::log(prob[i]);
    }
  };
  if (updates('s')) dirichlet(m.startprob, p.startprob_prior);
  if (updates('t')) dirichlet(m.transmat, p.transmat_prior);
  if (!updates('m') && !updates('c')) return lp;
  const CovarianceType type = m.covariance_type();
  const Model uniform = hmm_emissions(type, m.n_components(), m.n_features(), m.emissions.means,
                                      m.emissions.covariances);
  const PreparedParams prepared = prepare(uniform);
  const double cw = p.covars_weight;
  const bool with_covars = updates('c');
  // Per covariance (a state's, or the one tied), M = covars_prior + sum w (mu - mu0)(mu - mu0)^T
  // over its states and c the weight of log|Sigma| (the covariance M-step's extra count).
  std::vector<double> M(D * D), factor(D * D);
  const auto add_mean_term = [&](std::size_t k) {
    const double w = entry(p.means_weight, k);
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = 0; j < D; ++j)
        M[i * D + j] += w * (m.emissions.means[k * D + i] - entry(p.means_prior, k * D + i)) *
                        (m.emissions.means[k * D + j] - entry(p.means_prior, k * D + j));
  };
  const auto covars_prior_of = [&](std::size_t k) {
    std::fill(M.begin(), M.end(), 0.0);
    if (!with_covars) return;
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = 0; j < D; ++j) {
        switch (type) {
          case CovarianceType::full: M[i * D + j] = entry(p.covars_prior, k * D * D + i * D + j); break;
          case CovarianceType::tied: M[i * D + j] = entry(p.covars_prior, i * D + j); break;
          case CovarianceType::diag:
          case CovarianceType::spherical:
            if (i == j) M[i * D + i] = entry(p.covars_prior, k * D + i);
            break;
        }
      }
  };
  // The factor as a dense D x D matrix (diag and spherical hold only its diagonal).
  const auto dense_factor = [&](std::size_t k) {
    const double* f = prepared.factor(static_cast<int>(k));
    std::fill(factor.begin(), factor.end(), 0.0);
    switch (type) {
      case CovarianceType::full:
      case CovarianceType::tied: std::copy(f, f + D * D, factor.begin()); break;
      case CovarianceType::diag:
        for (std::size_t d = 0; d < D; ++d) factor[d * D + d] = f[d];
        break;
      case CovarianceType::spherical:
        for (std::size_t d = 0; d < D; ++d) factor[d * D + d] = f[0];
        break;
    }
  };
  if (type == CovarianceType::tied) {
    covars_prior_of(0);
    for (std::size_t k = 0; k < K; ++k) add_mean_term(k);
    dense_factor(0);
    const double c = with_covars ? std::max(cw - static_cast<double>(D), 0.0) : 0.0;
    return lp + inverse_wishart_term(c, prepared.log_det[0], factor.data(), M, D);
  }
  for (std::size_t k = 0; k < K; ++k) {
    covars_prior_of(k);
    add_mean_term(k);
    dense_factor(k);
    const double c = !with_covars ? 0.0
                     : type == CovarianceType::full ? std::max(cw - static_cast<double>(D), 0.0)
                                                    : std::max(cw - 1.0, 0.0);
    lp += inverse_wishart_term(c, prepared.log_det[k], factor.data(), M, D);
  }
  return lp;
}

Model hmm_emissions(CovarianceType type, int K, int D, std::vector<double> means, std::vector<double> covariances) {
  Model m;
  m.covariance_type = type;
  m.n_components = K;
  m.n_features = D;
  m.weights.assign(K, 1.0 / K);
  m.means = std::move(means);
  m.covariances = std::move(covariances);
  try {
    compute_precision_cholesky(m, 0.0);
  } catch (const NumericalError& e) {
    throw NumericalError(std::string("an HMM state's covariance is not positive definite (") + e.what() +
                         "); raise covars_prior (or min_covar for the start), or use fewer states");
  }
  return m;
}

EmissionFrames emission_frames(Primitives& prims, const HmmModel& model) {
  EmissionFrames f;
  emission_frames(prims, model, f);
  return f;
}

void emission_frames(Primitives& prims, const HmmModel& model, EmissionFrames& f) {
  const std::size_t N = prims.rows();
  const int K = model.n_components();
  resize_large({{&f.b, N * static_cast<std::size_t>(K)}, {&f.s, N}}, omp_get_max_threads() >= 2);
  // Under uniform weights 1/K the posterior of state k is p(x | k) / sum_j p(x | j) and
  // log p(x) = log sum_j p(x | j) - log K. The precision factors follow from the
  // covariances (a model read from a file or given by a caller holds only those).
  const Model uniform = hmm_emissions(model.covariance_type(), K, model.n_features(), model.emissions.means,
                                      model.emissions.covariances);
  prims.posteriors(prepare(uniform), 0, N, f.s.data(), f.b.data());
  const double log_K = std::log(static_cast<double>(K));
  for (double& v : f.s) v += log_K;
}

void emission_frames(const MissingFrames& mf, const HmmModel& model, EmissionFrames& f) {
  const MissingLayout& L = *mf.layout;
  const std::size_t K = static_cast<std::size_t>(model.n_components());
  const double log_K = std::log(static_cast<double>(K));
  // A frame with nothing observed: p(x | k) = 1, so b = 1/K and s = log K.
  f.b.assign(mf.n_frames * K, 1.0 / static_cast<double>(K));
  f.s.assign(mf.n_frames, log_K);
  const Model uniform = hmm_emissions(model.covariance_type(), model.n_components(), model.n_features(),
                                      model.emissions.means, model.emissions.covariances);
  const std::size_t nc = L.n_complete, ni = L.n_rows - nc;
  std::vector<double> s(std::max(nc, ni)), b(std::max(nc, ni) * K);
  const auto scatter = [&](std::size_t first, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t t = L.order[first + i];
      f.s[t] = s[i] + log_K;
      std::copy(b.begin() + static_cast<std::ptrdiff_t>(i * K), b.begin() + static_cast<std::ptrdiff_t>((i + 1) * K),
                f.b.begin() + static_cast<std::ptrdiff_t>(t * K));
    }
  };
  if (nc > 0) {
    mf.complete->posteriors(prepare(uniform), 0, nc, s.data(), b.data());
    scatter(0, nc);
  }
  if (ni > 0) {
    incomplete_posteriors(L, uniform, s.data(), b.data());
    scatter(nc, ni);
  }
}

SufficientStats missing_emission_stats(const MissingFrames& mf, const HmmModel& model, const double* gamma) {
  const MissingLayout& L = *mf.layout;
  const int K = model.n_components();
  const std::size_t uK = static_cast<std::size_t>(K);
  const std::size_t nc = L.n_complete, ni = L.n_rows - nc;
  // gamma's rows in layout order, from `first` on.
  std::vector<double> g;
  const auto gather = [&](std::size_t first, std::size_t n) {
    g.resize(n * uK);
    for (std::size_t i = 0; i < n; ++i) {
      const double* src = gamma + L.order[first + i] * uK;
      std::copy(src, src + uK, g.begin() + static_cast<std::ptrdiff_t>(i * uK));
    }
  };
  SufficientStats complete, incomplete;
  if (nc > 0) {
    gather(0, nc);
    complete = mf.complete->weighted_stats(Responsibilities::given_weights(g.data()), model.covariance_type(), K,
                                           model.emissions.means);
  }
  if (ni == 0) return complete;
  gather(nc, ni);
  const Model uniform = hmm_emissions(model.covariance_type(), K, model.n_features(), model.emissions.means,
                                      model.emissions.covariances);
  incomplete = incomplete_weighted_stats(L, uniform, g.data());
  if (nc == 0) return incomplete;
  complete.merge(incomplete);
  return complete;
}

std::vector<double> exact_log_emissions(const EmissionFrames& f, const Model& components, int M, DataView X) {
  const std::size_t N = f.s.size(), KM = static_cast<std::size_t>(components.n_components);
  const std::size_t uM = static_cast<std::size_t>(M), K = KM / uM;
  const int D = components.n_features;
  std::vector<double> le(N * K);
  for (std::size_t i = 0; i < N * K; ++i) le[i] = std::log(f.b[i]) + f.s[i / K];
  if (X.on_device()) return le;
  const PreparedParams p = prepare(components);
  const double log_K = std::log(static_cast<double>(K));
#pragma omp parallel for schedule(dynamic, 64)
  for (std::ptrdiff_t ti = 0; ti < static_cast<std::ptrdiff_t>(N); ++ti) {
    const std::size_t t = static_cast<std::size_t>(ti);
    double* row = le.data() + t * K;
    if (std::all_of(row, row + K, [](double v) { return v > -std::numeric_limits<double>::infinity(); })) continue;
    bool complete = true;
    for (int d = 0; d < D; ++d) complete = complete && !std::isnan(X.value(t, static_cast<std::size_t>(d)));
    if (!complete) continue;
    std::vector<double> v(uM);
    for (std::size_t k = 0; k < K; ++k) {
      if (row[k] > -std::numeric_limits<double>::infinity()) continue;
      for (std::size_t m = 0; m < uM; ++m) {
        const int c = static_cast<int>(k * uM + m);
        const double* mu = p.means.data() + static_cast<std::size_t>(c) * static_cast<std::size_t>(D);
        const auto diff = [&](int d) { return X.value(t, static_cast<std::size_t>(d)) - mu[d]; };
        double q = 0.0;
        switch (p.type) {
          case CovarianceType::full:
          case CovarianceType::tied: q = math::mahalanobis_sq_full_of(diff, p.factor(c), D); break;
          case CovarianceType::diag: q = math::mahalanobis_sq_diag_of(diff, p.factor(c), D); break;
          case CovarianceType::spherical: q = math::mahalanobis_sq_spherical_of(diff, *p.factor(c), D); break;
        }
        v[m] = math::log_joint(p.log_weights[static_cast<std::size_t>(c)], p.log_det[static_cast<std::size_t>(c)], q, D);
      }
      row[k] = math::logsumexp(v.data(), M) + log_K;  // the weights hold 1 / K
    }
  }
  return le;
}

double chain_pass(const HmmModel& model, const std::vector<std::size_t>& offsets, EmissionFrames& frames,
                  double* start, double* trans, std::vector<ChainWork>* workspace) {
  const int K = model.n_components();
  const std::size_t uK = static_cast<std::size_t>(K);
  const std::size_t S = offsets.size() - 1;
  SequenceGroups groups(S, K, start != nullptr, trans != nullptr);
  const std::size_t n_groups = groups.n_groups();
  const std::vector<double> transposed = transpose(model.transmat, uK);
  const ChainModel chain{model.startprob.data(), model.transmat.data(), transposed.data(), K};
  const int n_threads = omp_get_max_threads();
  std::vector<ChainWork> local;
  std::vector<ChainWork>& works = workspace ? *workspace : local;
  if (works.size() < static_cast<std::size_t>(n_threads)) works.resize(static_cast<std::size_t>(n_threads));
  // Few sequences: one at a time, each split over the threads (its passes side by side,
  // its blocks shared); many: sequences over the threads. The sums are the same either way.
  const bool within = S < static_cast<std::size_t>(n_threads) * 2;
  std::exception_ptr error;
  std::mutex error_mutex;
  const auto run_group = [&](std::size_t b, ChainWork& work) {
    for (std::size_t q = groups.first(b); q < groups.first(b + 1); ++q) {
      const std::size_t lo = offsets[q], T = offsets[q + 1] - lo;
      double* g = frames.b.data() + lo * uK;
      const double* s = frames.s.data() + lo;
      if (start || trans) {
        groups.ll[b] += forward_backward(chain, T, g, s, groups.trans_of(b), work, within);
        if (start)
          for (std::size_t k = 0; k < uK; ++k) groups.start_of(b)[k] += g[k];
      } else {
        groups.ll[b] += forward_log_likelihood(chain, T, g, s, work);
      }
    }
  };
  if (within) {
    for (std::size_t b = 0; b < n_groups; ++b) run_group(b, works[0]);
  } else {
#pragma omp parallel for schedule(dynamic, 1)
    for (std::ptrdiff_t bi = 0; bi < static_cast<std::ptrdiff_t>(n_groups); ++bi) {
      try {
        run_group(static_cast<std::size_t>(bi), works[static_cast<std::size_t>(omp_get_thread_num())]);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
  return groups.total(start, trans);
}

double bounded_chain_stats(Primitives& prims, const HmmModel& model, const std::vector<std::size_t>& offsets,
                           std::size_t segment_frames, double* start, double* trans, SufficientStats& emission) {
  const int K = model.n_components();
  const std::size_t uK = static_cast<std::size_t>(K), KK = uK * uK;
  const std::size_t S = offsets.size() - 1;
  SequenceGroups groups(S, K, true, true);
  const std::vector<double> transposed = transpose(model.transmat, uK);
  const ChainModel chain{model.startprob.data(), model.transmat.data(), transposed.data(), K};
  const Model uniform = hmm_emissions(model.covariance_type(), K, model.n_features(), model.emissions.means,
                                      model.emissions.covariances);
  const PreparedParams prepared = prepare(uniform);
  const double log_K = std::log(static_cast<double>(K));
  std::vector<double> b, s, a, c, r, checkpoints, b_next(uK), r_next(uK), b_first(uK), r_first(uK), xi_blocks,
      block_ll;
  bool have_emission = false;
  // Frames [r0, r1)'s emissions, as emission_frames gives them.
  const auto emissions = [&](std::size_t r0, std::size_t r1) {
    prims.posteriors(prepared, r0, r1, s.data(), b.data());
    for (std::size_t t = 0; t < r1 - r0; ++t) s[t] += log_K;
  };
  for (std::size_t g = 0; g < groups.n_groups(); ++g) {
    for (std::size_t q = groups.first(g); q < groups.first(g + 1); ++q) {
      const std::size_t lo = offsets[q], T = offsets[q + 1] - lo;
      const std::size_t B = chain_block_frames(T), n_blocks = (T + B - 1) / B;
      // Segments are whole blocks, so that the block sums are forward_backward's.
      const std::size_t L = std::max<std::size_t>(1, segment_frames / B) * B;
      const std::size_t n_seg = (T + L - 1) / L;
      const std::size_t n = std::min(T, L);
      for (std::vector<double>* v : {&b, &a, &r}) v->resize(n * uK);
      s.resize(n);
      c.resize(n);
      checkpoints.resize(n_seg * uK);
      xi_blocks.assign(n_blocks * KK, 0.0);
      block_ll.assign(n_blocks, 0.0);
      // Forward, keeping a of every segment's last frame.
      for (std::size_t i = 0; i < n_seg; ++i) {
        const std::size_t t0 = i * L, m = std::min(T, t0 + L) - t0;
        emissions(lo + t0, lo + t0 + m);
        const std::size_t bad =
            forward_segment(chain, b.data(), m, i ? checkpoints.data() + (i - 1) * uK : nullptr, a.data(), c.data());
        if (bad < m) throw_impossible_frame(t0 + bad);
        std::copy(a.data() + (m - 1) * uK, a.data() + m * uK, checkpoints.data() + i * uK);
      }
      // Backward over the segments from the last, the forward recomputed beside it.
      for (std::size_t i = n_seg; i-- > 0;) {
        const std::size_t t0 = i * L, m = std::min(T, t0 + L) - t0;
        const double* a_before = i ? checkpoints.data() + (i - 1) * uK : nullptr;
        emissions(lo + t0, lo + t0 + m);
        const bool last = i + 1 == n_seg;
#pragma omp parallel sections num_threads(2)
        {
#pragma omp section
          forward_segment(chain, b.data(), m, a_before, a.data(), c.data());
#pragma omp section
          backward_segment(chain, b.data(), m, last ? nullptr : b_next.data(), last ? nullptr : r_next.data(),
                           r.data());
        }
        std::copy(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(uK), b_first.begin());
        std::copy(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(uK), r_first.begin());
        const std::size_t q0 = t0 / B, q1 = (t0 + m + B - 1) / B;
#pragma omp parallel for schedule(static)
        for (std::ptrdiff_t qi = static_cast<std::ptrdiff_t>(q0); qi < static_cast<std::ptrdiff_t>(q1); ++qi) {
          const std::size_t qq = static_cast<std::size_t>(qi);
          block_ll[qq] = combine_frames(chain, qq * B - t0, std::min(T, (qq + 1) * B) - t0, a.data(), c.data(),
                                        r.data(), s.data(), b.data(), a_before, xi_blocks.data() + qq * KK,
                                        (qq + 1) * B >= T);
        }
        SufficientStats part = prims.weighted_stats_rows(Responsibilities::given_weights(b.data()),
                                                         model.covariance_type(), K, model.emissions.means, lo + t0,
                                                         lo + t0 + m);
        if (have_emission) {
          emission.merge(part);
        } else {
          emission = std::move(part);
          have_emission = true;
        }
        if (i == 0)
          for (std::size_t k = 0; k < uK; ++k) groups.start_of(g)[k] += b[k];
        b_next.swap(b_first);
        r_next.swap(r_first);
      }
      // The sequence's sums as forward_backward forms them: its blocks in order.
      double ll = 0.0;
      for (std::size_t qq = 0; qq < n_blocks; ++qq) {
        ll += block_ll[qq];
        for (std::size_t i = 0; i < KK; ++i) groups.trans_of(g)[i] += xi_blocks[qq * KK + i];
      }
      groups.ll[g] += ll;
    }
  }
  return groups.total(start, trans);
}

void chain_m_step(const std::vector<double>& start, const std::vector<double>& trans, const HmmPriors& p,
                  const std::string& params, const std::vector<double>& old_startprob,
                  const std::vector<double>& old_transmat, std::vector<double>& startprob,
                  std::vector<double>& transmat) {
  const std::size_t uK = start.size();
  const int K = static_cast<int>(uK);
  const auto updates = [&](char c) { return params.find(c) != std::string::npos; };
  if (updates('s')) {
    double sum = 0.0;
    for (std::size_t k = 0; k < uK; ++k) {
      startprob[k] = old_startprob[k] == 0.0 ? 0.0 : std::max(entry(p.startprob_prior, k) - 1.0 + start[k], 0.0);
      sum += startprob[k];
    }
    // A prior below 1 can take every count to 0 (few sequences): keep the start, as a
    // transition row never left is kept (hmmlearn's would stay all 0, no distribution).
    if (sum == 0.0)
      std::copy(old_startprob.begin(), old_startprob.end(), startprob.begin());
    else
      normalise(startprob.data(), K);
  }
  if (updates('t')) {
    for (std::size_t i = 0; i < uK; ++i) {
      double* row = transmat.data() + i * uK;
      double sum = 0.0;
      for (std::size_t j = 0; j < uK; ++j) {
        const std::size_t ij = i * uK + j;
        row[j] = old_transmat[ij] == 0.0 ? 0.0 : std::max(entry(p.transmat_prior, ij) - 1.0 + trans[ij], 0.0);
        sum += row[j];
      }
      if (sum == 0.0)  // never left: keep the row
        std::copy(old_transmat.begin() + i * uK, old_transmat.begin() + (i + 1) * uK, row);
      else
        normalise(row, K);
    }
  }
}

HmmModel hmm_m_step(const HmmStats& s, const HmmOptions& o, std::vector<int>* empty_states) {
  const HmmModel& old = s.at;
  const int K = old.n_components(), D = old.n_features();
  const std::size_t uK = static_cast<std::size_t>(K), uD = static_cast<std::size_t>(D);
  const CovarianceType type = old.covariance_type();
  const HmmPriors& p = o.priors;
  const auto updates = [&](char c) { return o.params.find(c) != std::string::npos; };
  HmmModel m = old;

  // A state is empty when it holds no weight at all; it keeps its parameters (as an
  // empty mixture component keeps its mean) instead of a division by zero.
  std::vector<bool> empty(uK, false);
  for (std::size_t k = 0; k < uK; ++k) {
    empty[k] = !(s.emission.nk[k] > 0.0);
    if (empty[k] && empty_states) empty_states->push_back(static_cast<int>(k));
  }

  chain_m_step(s.start, s.trans, p, o.params, old.startprob, old.transmat, m.startprob, m.transmat);

  std::vector<double> means = old.emissions.means;
  const std::vector<double>& nk = s.emission.nk;
  if (updates('m')) {
    // mu_k = (w_k mu0_k + sum_t g_tk x_t) / (w_k + N_k), with sum_t g_tk x_t = N_k c_k + S1_k.
    for (std::size_t k = 0; k < uK; ++k) {
      if (empty[k] && entry(p.means_weight, k) == 0.0) continue;
      const double w = entry(p.means_weight, k);
      for (std::size_t d = 0; d < uD; ++d) {
        const std::size_t i = k * uD + d;
        const double c = s.emission.shift[i];
        // About the shift: (w (mu0 - c) + S1) / (w + N) + c keeps the sums small.
        means[i] = c + (w * (entry(p.means_prior, i) - c) + s.emission.s1[i]) / (w + nk[k]);
      }
    }
  }
  std::vector<double> covs = old.emissions.covariances;
  if (updates('c')) {
    // The scatter about the new means: sum_t g_tk (x_t - mu_k)(x_t - mu_k)^T.
    const SufficientStats c = s.emission.recentred(means);
    const double cw = o.priors.covars_weight;
    std::vector<double> md(uK * uD);  // mu_k - mu0_k
    for (std::size_t i = 0; i < uK * uD; ++i) md[i] = means[i] - entry(p.means_prior, i);
    switch (type) {
      case CovarianceType::diag:
      case CovarianceType::spherical:
        for (std::size_t k = 0; k < uK; ++k) {
          if (empty[k]) continue;
          const double denom = std::max(std::max(cw - 1.0, 0.0) + nk[k], 1e-5);
          double mean = 0.0;
          for (std::size_t d = 0; d < uD; ++d) {
            const std::size_t i = k * uD + d;
            const double v = (entry(p.covars_prior, i) + entry(p.means_weight, k) * md[i] * md[i] + c.s2[i]) / denom;
            if (type == CovarianceType::diag) covs[i] = v;
            mean += v;
          }
          if (type == CovarianceType::spherical) covs[k] = mean / static_cast<double>(D);
        }
        break;
      case CovarianceType::full:
        for (std::size_t k = 0; k < uK; ++k) {
          if (empty[k]) continue;
          const double denom = std::max(cw - D, 0.0) + nk[k];
          const double w = entry(p.means_weight, k);
          for (std::size_t i = 0; i < uD; ++i)
            for (std::size_t j = i; j < uD; ++j) {
              const std::size_t at = k * uD * uD + i * uD + j;
              const double v =
                  (entry(p.covars_prior, at) + w * md[k * uD + i] * md[k * uD + j] + c.s2[at]) / denom;
              covs[at] = v;
              covs[k * uD * uD + j * uD + i] = v;
            }
        }
        break;
      case CovarianceType::tied: {
        double total = 0.0;
        for (std::size_t k = 0; k < uK; ++k) total += nk[k];
        const double denom = std::max(cw - D, 0.0) + total;
        for (std::size_t i = 0; i < uD; ++i)
          for (std::size_t j = i; j < uD; ++j) {
            double v = c.s2[i * uD + j];
            for (std::size_t k = 0; k < uK; ++k) v += entry(p.means_weight, k) * md[k * uD + i] * md[k * uD + j];
            v = (entry(p.covars_prior, i * uD + j) + v) / denom;
            covs[i * uD + j] = v;
            covs[j * uD + i] = v;
          }
        break;
      }
    }
  }
  m.emissions = hmm_emissions(type, K, D, std::move(means), std::move(covs));
  return m;
}

std::vector<double> frames_covariance(Primitives& prims, int D, double min_covar) {
  const std::size_t uD = static_cast<std::size_t>(D);
  const std::vector<double> zero(uD, 0.0);
  const SufficientStats all = two_pass_stats(prims, Responsibilities::nearest_centre(zero), CovarianceType::full, 1);
  std::vector<double> cv(uD * uD);
  const double n1 = all.nk[0] - 1.0;
  for (std::size_t i = 0; i < uD; ++i)
    for (std::size_t j = i; j < uD; ++j) cv[i * uD + j] = cv[j * uD + i] = all.s2[i * uD + j] / n1;
  for (std::size_t i = 0; i < uD; ++i) cv[i * uD + i] += min_covar;
  return cv;
}

HmmModel GaussianHmmEM::initialize(std::uint64_t seed, std::vector<std::string>*) {
  const int K = o_.n_components, D = static_cast<int>(X_.n_cols);
  const std::size_t uK = static_cast<std::size_t>(K), uD = static_cast<std::size_t>(D);
  const auto starts = [&](char c) { return o_.init_params.find(c) != std::string::npos; };
  HmmModel m;
  m.startprob = starts('s') ? std::vector<double>(uK, 1.0 / K) : o_.startprob_init;
  m.transmat = starts('t') ? std::vector<double>(uK * uK, 1.0 / K) : o_.transmat_init;
  std::vector<double> means =
      starts('m') ? kmeans(prims_, X_, K, seed, 300, 1e-4, o_.interrupted, &shared_).centers : o_.means_init;
  std::vector<double> covs;
  if (starts('c')) {
    // hmmlearn's start: the frames' covariance plus min_covar, for every state as the
    // type keeps it (spherical: the mean of all of its entries).
    const std::vector<double> cv = frames_covariance(prims_, D, o_.min_covar);
    switch (o_.covariance_type) {
      case CovarianceType::full:
        for (std::size_t k = 0; k < uK; ++k) covs.insert(covs.end(), cv.begin(), cv.end());
        break;
      case CovarianceType::tied: covs = cv; break;
      case CovarianceType::diag:
        for (std::size_t k = 0; k < uK; ++k)
          for (std::size_t d = 0; d < uD; ++d) covs.push_back(cv[d * uD + d]);
        break;
      case CovarianceType::spherical: {
        double mean = 0.0;
        for (double v : cv) mean += v;
        covs.assign(uK, mean / static_cast<double>(uD * uD));
        break;
      }
    }
  } else {
    covs = o_.covars_init;
  }
  m.emissions = hmm_emissions(o_.covariance_type, K, D, std::move(means), std::move(covs));
  return m;
}

std::size_t segment_frames_for(const HmmOptions& o, const Primitives& prims, int K) {
  if (o.segment_frames == std::numeric_limits<std::size_t>::max() || !prims.stats_over_rows()) return 0;
  if (o.segment_frames > 0) return o.segment_frames;
  // b, a and r: three N x K arrays of doubles.
  const std::size_t bytes = 3 * prims.rows() * static_cast<std::size_t>(K) * sizeof(double);
  if (bytes <= kBoundedChainBytes) return 0;
  // About sqrt(N) frames a segment, and not fewer than a few thousand.
  return std::max<std::size_t>(4096, static_cast<std::size_t>(std::sqrt(static_cast<double>(prims.rows()))));
}

HmmStats GaussianHmmEM::e_step(const HmmModel& m) {
  const int K = m.n_components();
  const std::size_t uK = static_cast<std::size_t>(K);
  HmmStats s;
  s.start.assign(uK, 0.0);
  s.trans.assign(uK * uK, 0.0);
  s.weight = static_cast<double>(missing_ ? missing_->n_frames : prims_.rows());
  s.at = m;
  static std::atomic<std::uint64_t> serials{0};
  s.serial = ++serials;
  if (missing_) {
    // The whole-data path: the chain's arrays in frame order, the statistics per part.
    emission_frames(*missing_, m, frames_);
    s.log_likelihood = chain_pass(m, offsets_, frames_, s.start.data(), s.trans.data(), &chain_work_);
    s.emission = missing_emission_stats(*missing_, m, frames_.b.data());
    return s;
  }
  if (const std::size_t segment = segment_frames_for(o_, prims_, K)) {
    s.log_likelihood = bounded_chain_stats(prims_, m, offsets_, segment, s.start.data(), s.trans.data(), s.emission);
    return s;
  }
  EmissionFrames& frames = frames_;
  if (!device_chain_available(prims_, K) &&
      pipelined_chain_applies(prims_, offsets_.size() - 1, K, omp_get_max_threads())) {
    // Few long sequences: the emissions computed beside the chain (hmm_pipeline.hpp).
    if (chain_work_.empty()) chain_work_.resize(1);
    s.log_likelihood = pipelined_chain_pass(prims_, m, offsets_, frames, s.start.data(), s.trans.data(), chain_work_[0]);
  } else {
    emission_frames(prims_, m, frames);
    // The chain on the backend's device where it has one (the host chain is the reference).
    s.log_likelihood = device_chain_available(prims_, K)
                           ? device_chain_pass(prims_, m, offsets_, frames, s.start.data(), s.trans.data())
                           : chain_pass(m, offsets_, frames, s.start.data(), s.trans.data(), &chain_work_);
  }
  s.emission = prims_.weighted_stats(Responsibilities::given_weights(frames.b.data()), m.covariance_type(), K,
                                     m.emissions.means);
  return s;
}

HmmStats hmm_zero_stats(const HmmModel& m) {
  const int K = m.n_components();
  HmmStats s;
  s.emission = SufficientStats::zeros(m.covariance_type(), K, m.n_features(), m.emissions.means);
  s.start.assign(static_cast<std::size_t>(K), 0.0);
  s.trans.assign(static_cast<std::size_t>(K) * static_cast<std::size_t>(K), 0.0);
  s.at = m;
  return s;
}

HmmModel GaussianHmmEM::m_step(const HmmStats& s) {
  std::vector<int> empty;
  HmmModel m = hmm_m_step(s, o_, &empty);
  for (int k : empty)
    if (std::find(empty_states_.begin(), empty_states_.end(), k) == empty_states_.end()) empty_states_.push_back(k);
  return m;
}

}  // namespace cuem::engine
