#include "engine/vb_gmm_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "core/linalg.hpp"
#include "core/m_step.hpp"
#include "core/rng.hpp"
#include "cuem/errors.hpp"
#include "init/initialize.hpp"

namespace cuem {

namespace engine {
namespace {

constexpr double kEmptyGuard = 10 * std::numeric_limits<double>::epsilon();  // scikit-learn's, on N_k
const double kLn2 = std::log(2.0);
const double kLn2Pi = std::log(2.0 * 3.14159265358979323846);

double betaln(double a, double b) { return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b); }

// E[ln pi_k] under q(pi) (scikit-learn's _estimate_log_weights).
std::vector<double> expected_log_weights(const BayesianPosterior& q) {
  const std::size_t K = static_cast<std::size_t>(q.n_components);
  std::vector<double> out(K);
  if (q.prior.type == WeightPrior::dirichlet_process) {
    // ln v_k + sum_{j<k} ln(1 - v_j), v_k ~ Beta(a_k, b_k)
    double rest = 0.0;
    for (std::size_t k = 0; k < K; ++k) {
      const double a = q.weight_concentration[k], b = q.weight_concentration[K + k];
      const double psi_sum = digamma(a + b);
      out[k] = digamma(a) - psi_sum + rest;
      rest += digamma(b) - psi_sum;
    }
  } else {
    double total = 0.0;
    for (double a : q.weight_concentration) total += a;
    const double psi_total = digamma(total);
    for (std::size_t k = 0; k < K; ++k) out[k] = digamma(q.weight_concentration[k]) - psi_total;
  }
  return out;
}

// ln|P| of precision factors, per component (tied: the same for all), as prepare().
double log_det_factor(const double* f, CovarianceType type, int D) {
  switch (type) {
    case CovarianceType::full:
    case CovarianceType::tied: return linalg::log_det_triangular(f, D);
    case CovarianceType::diag: {
      double s = 0.0;
      for (int d = 0; d < D; ++d) s += std::log(f[d]);
      return s;
    }
    case CovarianceType::spherical: return D * std::log(*f);
  }
  return 0.0;
}

double nu_of(const BayesianPosterior& q, std::size_t k) {
  return q.covariance_type == CovarianceType::tied ? q.degrees_of_freedom[0] : q.degrees_of_freedom[k];
}

// One-hot responsibilities on K points (k-means++ and random_from_data): about each point
// N_k = 1, S1 = 0, S2 = 0, with no pass over the data.
SufficientStats point_stats(const Primitives& prims, CovarianceType type, int K, const std::vector<std::size_t>& index) {
  const std::size_t D = prims.cols();
  std::vector<double> points(static_cast<std::size_t>(K) * D);
  for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) prims.copy_rows(index[k], 1, points.data() + k * D);
  SufficientStats s = SufficientStats::zeros(type, K, static_cast<int>(D), std::move(points));
  std::fill(s.nk.begin(), s.nk.end(), 1.0);
  s.n_points = prims.rows();
  s.weight = prims.total_weight();
  return s;
}

std::string format(const char* fmt, double v) {
  char buf[160];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

void check_positive(const std::optional<double>& v, const char* name) {
  if (v && !(*v > 0.0 && std::isfinite(*v)))
    throw InvalidArgument(std::string("The '") + name + "' parameter must be None or a float in the range (0.0, inf). " +
                          format("Got %g instead.", *v));
}

}  // namespace

double digamma(double x) {
  double result = 0.0;
  while (x < 10.0) {  // psi(x) = psi(x + 1) - 1/x
    result -= 1.0 / x;
    x += 1.0;
  }
  // psi(x) ~ ln x - 1/(2x) - sum_n B_2n / (2n x^2n), to x^-14 (the next term is < 1e-16 at x = 10)
  const double f = 1.0 / (x * x);
  const double tail =
      f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132 - f * (691.0 / 32760 - f / 12))))));
  return result + std::log(x) - 0.5 / x - tail;
}

