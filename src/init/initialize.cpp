#include "init/initialize.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/data_access.hpp"
#include "core/linalg.hpp"
#include "core/m_step.hpp"
#include "core/rng.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/errors.hpp"
#include "init/kmeans.hpp"

namespace cuem {
namespace {

// K distinct indices drawn uniformly from [0, N) (Floyd's algorithm), in draw order.
std::vector<std::size_t> distinct_indices(std::size_t N, int K, std::uint64_t seed) {
  std::vector<std::size_t> out;
  std::unordered_set<std::size_t> seen;
  std::uint64_t counter = 0;
  for (std::size_t j = N - static_cast<std::size_t>(K); j < N; ++j) {
    const auto t = std::min(j, static_cast<std::size_t>(rng::uniform(seed, rng::kRandomFromData, counter++) *
                                                        static_cast<double>(j + 1)));
    const std::size_t pick = seen.count(t) ? j : t;
    seen.insert(pick);
    out.push_back(pick);
  }
  return out;
}

// scikit-learn's k-means++ and random_from_data starts: component k is the one point
// index[k] with weight one and no other. Its statistics need no pass over the data:
// about the point itself N_k = 1, S1 = 0 and S2 = 0, which is bitwise what two passes over
// one-hot responsibilities give (each sum adds only zeros to x), in O(K D) instead of
// O(N K D) on the host, which at G-scale would take longer than the fit.
// With weights N_k stays 1: a start on one point of weight w is the start on one of its w
// repeats.
Model point_seeded_model(const Primitives& prims, const FitOptions& o, const std::vector<std::size_t>& index) {
  const int K = o.n_components;
  const std::size_t D = prims.cols();
  std::vector<double> points(static_cast<std::size_t>(K) * D);
  for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k)
    prims.copy_rows(index[k], 1, points.data() + k * D);
  SufficientStats s = SufficientStats::zeros(o.covariance_type, K, static_cast<int>(D), std::move(points));
  std::fill(s.nk.begin(), s.nk.end(), 1.0);
  s.n_points = prims.rows();
  s.weight = prims.total_weight();
  return m_step(s, o.reg_covar);
}

}  // namespace

std::vector<std::size_t> random_from_data_rows(const WeightView& w, std::size_t N, int K, std::uint64_t seed) {
  if (w.empty()) return distinct_indices(N, K, seed);
  std::vector<std::size_t> positive;
  for (std::size_t i = 0; i < N; ++i)
    if (w.data[i] > 0.0) positive.push_back(i);
  if (positive.size() < static_cast<std::size_t>(K))
    throw InvalidArgument("init 'random_from_data' needs at least n_components = " + std::to_string(K) +
                          " rows of positive sample_weight; " + std::to_string(positive.size()) + " have it");
  std::vector<std::size_t> index = distinct_indices(positive.size(), K, seed);
  for (std::size_t& i : index) i = positive[i];
  return index;
}


Model initialize(DataView X, const FitOptions& o, std::uint64_t seed) {
  CpuPrimitives prims(X);
  if (o.interrupted) prims.set_interrupt(o.interrupted);
  return initialize(prims, X, o, seed);
}

Model initialize(Primitives& prims, DataView X, const FitOptions& o, std::uint64_t seed,
                 std::vector<std::string>* notices, KMeansShared* shared) {
  const int K = o.n_components;
  const int D = static_cast<int>(X.n_cols);
  Model m;
  // With every parameter given the init method has nothing left to decide (scikit-learn
  // 1.9 skips it too): no k-means pass over the data.
  const bool all_given = !o.weights_init.empty() && !o.means_init.empty() && !o.precisions_init.empty();
  if (all_given) {
    m.covariance_type = o.covariance_type;
    m.n_components = K;
    m.n_features = D;
  } else {
    switch (o.init) {
      case InitMethod::kmeans: {
        const KMeansResult km = kmeans(prims, X, K, seed, 300, 1e-4, o.interrupted, shared);
        // The partition's statistics where the data live (at G-scale the host's passes
        // would take longer than the whole fit). Counted on the final partition: a
        // relocated cluster can still lose its point to a duplicate's lower-numbered
        // centre there.
        const SufficientStats partition =
            two_pass_stats(prims, Responsibilities::nearest_centre(km.centers), o.covariance_type, K);
        const int n_empty = static_cast<int>(std::count(partition.nk.begin(), partition.nk.end(), 0.0));
        if (n_empty > 0 && notices)
          notices->push_back("k-means found " + std::to_string(K - n_empty) + " distinct clusters for " +
                             std::to_string(K) + " components (duplicate points?); some components start empty");
        m = m_step(partition, o.reg_covar);
        break;
      }
      case InitMethod::kmeans_plusplus: {
        const std::vector<std::size_t> index = kmeans_plusplus(prims, X, K, seed, o.interrupted);
        m = point_seeded_model(prims, o, index);
        break;
      }
      case InitMethod::random_from_data: {
        m = point_seeded_model(prims, o, random_from_data_rows(prims.weights(), X.n_rows, K, seed));
        break;
      }
      case InitMethod::random:
        // Responsibilities drawn from rng stream kRandomResp per point, on every backend.
        m = m_step(two_pass_stats(prims, Responsibilities::random_draws(seed), o.covariance_type, K), o.reg_covar);
        break;
    }
  }

  if (!o.weights_init.empty()) m.weights = o.weights_init;
  if (!o.means_init.empty()) m.means = o.means_init;
  if (!o.precisions_init.empty()) {
    // Keep the covariances consistent with the given precisions; the factor is derived
    // from the covariance, so P P^T equals the given precision up to rounding.
    const std::size_t DD = static_cast<std::size_t>(D) * D;
    m.covariances.assign(o.precisions_init.size(), 0.0);
    switch (o.covariance_type) {
      case CovarianceType::full:
      case CovarianceType::tied:
        for (std::size_t off = 0; off < o.precisions_init.size(); off += DD)
          if (linalg::spd_inverse(o.precisions_init.data() + off, m.covariances.data() + off, D) >= 0)
            throw InvalidArgument("precisions_init is not symmetric positive definite (matrix " +
                                  std::to_string(off / DD) + ")");
        break;
      case CovarianceType::diag:
      case CovarianceType::spherical:
        for (std::size_t i = 0; i < o.precisions_init.size(); ++i) m.covariances[i] = 1.0 / o.precisions_init[i];
        break;
    }
    compute_precision_cholesky(m, o.reg_covar);
  }
  return m;
}

}  // namespace cuem
