// Drawing points from a mixture: component counts from the weights, then Gaussian draws
// x = mu + L z with Sigma = L L^T, grouped by component as scikit-learn returns them.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/linalg.hpp"
#include "core/rng.hpp"
#include "core/validate.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"

namespace cuem {

Samples sample(const Model& model, std::size_t n, std::uint64_t seed) {
  check_model_consistency(model);
  if (n == 0) throw InvalidArgument("sample needs n >= 1 points");
  const int K = model.n_components;
  const int D = model.n_features;
  const std::size_t DD = static_cast<std::size_t>(D) * D;

  std::vector<double> cumulative(K);
  double acc = 0.0;
  for (int k = 0; k < K; ++k) cumulative[k] = acc += model.weights[k];
  std::vector<std::size_t> counts(K, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = rng::uniform(seed, rng::kSampleComponent, i) * acc;
    const auto k = std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin();
    ++counts[std::min<std::ptrdiff_t>(k, K - 1)];
  }

  // Lower Cholesky factors of the covariances (full and tied); square roots otherwise.
  std::vector<double> factors;
  if (model.covariance_type == CovarianceType::full || model.covariance_type == CovarianceType::tied) {
    factors = model.covariances;
    for (std::size_t off = 0; off < factors.size(); off += DD)
      if (linalg::cholesky_lower(factors.data() + off, D) >= 0)
        throw InvalidArgument("model covariance " + std::to_string(off / DD) + " is not positive definite");
  }

  Samples out;
  out.X.resize(n * D);
  out.labels.resize(n);
  std::size_t row = 0;
  std::vector<double> z(D);
  for (int k = 0; k < K; ++k) {
    const double* mu = model.means.data() + static_cast<std::size_t>(k) * D;
    for (std::size_t c = 0; c < counts[k]; ++c, ++row) {
      for (int d = 0; d < D; ++d) z[d] = rng::normal(seed, rng::kSampleNormal, row * D + d);
      double* x = out.X.data() + row * D;
      switch (model.covariance_type) {
        case CovarianceType::full:
        case CovarianceType::tied: {
          const double* L = factors.data() + (model.covariance_type == CovarianceType::full ? k * DD : 0);
          for (int i = 0; i < D; ++i) {
            double s = 0.0;
            for (int j = 0; j <= i; ++j) s += L[i * D + j] * z[j];
            x[i] = mu[i] + s;
          }
          break;
        }
        case CovarianceType::diag:
          for (int d = 0; d < D; ++d) x[d] = mu[d] + std::sqrt(model.covariances[k * D + d]) * z[d];
          break;
        case CovarianceType::spherical:
          for (int d = 0; d < D; ++d) x[d] = mu[d] + std::sqrt(model.covariances[k]) * z[d];
          break;
      }
      out.labels[row] = k;
    }
  }
  return out;
}

}  // namespace cuem