PreparedParams vb_prepare(const BayesianPosterior& q) {
  PreparedParams p;
  p.type = q.covariance_type;
  p.K = q.n_components;
  p.D = q.n_features;
  p.means = q.means;
  p.prec_chol = q.precisions_cholesky;
  p.log_weights = expected_log_weights(q);
  p.log_det.resize(p.K);
  const int D = p.D;
  for (int k = 0; k < p.K; ++k) {
    p.log_det[k] = log_det_factor(p.factor(k), p.type, D);
    const double nu = nu_of(q, static_cast<std::size_t>(k));
    double psi = 0.0;
    for (int i = 0; i < D; ++i) psi += digamma(0.5 * (nu - i));
    // E[ln pi_k] + 1/2 E[ln|Lambda_k|] - D/(2 beta_k) less ln|L_k| (the kernel adds it back)
    p.log_weights[k] += -0.5 * D * std::log(nu) + 0.5 * (D * kLn2 + psi) - 0.5 * D / q.mean_precision[k];
  }
  return p;
}

BayesianPosterior vb_m_step(const SufficientStats& s, const BayesianPrior& prior, CovarianceType type,
                            double reg_covar) {
  const int K = s.K, D = s.D;
  const std::size_t Kz = static_cast<std::size_t>(K), Dz = static_cast<std::size_t>(D), DD = Dz * Dz;
  BayesianPosterior q;
  q.covariance_type = type;
  q.n_components = K;
  q.n_features = D;
  q.prior = prior;

  // scikit-learn's _estimate_gaussian_parameters: nk (guarded), xk = sum r x / nk, and the
  // component scatter sk about xk (+ reg_covar), here from sums about the shift c:
  // sum r (x - xk)(x - xk)^T = S2 - S1 d^T - d S1^T + N d d^T with d = xk - c.
  std::vector<double> nk(Kz), xk(Kz * Dz), d(Kz * Dz);
  for (std::size_t k = 0; k < Kz; ++k) {
    nk[k] = s.nk[k] + kEmptyGuard;
    const double share = s.nk[k] / nk[k];
    for (std::size_t j = 0; j < Dz; ++j) {
      const std::size_t i = k * Dz + j;
      xk[i] = s.shift[i] * share + s.s1[i] / nk[k];
      d[i] = xk[i] - s.shift[i];
    }
  }
  std::vector<double> sk(type == CovarianceType::full ? Kz * DD
                         : type == CovarianceType::tied ? DD
                         : type == CovarianceType::diag ? Kz * Dz
                                                        : Kz);
  double nk_total = 0.0;
  for (double v : nk) nk_total += v;
  switch (type) {
    case CovarianceType::full:
      for (std::size_t k = 0; k < Kz; ++k) {
        const double* S2 = s.s2.data() + k * DD;
        const double* S1 = s.s1.data() + k * Dz;
        const double* dk = d.data() + k * Dz;
        double* C = sk.data() + k * DD;
        for (std::size_t a = 0; a < Dz; ++a)
          for (std::size_t b = a; b < Dz; ++b) {
            const double v =
                (S2[a * Dz + b] - S1[a] * dk[b] - dk[a] * S1[b] + s.nk[k] * dk[a] * dk[b]) / nk[k];
            C[a * Dz + b] = v;
            C[b * Dz + a] = v;
          }
        for (std::size_t a = 0; a < Dz; ++a) C[a * Dz + a] += reg_covar;
      }
      break;
    case CovarianceType::tied:
      for (std::size_t a = 0; a < Dz; ++a)
        for (std::size_t b = a; b < Dz; ++b) {
          double v = s.s2[a * Dz + b];
          for (std::size_t k = 0; k < Kz; ++k) {
            const double* S1 = s.s1.data() + k * Dz;
            const double* dk = d.data() + k * Dz;
            v += -S1[a] * dk[b] - dk[a] * S1[b] + s.nk[k] * dk[a] * dk[b];
          }
          v /= nk_total;
          sk[a * Dz + b] = v;
          sk[b * Dz + a] = v;
        }
      for (std::size_t a = 0; a < Dz; ++a) sk[a * Dz + a] += reg_covar;
      break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
      for (std::size_t k = 0; k < Kz; ++k) {
        double mean_var = 0.0;
        for (std::size_t j = 0; j < Dz; ++j) {
          const std::size_t i = k * Dz + j;
          const double v = (s.s2[i] - 2.0 * s.s1[i] * d[i] + s.nk[k] * d[i] * d[i]) / nk[k] + reg_covar;
          if (type == CovarianceType::diag) sk[i] = v;
          mean_var += v;
        }
        if (type == CovarianceType::spherical) sk[k] = mean_var / D;
      }
      break;
  }

  // q(pi): scikit-learn's _estimate_weights.
  if (prior.type == WeightPrior::dirichlet_process) {
    q.weight_concentration.resize(2 * Kz);
    double tail = 0.0;  // sum_{j>k} nk_j, accumulated from the last component as scikit-learn's cumsum
    for (std::size_t k = Kz; k-- > 0;) {
      q.weight_concentration[k] = 1.0 + nk[k];
      q.weight_concentration[Kz + k] = prior.weight_concentration + tail;
      tail += nk[k];
    }
  } else {
    q.weight_concentration.resize(Kz);
    for (std::size_t k = 0; k < Kz; ++k) q.weight_concentration[k] = prior.weight_concentration + nk[k];
  }

  // q(mu | Lambda): _estimate_means.
  const double beta0 = prior.mean_precision;
  q.mean_precision.resize(Kz);
  q.means.resize(Kz * Dz);
  for (std::size_t k = 0; k < Kz; ++k) {
    q.mean_precision[k] = beta0 + nk[k];
    for (std::size_t j = 0; j < Dz; ++j)
      q.means[k * Dz + j] = (beta0 * prior.mean[j] + nk[k] * xk[k * Dz + j]) / q.mean_precision[k];
  }

  // q(Lambda): _estimate_wishart_*, covariances normalised by nu as scikit-learn's.
  const double nu0 = prior.degrees_of_freedom;
  q.covariances.assign(sk.size(), 0.0);
  switch (type) {
    case CovarianceType::full:
      q.degrees_of_freedom.resize(Kz);
      for (std::size_t k = 0; k < Kz; ++k) {
        const double nu = nu0 + nk[k];
        q.degrees_of_freedom[k] = nu;
        const double scale = nk[k] * beta0 / q.mean_precision[k];
        const double* diff_base = xk.data() + k * Dz;
        for (std::size_t a = 0; a < Dz; ++a)
          for (std::size_t b = 0; b < Dz; ++b) {
            const double da = diff_base[a] - prior.mean[a], db = diff_base[b] - prior.mean[b];
            q.covariances[k * DD + a * Dz + b] =
                (prior.covariance[a * Dz + b] + nk[k] * sk[k * DD + a * Dz + b] + scale * da * db) / nu;
          }
      }
      break;
    case CovarianceType::tied: {
      const double share = nk_total / K;
      const double nu = nu0 + share;
      q.degrees_of_freedom.assign(1, nu);
      for (std::size_t a = 0; a < Dz; ++a)
        for (std::size_t b = 0; b < Dz; ++b) {
          double spread = 0.0;
          for (std::size_t k = 0; k < Kz; ++k)
            spread += nk[k] / q.mean_precision[k] * (xk[k * Dz + a] - prior.mean[a]) * (xk[k * Dz + b] - prior.mean[b]);
          q.covariances[a * Dz + b] = (prior.covariance[a * Dz + b] + sk[a * Dz + b] * share + beta0 / K * spread) / nu;
        }
      break;
    }
    case CovarianceType::diag:
      q.degrees_of_freedom.resize(Kz);
      for (std::size_t k = 0; k < Kz; ++k) {
        const double nu = nu0 + nk[k];
        q.degrees_of_freedom[k] = nu;
        const double ratio = beta0 / q.mean_precision[k];
        for (std::size_t j = 0; j < Dz; ++j) {
          const double diff = xk[k * Dz + j] - prior.mean[j];
          q.covariances[k * Dz + j] = (prior.covariance[j] + nk[k] * (sk[k * Dz + j] + ratio * diff * diff)) / nu;
        }
      }
      break;
    case CovarianceType::spherical:
      q.degrees_of_freedom.resize(Kz);
      for (std::size_t k = 0; k < Kz; ++k) {
        const double nu = nu0 + nk[k];
        q.degrees_of_freedom[k] = nu;
        double sq = 0.0;
        for (std::size_t j = 0; j < Dz; ++j) {
          const double diff = xk[k * Dz + j] - prior.mean[j];
          sq += diff * diff;
        }
        q.covariances[k] =
            (prior.covariance[0] + nk[k] * (sk[k] + beta0 / q.mean_precision[k] * (sq / D))) / nu;
      }
      break;
  }

  Model factors;  // for compute_precision_cholesky's checks and messages
  factors.covariance_type = type;
  factors.n_components = K;
  factors.n_features = D;
  factors.covariances = std::move(q.covariances);
  compute_precision_cholesky(factors, reg_covar);
  q.covariances = std::move(factors.covariances);
  q.precisions_cholesky = std::move(factors.precisions_cholesky);
  return q;
}

