#include "init/kmeans.hpp"

#include <algorithm>
#include <cmath>

#include "core/rng.hpp"
#include "cpu/cpu_backend.hpp"
#include "cuem/errors.hpp"

namespace cuem {
namespace {

// Row i of X as float64 values.
std::vector<double> row_copy(const DataView& X, std::size_t i) {
  std::vector<double> r(X.n_cols);
  for (std::size_t d = 0; d < X.n_cols; ++d) r[d] = X.value(i, d);
  return r;
}

}  // namespace

double mean_feature_variance(Backend& backend, DataView X) {
  // The data do not change between restarts: computed once per backend.
  if (backend.mean_feature_variance) return *backend.mean_feature_variance;
  const std::size_t N = X.n_rows;
  const int D = static_cast<int>(X.n_cols);
  // Where the data live on a device, one part holding every point: its S1 and S2 about
  // the mean, from the two passes there (two host passes over G-scale data would take
  // longer than the fit).
  SufficientStats all;
  if (backend.partition_stats(std::vector<double>(X.n_cols, 0.0), 1, CovarianceType::diag, &all)) {
    double sum = 0.0;
    for (int d = 0; d < D; ++d) {
      const double m = all.s1[d] / all.nk[0];
      // float32 sums can round a constant feature's variance below zero; k-means' stop
      // test (shift <= tol * variance) would then never pass.
      sum += std::max(0.0, all.s2[d] / all.nk[0] - m * m);
    }
    backend.mean_feature_variance = sum / D;
    return sum / D;
  }
  double mean_var = 0.0;
  for (int d = 0; d < D; ++d) {
    double m = 0.0, v = 0.0;
    for (std::size_t i = 0; i < N; ++i) m += X.value(i, d);
    m /= static_cast<double>(N);
    for (std::size_t i = 0; i < N; ++i) v += (X.value(i, d) - m) * (X.value(i, d) - m);
    mean_var += v / static_cast<double>(N);
  }
  backend.mean_feature_variance = mean_var / D;
  return mean_var / D;
}

std::vector<std::size_t> kmeans_plusplus(Backend& backend, DataView X, int K, std::uint64_t seed,
                                         const std::function<bool()>& interrupted) {
  const std::size_t N = X.n_rows;
  const int n_trials = 2 + static_cast<int>(std::log(static_cast<double>(K)));
  std::uint64_t counter = 0;

  std::vector<std::size_t> chosen;
  chosen.reserve(K);
  const auto first = static_cast<std::size_t>(rng::uniform(seed, rng::kKmeansPlusPlus, counter++) * N);
  chosen.push_back(std::min(first, N - 1));
  double potential = backend.closest_reset(row_copy(X, chosen[0]).data());

  std::vector<std::size_t> candidates(n_trials);
  std::vector<double> candidate_potential(n_trials);
  for (int c = 1; c < K; ++c) {
    if (interrupted && interrupted()) throw Interrupted("the fit was interrupted during k-means++ seeding");
    for (int t = 0; t < n_trials; ++t) {
      const double r = rng::uniform(seed, rng::kKmeansPlusPlus, counter++) * potential;
      candidates[t] = backend.closest_sample(r);
    }
    int best = 0;
    for (int t = 0; t < n_trials; ++t) {
      candidate_potential[t] = backend.closest_potential(row_copy(X, candidates[t]).data());
      if (candidate_potential[t] < candidate_potential[best]) best = t;
    }
    potential = backend.closest_update(row_copy(X, candidates[best]).data());
    chosen.push_back(candidates[best]);
  }
  return chosen;
}

KMeansResult kmeans(Backend& backend, DataView X, int K, std::uint64_t seed, int max_iter, double tol,
                    const std::function<bool()>& interrupted) {
  const int D = static_cast<int>(X.n_cols);
  KMeansResult res;
  res.centers.resize(static_cast<std::size_t>(K) * D);
  const std::vector<std::size_t> seeds = kmeans_plusplus(backend, X, K, seed, interrupted);
  for (int k = 0; k < K; ++k)
    for (int d = 0; d < D; ++d) res.centers[static_cast<std::size_t>(k) * D + d] = X.value(seeds[k], d);

  // scikit-learn scales tol by the mean variance of the features.
  const double mean_var = mean_feature_variance(backend, X);
  const double threshold = tol * mean_var;

  for (res.n_iter = 1; res.n_iter <= max_iter; ++res.n_iter) {
    if (interrupted && interrupted()) throw Interrupted("the fit was interrupted during k-means");
    LloydStep step = backend.lloyd_step(res.centers, K);
    res.inertia = step.inertia;
    res.n_empty = static_cast<int>(std::count(step.counts.begin(), step.counts.end(), 0.0));
    double shift = 0.0;
    for (std::size_t i = 0; i < res.centers.size(); ++i)
      shift += (step.centers[i] - res.centers[i]) * (step.centers[i] - res.centers[i]);
    res.centers = std::move(step.centers);
    if (shift <= threshold) break;
  }
  res.n_iter = std::min(res.n_iter, max_iter);
  return res;
}

std::vector<std::size_t> kmeans_plusplus(DataView X, int K, std::uint64_t seed,
                                         const std::function<bool()>& interrupted) {
  CpuBackend backend(X);
  return kmeans_plusplus(backend, X, K, seed, interrupted);
}

KMeansResult kmeans(DataView X, int K, std::uint64_t seed, int max_iter, double tol,
                    const std::function<bool()>& interrupted) {
  CpuBackend backend(X);
  return kmeans(backend, X, K, seed, max_iter, tol, interrupted);
}

}  // namespace cuem
