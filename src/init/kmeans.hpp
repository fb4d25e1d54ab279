#pragma once
// k-means for initialisation: greedy k-means++ seeding and Lloyd iterations. The
// algorithms are written once here, on the primitives of a backend (CPU or CUDA), which
// run the per-point work.
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "cuem/data_view.hpp"
#include "engine/primitives.hpp"

namespace cuem {

/// What the k-means of one fit's restarts share; the fit owns it. The data do not change
/// between restarts, and on a device the variance pass costs a workspace.
struct KMeansShared {
  std::optional<double> mean_feature_variance;  ///< once computed (Primitives::mean_feature_variance)
};

/// Indices of K seed points by greedy k-means++ (Arthur & Vassilvitskii 2007; each step
/// draws 2 + floor(ln K) candidates with probability proportional to D(x)^2 and keeps the
/// one that lowers the potential most, as scikit-learn does). Deterministic for a seed and
/// backend, independent of the thread count. With weights the draws are proportional to
/// w D(x)^2, and the first seed to w (as scikit-learn's KMeans with sample_weight). The
/// distances live in a PointValues owned here; X is the data the primitives were made for
/// (the seeds are read from it).
/// `interrupted`, when set, is polled before each new seed (true throws Interrupted).
std::vector<std::size_t> kmeans_plusplus(Primitives& prims, DataView X, int K, std::uint64_t seed,
                                         const std::function<bool()>& interrupted = {});

struct KMeansResult {
  std::vector<double> centers;  ///< K x D
  int n_iter = 0;
  double inertia = 0;           ///< sum of squared distances to the nearest centre
};

/// One Lloyd step (Primitives::lloyd_step) followed by scikit-learn's relocation of empty
/// clusters (its _relocate_empty_clusters): when n clusters are empty, the n points
/// farthest from the centres they were assigned to (`centers`) become their centres, the
/// farthest the lowest-numbered empty cluster's, ties to the lower point index; each
/// leaves its own cluster, whose mean and count lose it. A cluster whose only point
/// moved keeps its centre in `centers`. LloydStep::inertia is the step's, before moving.
/// With weights only points of positive weight move, each with its weight, and the donor
/// keeps the weighted mean of its other points.
LloydStep lloyd_step_relocating(Primitives& prims, DataView X, const std::vector<double>& centers, int K);

/// Lloyd's algorithm from k-means++ seeds until the squared centre shift falls below
/// tol * (mean feature variance), as scikit-learn's KMeans, or max_iter; each step is
/// lloyd_step_relocating's, so empty clusters move as scikit-learn moves them.
/// `interrupted`, when set, is polled every iteration (true throws cuem::Interrupted).
/// `shared`, when given, keeps the variance for the fit's next restarts.
KMeansResult kmeans(Primitives& prims, DataView X, int K, std::uint64_t seed, int max_iter = 300, double tol = 1e-4,
                    const std::function<bool()>& interrupted = {}, KMeansShared* shared = nullptr);

/// The same on the CPU primitives.
std::vector<std::size_t> kmeans_plusplus(DataView X, int K, std::uint64_t seed,
                                         const std::function<bool()>& interrupted = {});
KMeansResult kmeans(DataView X, int K, std::uint64_t seed, int max_iter = 300, double tol = 1e-4,
                    const std::function<bool()>& interrupted = {});

}  // namespace cuem