double vb_parameter_bound(const BayesianPosterior& q) {
  const int K = q.n_components, D = q.n_features;
  const std::size_t Kz = static_cast<std::size_t>(K);
  PreparedParams shape;  // for factor(k)
  shape.type = q.covariance_type;
  shape.D = D;
  shape.prec_chol = q.precisions_cholesky;
  // -ln B(W_k, nu_k) (scikit-learn's _log_wishart_norm without ln pi), with
  // ln|W_k|^{1/2} = ln|L_k| - D/2 ln nu_k.
  auto log_wishart_norm = [&](std::size_t k) {
    const double nu = nu_of(q, k);
    const double half_log_det_w =
        log_det_factor(shape.factor(static_cast<int>(k)), q.covariance_type, D) - 0.5 * D * std::log(nu);
    double lg = 0.0;
    for (int i = 0; i < D; ++i) lg += std::lgamma(0.5 * (nu - i));
    return -(nu * half_log_det_w + nu * D * 0.5 * kLn2 + lg);
  };
  double log_wishart = 0.0;
  if (q.covariance_type == CovarianceType::tied)
    log_wishart = K * log_wishart_norm(0);
  else
    for (std::size_t k = 0; k < Kz; ++k) log_wishart += log_wishart_norm(k);

  double log_norm_weight = 0.0;
  if (q.prior.type == WeightPrior::dirichlet_process) {
    for (std::size_t k = 0; k < Kz; ++k) log_norm_weight -= betaln(q.weight_concentration[k], q.weight_concentration[Kz + k]);
  } else {
    double total = 0.0, lg = 0.0;
    for (double a : q.weight_concentration) {
      total += a;
      lg += std::lgamma(a);
    }
    log_norm_weight = std::lgamma(total) - lg;
  }
  double log_beta = 0.0;
  for (double b : q.mean_precision) log_beta += std::log(b);
  return -log_wishart - log_norm_weight - 0.5 * D * log_beta;
}

