#include "engine/conditional_gaussian.hpp"

#include <cmath>
#include <string>

#include "core/linalg.hpp"
#include "cuem/errors.hpp"

namespace cuem::engine {

std::vector<double> precision_matrices(const Model& model) {
  const CovarianceType type = model.covariance_type;
  if (type != CovarianceType::full && type != CovarianceType::tied) return {};
  const std::size_t D = static_cast<std::size_t>(model.n_features);
  const std::size_t n = type == CovarianceType::full ? static_cast<std::size_t>(model.n_components) : 1;
  std::vector<double> out(n * D * D);
  for (std::size_t k = 0; k < n; ++k) {
    const double* P = model.precisions_cholesky.data() + k * D * D;  // upper triangular
    double* A = out.data() + k * D * D;
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = i; j < D; ++j) {
        double s = 0.0;
        for (std::size_t l = j; l < D; ++l) s += P[i * D + l] * P[j * D + l];
        A[i * D + j] = A[j * D + i] = s;
      }
  }
  return out;
}

ConditionalFactors conditional_factors(const Model& model, const std::vector<double>& precisions, int k,
                                       const MissingPattern& p) {
  ConditionalFactors f;
  std::vector<double> scratch;
  conditional_factors(model, precisions, k, p, f, scratch);
  return f;
}

void conditional_factors(const Model& model, const std::vector<double>& precisions, int k, const MissingPattern& p,
                         ConditionalFactors& f, std::vector<double>& scratch) {
  const std::size_t D = static_cast<std::size_t>(model.n_features);
  const std::size_t m = p.missing.size(), o = p.observed.size();
  f.cov.assign(m * m, 0.0);
  f.G.clear();
  f.log_det_mm = 0.0;
  switch (model.covariance_type) {
    case CovarianceType::diag: {
      const double* pk = model.precisions_cholesky.data() + static_cast<std::size_t>(k) * D;
      for (std::size_t a = 0; a < m; ++a) {
        const double pd = pk[p.missing[a]];
        f.cov[a * m + a] = 1.0 / (pd * pd);
        f.log_det_mm += std::log(pd);
      }
      return;
    }
    case CovarianceType::spherical: {
      const double pk = model.precisions_cholesky[static_cast<std::size_t>(k)];
      for (std::size_t a = 0; a < m; ++a) f.cov[a * m + a] = 1.0 / (pk * pk);
      f.log_det_mm = static_cast<double>(m) * std::log(pk);
      return;
    }
    case CovarianceType::full:
    case CovarianceType::tied: break;
  }
  const double* A = precisions.data() + (model.covariance_type == CovarianceType::full ? k * D * D : 0);
  // Lambda_mm = L L^T; its inverse is the conditional covariance, and G = Lambda_mm^-1 Lambda_mo.
  scratch.assign(2 * m * m, 0.0);
  double* L = scratch.data();
  double* Linv = L + m * m;
  for (std::size_t a = 0; a < m; ++a)
    for (std::size_t b = 0; b <= a; ++b) L[a * m + b] = A[p.missing[a] * D + p.missing[b]];
  if (linalg::cholesky_lower(L, static_cast<int>(m)) >= 0)
    throw NumericalError("the precision of component " + std::to_string(k) +
                         " restricted to a row's missing entries is not positive definite; increase reg_covar");
  for (std::size_t a = 0; a < m; ++a) f.log_det_mm += std::log(L[a * m + a]);
  linalg::invert_lower(L, Linv, static_cast<int>(m));
  for (std::size_t a = 0; a < m; ++a)
    for (std::size_t b = a; b < m; ++b) {
      double s = 0.0;  // (L^-T L^-1)_ab = sum_c Linv_ca Linv_cb over c >= max(a, b)
      for (std::size_t c = b; c < m; ++c) s += Linv[c * m + a] * Linv[c * m + b];
      f.cov[a * m + b] = f.cov[b * m + a] = s;
    }
  f.G.assign(m * o, 0.0);
  for (std::size_t a = 0; a < m; ++a)
    for (std::size_t b = 0; b < m; ++b) {
      const double c = f.cov[a * m + b];
      const double* row = A + static_cast<std::size_t>(p.missing[b]) * D;
      for (std::size_t j = 0; j < o; ++j) f.G[a * o + j] += c * row[p.observed[j]];
    }
}

}  // namespace cuem::engine
