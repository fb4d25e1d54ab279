// Drawing points from a mixture: component counts from the weights, then Gaussian draws
// x = mu + L z with Sigma = L L^T, grouped by component as scikit-learn returns them.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/linalg.hpp"
#include "core/mixture_sampler.hpp"
#include "core/rng.hpp"
#include "core/validate.hpp"
#include "cuem/errors.hpp"
#include "cuem/fit.hpp"

namespace cuem {

MixtureSampler::MixtureSampler(const Model& model, std::size_t n, std::uint64_t seed)
    : model_(model), n_(n), seed_(seed) {
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
  ends_.resize(K);
  std::size_t end = 0;
  for (int k = 0; k < K; ++k) ends_[k] = end += counts[k];

  // Lower Cholesky factors of the covariances (full and tied); square roots otherwise.
  if (model.covariance_type == CovarianceType::full || model.covariance_type == CovarianceType::tied) {
    factors_ = model.covariances;
    for (std::size_t off = 0; off < factors_.size(); off += DD)
      if (linalg::cholesky_lower(factors_.data() + off, D) >= 0)
        throw InvalidArgument("model covariance " + std::to_string(off / DD) + " is not positive definite");
  }
}

int MixtureSampler::component_of(std::size_t row) const {
  return static_cast<int>(std::upper_bound(ends_.begin(), ends_.end(), row) - ends_.begin());
}

void MixtureSampler::draw(std::size_t row, int k, double* x, double* z) const {
  const int D = model_.n_features;
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  const double* mu = model_.means.data() + static_cast<std::size_t>(k) * D;
  for (int d = 0; d < D; ++d) z[d] = rng::normal(seed_, rng::kSampleNormal, row * D + d);
  switch (model_.covariance_type) {
    case CovarianceType::full:
    case CovarianceType::tied: {
      const double* L = factors_.data() + (model_.covariance_type == CovarianceType::full ? k * DD : 0);
      for (int i = 0; i < D; ++i) {
        double s = 0.0;
        for (int j = 0; j <= i; ++j) s += L[i * D + j] * z[j];
        x[i] = mu[i] + s;
      }
      break;
    }
    case CovarianceType::diag:
      for (int d = 0; d < D; ++d) x[d] = mu[d] + std::sqrt(model_.covariances[k * D + d]) * z[d];
      break;
    case CovarianceType::spherical:
      for (int d = 0; d < D; ++d) x[d] = mu[d] + std::sqrt(model_.covariances[k]) * z[d];
      break;
  }
}

Samples sample(const Model& model, std::size_t n, std::uint64_t seed) {
  const MixtureSampler sampler(model, n, seed);
  const auto D = static_cast<std::size_t>(model.n_features);
  Samples out;
  out.X.resize(n * D);
  out.labels.resize(n);
  std::vector<double> z(D);
  for (std::size_t row = 0; row < n; ++row) {
    const int k = sampler.component_of(row);
    sampler.draw(row, k, out.X.data() + row * D, z.data());
    out.labels[row] = k;
  }
  return out;
}

}  // namespace cuem