double vb_expected_log_joint(const SufficientStats& stats, const PreparedParams& p) {
  const SufficientStats s = stats.shift == p.means ? stats : stats.recentred(p.means);
  const std::size_t Kz = static_cast<std::size_t>(p.K), Dz = static_cast<std::size_t>(p.D);
  double total = 0.0;
  for (std::size_t k = 0; k < Kz; ++k)
    total += s.nk[k] * (p.log_weights[k] + p.log_det[k] - 0.5 * p.D * kLn2Pi);
  // sum_nk w_n r_nk ||L_k^T (x_n - m_k)||^2 = sum_k tr(L_k L_k^T S2_k), S2 about m_k; the
  // full and tied S2 hold their upper triangles.
  auto trace_full = [&](const double* L, const double* S2) {
    double t = 0.0;
    for (std::size_t a = 0; a < Dz; ++a)
      for (std::size_t b = a; b < Dz; ++b) {
        double prec = 0.0;  // (L L^T)_ab
        for (std::size_t c = 0; c < Dz; ++c) prec += L[a * Dz + c] * L[b * Dz + c];
        t += (a == b ? 1.0 : 2.0) * prec * S2[a * Dz + b];
      }
    return t;
  };
  double mahalanobis = 0.0;
  switch (p.type) {
    case CovarianceType::full:
      for (std::size_t k = 0; k < Kz; ++k)
        mahalanobis += trace_full(p.factor(static_cast<int>(k)), s.s2.data() + k * Dz * Dz);
      break;
    case CovarianceType::tied: mahalanobis = trace_full(p.factor(0), s.s2.data()); break;
    case CovarianceType::diag:
      for (std::size_t k = 0; k < Kz; ++k) {
        const double* f = p.factor(static_cast<int>(k));
        for (std::size_t j = 0; j < Dz; ++j) mahalanobis += f[j] * f[j] * s.s2[k * Dz + j];
      }
      break;
    case CovarianceType::spherical:
      for (std::size_t k = 0; k < Kz; ++k) {
        const double f = *p.factor(static_cast<int>(k));
        double sum = 0.0;
        for (std::size_t j = 0; j < Dz; ++j) sum += s.s2[k * Dz + j];
        mahalanobis += f * f * sum;
      }
      break;
  }
  return total - 0.5 * mahalanobis;
}

