#include "cuem/model.hpp"

namespace cuem {

std::size_t covariance_size(CovarianceType type, int n_components, int n_features) noexcept {
  const auto K = static_cast<std::size_t>(n_components);
  const auto D = static_cast<std::size_t>(n_features);
  switch (type) {
    case CovarianceType::full: return K * D * D;
    case CovarianceType::tied: return D * D;
    case CovarianceType::diag: return K * D;
    case CovarianceType::spherical: return K;
  }
  return 0;
}

double n_parameters(const Model& model) noexcept {
  const double K = model.n_components;
  const double D = model.n_features;
  double cov = 0.0;
  switch (model.covariance_type) {
    case CovarianceType::full: cov = K * D * (D + 1) / 2; break;
    case CovarianceType::tied: cov = D * (D + 1) / 2; break;
    case CovarianceType::diag: cov = K * D; break;
    case CovarianceType::spherical: cov = K; break;
  }
  return cov + K * D + K - 1;
}

}  // namespace cuem
