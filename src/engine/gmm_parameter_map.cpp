#include "engine/gmm_parameter_map.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/linalg.hpp"
#include "cuem/errors.hpp"
#include "engine/gmm_model.hpp"

namespace cuem::engine {
namespace {

constexpr double kMaxLogDiag = 300.0;

double clamp_log(double v) { return std::clamp(v, -kMaxLogDiag, kMaxLogDiag); }

std::size_t n_factors(CovarianceType type, int K) noexcept {
  switch (type) {
    case CovarianceType::full: return static_cast<std::size_t>(K);
    case CovarianceType::tied: return 1;
    default: return 0;
  }
}

// One covariance's lower Cholesky factor, written row by row with its diagonal by the log.
void write_factor(const double* cov, int D, std::vector<double>& out, int component) {
  std::vector<double> L(cov, cov + static_cast<std::size_t>(D) * D);
  if (linalg::cholesky_lower(L.data(), D) >= 0)
    throw NumericalError("the covariance of component " + std::to_string(component) +
                         " is not positive definite: it has no parameter vector");
  for (int i = 0; i < D; ++i)
    for (int j = 0; j <= i; ++j) out.push_back(i == j ? std::log(L[i * D + i]) : L[i * D + j]);
}

// The factor back from the vector: Sigma = L L^T and P = L^-T (upper triangular).
const double* read_factor(const double* v, int D, double* cov, double* P) {
  std::vector<double> L(static_cast<std::size_t>(D) * D, 0.0), Linv(L.size());
  for (int i = 0; i < D; ++i)
    for (int j = 0; j <= i; ++j, ++v) L[i * D + j] = i == j ? std::exp(clamp_log(*v)) : *v;
  for (int i = 0; i < D; ++i)
    for (int j = 0; j <= i; ++j) {
      double s = 0.0;
      for (int p = 0; p <= j; ++p) s += L[i * D + p] * L[j * D + p];
      cov[i * D + j] = s;
      cov[j * D + i] = s;
    }
  linalg::invert_lower(L.data(), Linv.data(), D);
  for (int i = 0; i < D; ++i)
    for (int j = 0; j < D; ++j) P[i * D + j] = Linv[j * D + i];
  return v;
}

}  // namespace

std::size_t gmm_vector_size(CovarianceType type, int n_components, int n_features) noexcept {
  const std::size_t K = static_cast<std::size_t>(n_components), D = static_cast<std::size_t>(n_features);
  const std::size_t head = (K > 0 ? K - 1 : 0) + K * D;
  switch (type) {
    case CovarianceType::full:
    case CovarianceType::tied: return head + n_factors(type, n_components) * D * (D + 1) / 2;
    case CovarianceType::diag: return head + K * D;
    case CovarianceType::spherical: return head + K;
  }
  return head;
}

std::vector<double> gmm_to_vector(const Model& m) {
  const int K = m.n_components, D = m.n_features;
  std::vector<double> v;
  v.reserve(gmm_vector_size(m.covariance_type, K, D));
  const auto log_weight = [&](int k) { return std::log(std::max(m.weights[k], std::numeric_limits<double>::min())); };
  const double last = log_weight(K - 1);
  for (int k = 0; k + 1 < K; ++k) v.push_back(log_weight(k) - last);
  v.insert(v.end(), m.means.begin(), m.means.end());
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  switch (m.covariance_type) {
    case CovarianceType::full:
      for (int k = 0; k < K; ++k) write_factor(m.covariances.data() + k * DD, D, v, k);
      break;
    case CovarianceType::tied: write_factor(m.covariances.data(), D, v, 0); break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
      for (std::size_t i = 0; i < m.covariances.size(); ++i) {
        if (!(m.covariances[i] > 0.0))
          throw NumericalError("a variance is not positive: the model has no parameter vector");
        v.push_back(std::log(m.covariances[i]));
      }
      break;
  }
  return v;
}

Model gmm_from_vector(const std::vector<double>& v, CovarianceType type, int n_components, int n_features) {
  const int K = n_components, D = n_features;
  if (K < 1 || D < 1 || v.size() != gmm_vector_size(type, K, D))
    throw InvalidArgument("gmm_from_vector: a vector of " + std::to_string(v.size()) +
                                " values does not fit the shape (" + std::to_string(K) + " components, " +
                                std::to_string(D) + " features)");
  Model m;
  m.covariance_type = type;
  m.n_components = K;
  m.n_features = D;
  // Softmax of (v_0, ..., v_{K-2}, 0), about its largest term.
  m.weights.resize(K);
  double top = 0.0;
  for (int k = 0; k + 1 < K; ++k) top = std::max(top, v[k]);
  double sum = 0.0;
  for (int k = 0; k < K; ++k) {
    m.weights[k] = std::exp((k + 1 < K ? v[k] : 0.0) - top);
    sum += m.weights[k];
  }
  for (double& w : m.weights) w /= sum;
  const double* p = v.data() + (K - 1);
  m.means.assign(p, p + static_cast<std::size_t>(K) * D);
  p += static_cast<std::size_t>(K) * D;
  m.covariances.assign(covariance_size(type, K, D), 0.0);
  m.precisions_cholesky.assign(m.covariances.size(), 0.0);
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  switch (type) {
    case CovarianceType::full:
    case CovarianceType::tied:
      for (std::size_t f = 0; f < n_factors(type, K); ++f)
        p = read_factor(p, D, m.covariances.data() + f * DD, m.precisions_cholesky.data() + f * DD);
      break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
      for (std::size_t i = 0; i < m.covariances.size(); ++i) {
        const double l = clamp_log(p[i]);
        m.covariances[i] = std::exp(l);
        m.precisions_cholesky[i] = std::exp(-0.5 * l);
      }
      break;
  }
  return m;
}

std::vector<double> to_unconstrained(const GaussianMixtureEM&, const Model& params) { return gmm_to_vector(params); }

Model from_unconstrained(const GaussianMixtureEM&, const std::vector<double>& v, const Model& shape) {
  return gmm_from_vector(v, shape.covariance_type, shape.n_components, shape.n_features);
}

}  // namespace cuem::engine