void validate_bayesian_options(const BayesianOptions& o, DataView X) {
  const FitOptions& em = o.em;
  if (!(o.prune_threshold >= 0.0 && o.prune_threshold < 1.0))
    throw InvalidArgument(format("prune_threshold must be at least 0 (0: no pruning) and below 1, got %g",
                                 o.prune_threshold));
  if (o.prune_patience < 1)
    throw InvalidArgument("prune_patience must be at least 1 iteration, got " + std::to_string(o.prune_patience));
  const std::size_t D = X.n_cols, N = X.n_rows;
  const int K = em.n_components;
  if (!em.weights_init.empty() || !em.means_init.empty() || !em.precisions_init.empty())
    throw InvalidArgument("weights_init, means_init and precisions_init have no meaning for a Bayesian mixture; "
                          "set its priors instead");
  if (em.missing != MissingPolicy::error)
    throw InvalidArgument("a Bayesian mixture does not fit data with missing entries; missing must be 'error'");
  if (em.acceleration == Acceleration::squarem && o.prune_threshold > 0.0)
    throw InvalidArgument("acceleration 'squarem' and pruning (prune_threshold > 0) do not go together: an "
                          "extrapolation needs the same components at both ends; leave one out");
  check_positive(o.weight_concentration_prior, "weight_concentration_prior");
  check_positive(o.mean_precision_prior, "mean_precision_prior");
  if (o.degrees_of_freedom_prior) {
    const double nu0 = *o.degrees_of_freedom_prior;
    if (!(nu0 > static_cast<double>(D) - 1.0) || !std::isfinite(nu0))
      throw InvalidArgument("The parameter 'degrees_of_freedom_prior' should be greater than " +
                            std::to_string(static_cast<long long>(D) - 1) + format(", but got %.3f.", nu0));
  }
  if (!o.mean_prior.empty()) {
    if (o.mean_prior.size() != D)
      throw InvalidArgument("The parameter 'means' should have the shape of (" + std::to_string(D) + ",), but got (" +
                            std::to_string(o.mean_prior.size()) + ",)");
    for (double v : o.mean_prior)
      if (!std::isfinite(v)) throw InvalidArgument("mean_prior must be finite");
  }
  if (!o.covariance_prior.empty()) {
    const CovarianceType t = em.covariance_type;
    const std::string name = std::string("'") + to_string(t) + " covariance_prior'";
    const std::vector<double>& c = o.covariance_prior;
    for (double v : c)
      if (!std::isfinite(v)) throw InvalidArgument(name + " must be finite");
    switch (t) {
      case CovarianceType::full:
      case CovarianceType::tied: {
        if (c.size() != D * D)
          throw InvalidArgument("The parameter " + name + " should have the shape of (" + std::to_string(D) + ", " +
                                std::to_string(D) + "), but got " + std::to_string(c.size()) + " values");
        // scikit-learn's _check_precision_matrix: symmetric (np.allclose's tolerances), then
        // positive eigenvalues (here: a Cholesky factor exists)
        for (std::size_t a = 0; a < D; ++a)
          for (std::size_t b = 0; b < a; ++b)
            if (std::abs(c[a * D + b] - c[b * D + a]) > 1e-8 + 1e-5 * std::abs(c[b * D + a]))
              throw InvalidArgument(name + " should be symmetric, positive-definite");
        std::vector<double> chol(c);
        if (linalg::cholesky_lower(chol.data(), static_cast<int>(D)) >= 0)
          throw InvalidArgument(name + " should be symmetric, positive-definite");
        break;
      }
      case CovarianceType::diag:
        if (c.size() != D)
          throw InvalidArgument("The parameter " + name + " should have the shape of (" + std::to_string(D) +
                                ",), but got (" + std::to_string(c.size()) + ",)");
        for (double v : c)
          if (!(v > 0.0)) throw InvalidArgument(name + " should be positive");
        break;
      case CovarianceType::spherical:
        if (c.size() != 1)
          throw InvalidArgument("the spherical covariance_prior is one float, got " + std::to_string(c.size()) +
                                " values");
        check_positive(c[0], "covariance_prior");
        break;
    }
  }
  if (!o.resp_init.empty()) {
    if (X.on_device()) throw InvalidArgument("resp_init needs host data");
    if (o.resp_init.size() != N * static_cast<std::size_t>(K))
      throw InvalidArgument("resp_init must hold n_samples x n_components = " + std::to_string(N) + " x " +
                            std::to_string(K) + " values, got " + std::to_string(o.resp_init.size()));
    for (double v : o.resp_init)
      if (!(v >= 0.0) || !std::isfinite(v)) throw InvalidArgument("resp_init must be finite and non-negative");
  }
  if (o.warm_start) {
    const BayesianPosterior& q = *o.warm_start;
    if (q.n_components != K || q.n_features != static_cast<int>(D) || q.covariance_type != em.covariance_type ||
        q.prior.type != o.weight_concentration_prior_type)
      throw InvalidArgument("warm_start holds a posterior of another shape, covariance type or weight prior");
  }
}

