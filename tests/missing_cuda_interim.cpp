// Interim stand-in for src/engine/conditional_gaussian.cpp until it lands on main: the two
// functions test_missing_cuda links against. Goes once the branch merges main.
#include <cmath>
#include <vector>

#include "cuem/errors.hpp"
#include "engine/conditional_gaussian.hpp"

namespace cuem::engine {

std::vector<double> precision_matrices(const Model& model) {
  const int D = model.n_features;
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  if (model.covariance_type != CovarianceType::full && model.covariance_type != CovarianceType::tied) return {};
  const int n = model.covariance_type == CovarianceType::full ? model.n_components : 1;
  std::vector<double> out(n * DD, 0.0);
  for (int k = 0; k < n; ++k) {
    const double* P = model.precisions_cholesky.data() + k * DD;
    for (int i = 0; i < D; ++i)
      for (int j = 0; j < D; ++j) {
        double s = 0;
        for (int l = 0; l < D; ++l) s += P[i * D + l] * P[j * D + l];
        out[k * DD + i * D + j] = s;
      }
  }
  return out;
}

ConditionalFactors conditional_factors(const Model& model, const std::vector<double>& precisions, int k,
                                       const MissingPattern& p) {
  const int D = model.n_features;
  const std::size_t nm = p.missing.size(), no = p.observed.size();
  ConditionalFactors f;
  f.cov.assign(nm * nm, 0.0);
  if (model.covariance_type == CovarianceType::diag || model.covariance_type == CovarianceType::spherical) {
    for (std::size_t i = 0; i < nm; ++i) {
      const double pd = model.covariance_type == CovarianceType::diag
                            ? model.precisions_cholesky[static_cast<std::size_t>(k) * D + p.missing[i]]
                            : model.precisions_cholesky[k];
      f.cov[i * nm + i] = 1.0 / (pd * pd);
      f.log_det_mm += std::log(pd);
    }
    return f;
  }
  const double* lam = precisions.data() + (model.covariance_type == CovarianceType::full
                                               ? static_cast<std::size_t>(k) * D * D
                                               : 0);
  std::vector<double> L(nm * nm, 0.0);
  for (std::size_t j = 0; j < nm; ++j) {
    double s = lam[p.missing[j] * D + p.missing[j]];
    for (std::size_t l = 0; l < j; ++l) s -= L[j * nm + l] * L[j * nm + l];
    if (!(s > 0)) throw NumericalError("Lambda_mm is not positive definite");
    L[j * nm + j] = std::sqrt(s);
    f.log_det_mm += std::log(L[j * nm + j]);
    for (std::size_t i = j + 1; i < nm; ++i) {
      double t = lam[p.missing[i] * D + p.missing[j]];
      for (std::size_t l = 0; l < j; ++l) t -= L[i * nm + l] * L[j * nm + l];
      L[i * nm + j] = t / L[j * nm + j];
    }
  }
  // Solves L L^T z = b for a column b.
  const auto solve = [&](std::vector<double>& b) {
    for (std::size_t i = 0; i < nm; ++i) {
      for (std::size_t l = 0; l < i; ++l) b[i] -= L[i * nm + l] * b[l];
      b[i] /= L[i * nm + i];
    }
    for (std::size_t i = nm; i-- > 0;) {
      for (std::size_t l = i + 1; l < nm; ++l) b[i] -= L[l * nm + i] * b[l];
      b[i] /= L[i * nm + i];
    }
  };
  std::vector<double> col(nm);
  for (std::size_t c = 0; c < nm; ++c) {
    for (std::size_t i = 0; i < nm; ++i) col[i] = i == c ? 1.0 : 0.0;
    solve(col);
    for (std::size_t i = 0; i < nm; ++i) f.cov[i * nm + c] = col[i];
  }
  f.G.assign(nm * no, 0.0);
  for (std::size_t c = 0; c < no; ++c) {
    for (std::size_t i = 0; i < nm; ++i) col[i] = lam[p.missing[i] * D + p.observed[c]];
    solve(col);
    for (std::size_t i = 0; i < nm; ++i) f.G[i * no + c] = col[i];
  }
  return f;
}

}  // namespace cuem::engine
