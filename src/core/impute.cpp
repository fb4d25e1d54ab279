// impute(): missing entries filled by their conditional expectation under a fitted
// mixture (include/cuem/missing.hpp), in float64 on the CPU.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/validate.hpp"
#include "cuem/missing.hpp"
#include "engine/incomplete_rows.hpp"
#include "engine/missing_layout.hpp"

namespace cuem {
namespace {

// Variance of feature d under component k of the model.
double component_variance(const Model& m, std::size_t k, std::size_t d) {
  const std::size_t D = static_cast<std::size_t>(m.n_features);
  switch (m.covariance_type) {
    case CovarianceType::full: return m.covariances[(k * D + d) * D + d];
    case CovarianceType::tied: return m.covariances[d * D + d];
    case CovarianceType::diag: return m.covariances[k * D + d];
    case CovarianceType::spherical: return m.covariances[k];
  }
  return 0.0;
}

}  // namespace

Imputation impute(const Model& model, DataView X, bool with_variance) {
  validate_model_and_data(model, X, MissingPolicy::marginalize);
  const engine::MissingLayout L = engine::make_missing_layout(X, {}, false);
  const std::size_t N = X.n_rows, D = X.n_cols, K = static_cast<std::size_t>(model.n_components);
  Imputation out;
  out.X.resize(N * D);
  if (with_variance) out.variance.assign(N * D, 0.0);

  const std::size_t n_incomplete = L.n_rows - L.n_complete;
  std::vector<double> filled(n_incomplete * D), variance(with_variance ? n_incomplete * D : 0);
  engine::incomplete_conditionals(L, model, filled.data(), with_variance ? variance.data() : nullptr);

  // Every row starts as given (complete rows stay so); rows with information are then
  // overwritten from the layout, and rows with none get the mixture's moments.
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t d = 0; d < D; ++d) out.X[i * D + d] = X.value(i, d);
  for (std::size_t r = L.n_complete; r < L.n_rows; ++r) {
    const std::size_t row = L.order[r];
    const std::size_t i = r - L.n_complete;
    std::copy(filled.begin() + static_cast<std::ptrdiff_t>(i * D), filled.begin() + static_cast<std::ptrdiff_t>((i + 1) * D),
              out.X.begin() + static_cast<std::ptrdiff_t>(row * D));
    if (with_variance)
      std::copy(variance.begin() + static_cast<std::ptrdiff_t>(i * D),
                variance.begin() + static_cast<std::ptrdiff_t>((i + 1) * D),
                out.variance.begin() + static_cast<std::ptrdiff_t>(row * D));
  }
  if (L.summary.empty_rows == 0) return out;
  std::vector<double> mean(D, 0.0), var(D, 0.0);
  for (std::size_t d = 0; d < D; ++d) {
    for (std::size_t k = 0; k < K; ++k) mean[d] += model.weights[k] * model.means[k * D + d];
    for (std::size_t k = 0; k < K; ++k) {
      const double gap = model.means[k * D + d] - mean[d];
      var[d] += model.weights[k] * (component_variance(model, k, d) + gap * gap);
    }
  }
  for (std::size_t i = 0; i < N; ++i) {
    if (!std::isnan(X.value(i, 0))) continue;
    bool empty = true;
    for (std::size_t d = 1; d < D && empty; ++d) empty = std::isnan(X.value(i, d));
    if (!empty) continue;
    std::copy(mean.begin(), mean.end(), out.X.begin() + static_cast<std::ptrdiff_t>(i * D));
    if (with_variance) std::copy(var.begin(), var.end(), out.variance.begin() + static_cast<std::ptrdiff_t>(i * D));
  }
  return out;
}

}  // namespace cuem