BayesianPrior resolve_prior(Primitives& prims, const BayesianOptions& o) {
  const CovarianceType type = o.em.covariance_type;
  const int K = o.em.n_components;
  const std::size_t D = prims.cols();
  BayesianPrior prior;
  prior.type = o.weight_concentration_prior_type;
  prior.weight_concentration = o.weight_concentration_prior.value_or(1.0 / K);
  prior.mean_precision = o.mean_precision_prior.value_or(1.0);
  prior.degrees_of_freedom = o.degrees_of_freedom_prior.value_or(static_cast<double>(D));
  prior.mean = o.mean_prior;
  prior.covariance = o.covariance_prior;
  if (!prior.mean.empty() && !prior.covariance.empty()) return prior;

  // The data's weighted mean and covariance: statistics of one component holding every
  // point, on the fit's device, about their mean.
  const bool matrix = type == CovarianceType::full || type == CovarianceType::tied;
  const std::vector<double> origin(D, 0.0);
  const SufficientStats s =
      two_pass_stats(prims, Responsibilities::nearest_centre(origin), matrix ? CovarianceType::full : CovarianceType::diag, 1);
  const double n = s.nk[0];
  std::vector<double> mean(D);
  for (std::size_t j = 0; j < D; ++j) mean[j] = s.shift[j] + s.s1[j] / n;
  if (prior.mean.empty()) prior.mean = mean;
  if (!prior.covariance.empty()) return prior;
  if (!(n > 1.0))
    throw DataError("the default covariance_prior (the data's covariance) needs a total sample weight above 1; give "
                    "covariance_prior");
  const SufficientStats c = s.recentred(mean);
  if (matrix) {
    prior.covariance.assign(D * D, 0.0);
    for (std::size_t a = 0; a < D; ++a)
      for (std::size_t b = a; b < D; ++b) {
        const double v = c.s2[a * D + b] / (n - 1.0);
        prior.covariance[a * D + b] = v;
        prior.covariance[b * D + a] = v;
      }
  } else {
    std::vector<double> var(D);
    for (std::size_t j = 0; j < D; ++j) var[j] = c.s2[j] / (n - 1.0);
    if (type == CovarianceType::diag) {
      prior.covariance = var;
    } else {
      double m = 0.0;
      for (double v : var) m += v;
      prior.covariance.assign(1, m / static_cast<double>(D));
    }
  }
  return prior;
}

