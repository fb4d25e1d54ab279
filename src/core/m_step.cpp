#include "core/m_step.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "core/linalg.hpp"
#include "cuem/errors.hpp"

namespace cuem {
namespace {

constexpr double kEmptyGuard = 10 * std::numeric_limits<double>::epsilon();

[[noreturn]] void throw_not_positive_definite(const std::string& what, double reg_covar, bool finite) {
  char reg[32];
  std::snprintf(reg, sizeof reg, "%g", reg_covar);
  if (!finite)
    throw NumericalError(what + " overflowed (values too large for float64 arithmetic); scale the data, e.g. to "
                                "unit variance, before fitting.");
  throw NumericalError(what + " is not positive definite after adding reg_covar = " + reg +
                       " (collapsed or duplicated points, or a feature with no spread). Increase reg_covar "
                       "(e.g. 1e-3), use fewer components, or scale the data.");
}

bool all_finite(const double* v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

}  // namespace

void compute_precision_cholesky(Model& m, double reg_covar) {
  const int K = m.n_components;
  const int D = m.n_features;
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  m.precisions_cholesky.assign(m.covariances.size(), 0.0);
  switch (m.covariance_type) {
    case CovarianceType::full:
      for (int k = 0; k < K; ++k)
        if (linalg::precision_cholesky_from_covariance(m.covariances.data() + k * DD,
                                                       m.precisions_cholesky.data() + k * DD, D) >= 0)
          throw_not_positive_definite("the covariance of component " + std::to_string(k), reg_covar,
                                      all_finite(m.covariances.data() + k * DD, DD));
      break;
    case CovarianceType::tied:
      if (linalg::precision_cholesky_from_covariance(m.covariances.data(), m.precisions_cholesky.data(), D) >= 0)
        throw_not_positive_definite("the shared (tied) covariance", reg_covar, all_finite(m.covariances.data(), DD));
      break;
    case CovarianceType::diag:
    case CovarianceType::spherical: {
      const std::size_t per = m.covariance_type == CovarianceType::diag ? static_cast<std::size_t>(D) : 1;
      for (std::size_t i = 0; i < m.covariances.size(); ++i) {
        const double v = m.covariances[i];
        if (!(v > 0.0) || !std::isfinite(v))
          throw_not_positive_definite("the covariance of component " + std::to_string(i / per), reg_covar,
                                      std::isfinite(v));
        m.precisions_cholesky[i] = 1.0 / std::sqrt(v);
      }
      break;
    }
  }
}

Model m_step(const SufficientStats& s, double reg_covar) {
  const int K = s.K;
  const int D = s.D;
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  Model m;
  m.covariance_type = s.type;
  m.n_components = K;
  m.n_features = D;
  m.weights.resize(K);
  m.means.resize(static_cast<std::size_t>(K) * D);

  std::vector<double> nk(K);
  double total = 0.0;
  for (int k = 0; k < K; ++k) {
    nk[k] = s.nk[k] + kEmptyGuard;
    total += nk[k];
  }
  // d_k = mu_new - c_k. The centred scatter is S2 - (N_k + guard) d d^T: the guard term
  // keeps the identity exact for the guarded N_k.
  std::vector<double> d(static_cast<std::size_t>(K) * D);
  std::vector<double> corr(K);
  for (int k = 0; k < K; ++k) {
    m.weights[k] = nk[k] / total;
    for (int j = 0; j < D; ++j) {
      d[k * D + j] = s.s1[k * D + j] / nk[k];
      m.means[k * D + j] = s.shift[k * D + j] + d[k * D + j];
    }
    corr[k] = nk[k] + kEmptyGuard;
  }

  m.covariances.assign(covariance_size(s.type, K, D), 0.0);
  switch (s.type) {
    case CovarianceType::full:
      for (int k = 0; k < K; ++k) {
        const double* S2 = s.s2.data() + k * DD;
        double* C = m.covariances.data() + k * DD;
        const double* dk = d.data() + static_cast<std::size_t>(k) * D;
        for (int i = 0; i < D; ++i)
          for (int j = i; j < D; ++j) {
            const double v = (S2[i * D + j] - corr[k] * dk[i] * dk[j]) / nk[k];
            C[i * D + j] = v;
            C[j * D + i] = v;
          }
        for (int i = 0; i < D; ++i) C[i * D + i] += reg_covar;
      }
      break;
    case CovarianceType::tied: {
      double* C = m.covariances.data();
      for (int i = 0; i < D; ++i)
        for (int j = i; j < D; ++j) {
          double v = s.s2[i * D + j];
          for (int k = 0; k < K; ++k) v -= corr[k] * d[k * D + i] * d[k * D + j];
          v /= total;
          C[i * D + j] = v;
          C[j * D + i] = v;
        }
      for (int i = 0; i < D; ++i) C[i * D + i] += reg_covar;
      break;
    }
    case CovarianceType::diag:
    case CovarianceType::spherical:
      for (int k = 0; k < K; ++k) {
        double mean_var = 0.0;
        for (int j = 0; j < D; ++j) {
          const std::size_t i = static_cast<std::size_t>(k) * D + j;
          const double v = (s.s2[i] - corr[k] * d[i] * d[i]) / nk[k] + reg_covar;
          if (s.type == CovarianceType::diag) m.covariances[i] = v;
          mean_var += v;
        }
        if (s.type == CovarianceType::spherical) m.covariances[k] = mean_var / D;
      }
      break;
  }
  compute_precision_cholesky(m, reg_covar);
  return m;
}

}  // namespace cuem
