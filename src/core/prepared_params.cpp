#include "core/prepared_params.hpp"

#include <cmath>

#include "core/linalg.hpp"

namespace cuem {

const double* PreparedParams::factor(int k) const noexcept {
  const std::size_t Dz = static_cast<std::size_t>(D);
  switch (type) {
    case CovarianceType::full: return prec_chol.data() + static_cast<std::size_t>(k) * Dz * Dz;
    case CovarianceType::tied: return prec_chol.data();
    case CovarianceType::diag: return prec_chol.data() + static_cast<std::size_t>(k) * Dz;
    case CovarianceType::spherical: return prec_chol.data() + k;
  }
  return prec_chol.data();
}

PreparedParams prepare(const Model& model) {
  PreparedParams p;
  p.type = model.covariance_type;
  p.K = model.n_components;
  p.D = model.n_features;
  p.means = model.means;
  p.prec_chol = model.precisions_cholesky;
  p.log_weights.resize(p.K);
  p.log_det.resize(p.K);
  for (int k = 0; k < p.K; ++k) {
    p.log_weights[k] = std::log(model.weights[k]);
    const double* f = p.factor(k);
    switch (p.type) {
      case CovarianceType::full:
      case CovarianceType::tied: p.log_det[k] = linalg::log_det_triangular(f, p.D); break;
      case CovarianceType::diag: {
        double s = 0.0;
        for (int d = 0; d < p.D; ++d) s += std::log(f[d]);
        p.log_det[k] = s;
        break;
      }
      case CovarianceType::spherical: p.log_det[k] = p.D * std::log(*f); break;
    }
  }
  return p;
}

}  // namespace cuem