SufficientStats stats_of_responsibilities(DataView X, WeightView w, const std::vector<double>& resp,
                                          CovarianceType type, int K) {
  const std::size_t N = X.n_rows, D = X.n_cols, Kz = static_cast<std::size_t>(K);
  const bool matrix = type == CovarianceType::full || type == CovarianceType::tied;
  // Per component, in parallel; each component's sums run over the points in order, so
  // the result does not depend on the thread count. Tied scatters are summed over the
  // components afterwards, in order.
  std::vector<double> nk(Kz, 0.0), means(Kz * D, 0.0), s1(Kz * D, 0.0);
  std::vector<double> scatter(matrix ? Kz * D * D : Kz * D, 0.0);
  const long long K_signed = K;
#pragma omp parallel for schedule(dynamic, 1)
  for (long long kk = 0; kk < K_signed; ++kk) {
    const std::size_t k = static_cast<std::size_t>(kk);
    std::vector<double> sums(D, 0.0), dev(D);
    double n = 0.0;
    for (std::size_t i = 0; i < N; ++i) {
      const double g = w.at(i) * resp[i * Kz + k];
      if (g == 0.0) continue;
      n += g;
      for (std::size_t j = 0; j < D; ++j) sums[j] += g * X.value(i, j);
    }
    nk[k] = n;
    double* m = means.data() + k * D;
    if (n > 0.0)
      for (std::size_t j = 0; j < D; ++j) m[j] = sums[j] / n;
    double* S1 = s1.data() + k * D;
    double* S2 = scatter.data() + (matrix ? k * D * D : k * D);
    for (std::size_t i = 0; i < N; ++i) {
      const double g = w.at(i) * resp[i * Kz + k];
      if (g == 0.0) continue;
      for (std::size_t j = 0; j < D; ++j) {
        dev[j] = X.value(i, j) - m[j];
        S1[j] += g * dev[j];
      }
      if (matrix) {
        for (std::size_t a = 0; a < D; ++a) {
          const double ga = g * dev[a];
          for (std::size_t b = a; b < D; ++b) S2[a * D + b] += ga * dev[b];
        }
      } else {
        for (std::size_t j = 0; j < D; ++j) S2[j] += g * dev[j] * dev[j];
      }
    }
  }
  SufficientStats s = SufficientStats::zeros(type, K, static_cast<int>(D), means);
  s.nk = nk;
  s.s1 = s1;
  if (type == CovarianceType::tied) {
    for (std::size_t k = 0; k < Kz; ++k)
      for (std::size_t i = 0; i < D * D; ++i) s.s2[i] += scatter[k * D * D + i];
  } else {
    s.s2 = std::move(scatter);
  }
  for (std::size_t i = 0; i < N; ++i) s.weight += w.at(i);
  s.n_points = N;
  return s;
}

SufficientStats keep_components(const SufficientStats& s, const std::vector<int>& keep) {
  const std::size_t D = static_cast<std::size_t>(s.D), K = static_cast<std::size_t>(s.K);
  const bool tied = s.type == CovarianceType::tied;
  const std::size_t per = tied ? 0 : s2_size(s.type, s.K, s.D) / K;
  SufficientStats out = s;
  out.K = static_cast<int>(keep.size());
  out.shift.clear();
  out.nk.clear();
  out.s1.clear();
  if (!tied) out.s2.clear();
  for (int k : keep) {
    const std::size_t kz = static_cast<std::size_t>(k);
    out.nk.push_back(s.nk[kz]);
    out.shift.insert(out.shift.end(), s.shift.begin() + kz * D, s.shift.begin() + (kz + 1) * D);
    out.s1.insert(out.s1.end(), s.s1.begin() + kz * D, s.s1.begin() + (kz + 1) * D);
    if (!tied) out.s2.insert(out.s2.end(), s.s2.begin() + kz * per, s.s2.begin() + (kz + 1) * per);
  }
  return out;
}

BayesianPosterior VariationalGaussianMixture::initialize(std::uint64_t seed, std::vector<std::string>* notices) {
  iteration_ = 0;
  const int K0 = o_.warm_start ? o_.warm_start->n_components : o_.em.n_components;
  RestartRecord record;
  for (int k = 0; k < K0; ++k) record.kept.push_back(k);
  restarts_.push_back(std::move(record));
  below_.assign(static_cast<std::size_t>(K0), 0);
  if (o_.warm_start) return *o_.warm_start;
  const FitOptions& em = o_.em;
  const int K = em.n_components;
  SufficientStats s;
  if (!o_.resp_init.empty()) {
    s = stats_of_responsibilities(X_, w_, o_.resp_init, em.covariance_type, K);
  } else {
    switch (em.init) {
      case InitMethod::kmeans: {
        const KMeansResult km = kmeans(prims_, X_, K, seed, 300, 1e-4, em.interrupted, &shared_);
        s = two_pass_stats(prims_, Responsibilities::nearest_centre(km.centers), em.covariance_type, K);
        const int n_empty = static_cast<int>(std::count(s.nk.begin(), s.nk.end(), 0.0));
        if (n_empty > 0 && notices)
          notices->push_back("k-means found " + std::to_string(K - n_empty) + " distinct clusters for " +
                             std::to_string(K) + " components (duplicate points?); some components start empty");
        break;
      }
      case InitMethod::kmeans_plusplus:
        s = point_stats(prims_, em.covariance_type, K, kmeans_plusplus(prims_, X_, K, seed, em.interrupted));
        break;
      case InitMethod::random_from_data:
        s = point_stats(prims_, em.covariance_type, K, random_from_data_rows(prims_.weights(), X_.n_rows, K, seed));
        break;
      case InitMethod::random:
        s = two_pass_stats(prims_, Responsibilities::random_draws(seed), em.covariance_type, K);
        break;
    }
  }
  return vb_m_step(s, prior_, em.covariance_type, em.reg_covar);
}

VbStats VariationalGaussianMixture::e_step(const BayesianPosterior& q) {
  const PreparedParams p = vb_prepare(q);
  VbStats out;
  out.stats = prims_.gaussian_estep(p);
  out.next = vb_m_step(out.stats, prior_, o_.em.covariance_type, o_.em.reg_covar);
  // -sum w r ln r = sum w log sum_k rho - sum w r ln rho
  const double entropy = out.stats.log_likelihood - vb_expected_log_joint(out.stats, p);
  out.log_likelihood = entropy + vb_parameter_bound(out.next);
  out.weight = 1.0;
  ++iteration_;
  // After the bound: this iteration's bound is the K-component model's; the next one's
  // is the smaller model's (the driver does not compare the two, see model_changed).
  if (o_.prune_threshold > 0) prune(out);
  return out;
}

void VariationalGaussianMixture::prune(VbStats& out) {
  const std::vector<double>& nk = out.stats.nk;
  double total = 0;
  for (double n : nk) total += n;
  std::vector<int> keep, removed;
  for (std::size_t k = 0; k < nk.size(); ++k) {
    below_[k] = total > 0 && nk[k] / total < o_.prune_threshold ? below_[k] + 1 : 0;
    (below_[k] >= o_.prune_patience ? removed : keep).push_back(static_cast<int>(k));
  }
  if (removed.empty()) return;
  if (keep.empty()) {  // the last one stays: the one with the largest share
    const int best = static_cast<int>(std::max_element(nk.begin(), nk.end()) - nk.begin());
    keep.push_back(best);
    removed.erase(std::find(removed.begin(), removed.end(), best));
    if (removed.empty()) return;
  }
  RestartRecord& record = restarts_.back();
  PruneEvent event;
  event.iteration = iteration_;
  std::vector<int> kept, below;
  for (int k : removed) event.components.push_back(record.kept[static_cast<std::size_t>(k)]);
  for (int k : keep) {
    kept.push_back(record.kept[static_cast<std::size_t>(k)]);
    below.push_back(below_[static_cast<std::size_t>(k)]);
  }
  record.kept = std::move(kept);
  record.prunes.push_back(std::move(event));
  below_ = std::move(below);
  out.next = vb_m_step(keep_components(out.stats, keep), prior_, o_.em.covariance_type, o_.em.reg_covar);
  out.model_changed = true;
}

}  // namespace engine
}  // namespace cuem
