#include "init/kmeans.hpp"

#include <algorithm>
#include <cmath>
#include <queue>

#include "core/rng.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cuem/errors.hpp"

namespace cuem {
namespace {

// Row i of the data as float64 values, read through the primitives (the data may be in
// device memory).
std::vector<double> row_copy(const Primitives& prims, std::size_t i) {
  std::vector<double> r(prims.cols());
  prims.copy_rows(i, 1, r.data());
  return r;
}

// Points per nearest_labels call of the relocation pass (bounded host memory).
constexpr std::size_t kLabelPiece = std::size_t{1} << 16;

// scikit-learn's rule for empty clusters (its _relocate_empty_clusters), as kmeans.hpp
// states it. `centers` are the step's starting centres; `step` its result, updated in
// place. Empty clusters are rare from k-means++ seeds, so the pass that finds the points
// runs only then: the primitives' labels, host distances in float64 (written once here
// for every backend).
// With weights only points of positive weight move (a point of zero weight is not
// there), and a cluster's count is its weight.
void relocate_empty_clusters(Primitives& prims, const DataView& X, const std::vector<double>& centers, int K,
                             LloydStep& step) {
  const WeightView w = prims.weights();
  std::vector<int> empty;
  for (int k = 0; k < K; ++k)
    if (step.counts[k] == 0.0) empty.push_back(k);
  std::size_t movable = X.n_rows;
  if (!w.empty() && !empty.empty())
    movable = static_cast<std::size_t>(std::count_if(w.data, w.data + X.n_rows, [](double v) { return v > 0.0; }));
  const std::size_t n = std::min(empty.size(), movable);
  if (n == 0) return;
  const std::size_t N = X.n_rows;
  const std::size_t D = X.n_cols;
  struct Far {
    double dist;
    std::size_t index;
    int label;
  };
  // `a` moves before `b`: farther, or as far and earlier.
  const auto before = [](const Far& a, const Far& b) {
    return a.dist > b.dist || (a.dist == b.dist && a.index < b.index);
  };
  // The n best so far; the top is the one that would move last.
  std::priority_queue<Far, std::vector<Far>, decltype(before)> kept(before);
  std::vector<int> labels(std::min(N, kLabelPiece));
  std::vector<double> rows(std::min(N, kLabelPiece) * D);
  for (std::size_t begin = 0; begin < N; begin += kLabelPiece) {
    const std::size_t count = std::min(kLabelPiece, N - begin);
    prims.nearest_labels(centers, K, begin, count, labels.data());
    prims.copy_rows(begin, count, rows.data());
    for (std::size_t b = 0; b < count; ++b) {
      const std::size_t i = begin + b;
      if (!w.empty() && !(w.data[i] > 0.0)) continue;
      const double* c = centers.data() + static_cast<std::size_t>(labels[b]) * D;
      const double* x = rows.data() + b * D;
      double dist = 0.0;
      for (std::size_t d = 0; d < D; ++d) dist += (x[d] - c[d]) * (x[d] - c[d]);
      const Far f{dist, i, labels[b]};
      if (kept.size() < n) {
        kept.push(f);
      } else if (before(f, kept.top())) {
        kept.pop();
        kept.push(f);
      }
    }
  }
  std::vector<Far> far;
  for (; !kept.empty(); kept.pop()) far.push_back(kept.top());
  std::reverse(far.begin(), far.end());
  for (std::size_t j = 0; j < far.size(); ++j) {
    const Far& f = far[j];
    const std::vector<double> x = row_copy(prims, f.index);
    const std::size_t donor = static_cast<std::size_t>(f.label);
    const std::size_t target = static_cast<std::size_t>(empty[j]);
    double* m = step.centers.data() + donor * D;
    const double wi = w.at(f.index);  // 1 without weights: the same arithmetic as counting
    const double rest = step.counts[donor] - wi;
    if (rest > 0.0) {
      // The donor's mean without the point: m + w (m - x) / (W - w), no sums re-formed.
      step.counts[donor] = rest;
      for (std::size_t d = 0; d < D; ++d) m[d] += wi * (m[d] - x[d]) / rest;
    } else if (rest == 0.0) {
      // Its only point left: an empty cluster keeps its centre.
      step.counts[donor] = 0.0;
      std::copy_n(centers.data() + donor * D, D, m);
    }
    // (Otherwise the step counted the point in another cluster: on a float32 device its
    // two assignment kernels can split a near-tie. Its donor is then unknown; the point
    // still moves.)
    for (std::size_t d = 0; d < D; ++d) step.centers[target * D + d] = x[d];
    step.counts[target] = wi;
  }
}

// The first k-means++ seed for a uniform draw u: a point drawn with probability
// proportional to its weight (scikit-learn's choice(p = w / sum w)), the first whose
// running sum of weights exceeds u sum w; without weights floor(u N).
std::size_t first_seed(const WeightView& w, double total_weight, std::size_t N, double u) {
  if (w.empty()) return std::min(static_cast<std::size_t>(u * N), N - 1);
  const double r = u * total_weight;
  double running = 0.0;
  std::size_t last = 0;  // the last point of positive weight, should rounding leave r unreached
  for (std::size_t i = 0; i < N; ++i) {
    if (!(w.data[i] > 0.0)) continue;
    running += w.data[i];
    last = i;
    if (running > r) return i;
  }
  return last;
}

}  // namespace

LloydStep lloyd_step_relocating(Primitives& prims, DataView X, const std::vector<double>& centers, int K) {
  LloydStep step = prims.lloyd_step(centers, K);
  relocate_empty_clusters(prims, X, centers, K, step);
  return step;
}

std::vector<std::size_t> kmeans_plusplus(Primitives& prims, DataView X, int K, std::uint64_t seed,
                                         const std::function<bool()>& interrupted) {
  const std::size_t N = X.n_rows;
  const int n_trials = 2 + static_cast<int>(std::log(static_cast<double>(K)));
  std::uint64_t counter = 0;

  std::vector<std::size_t> chosen;
  chosen.reserve(K);
  chosen.push_back(first_seed(prims.weights(), prims.total_weight(), N,
                              rng::uniform(seed, rng::kKmeansPlusPlus, counter++)));
  const std::unique_ptr<PointValues> closest = prims.make_point_values();
  double potential = prims.closest(*closest, row_copy(prims, chosen[0]).data(), ClosestMode::reset);

  const std::size_t D = X.n_cols;
  std::vector<std::size_t> candidates(n_trials);
  std::vector<double> candidate_rows(static_cast<std::size_t>(n_trials) * D);
  std::vector<double> candidate_potential(n_trials);
  for (int c = 1; c < K; ++c) {
    if (interrupted && interrupted()) throw Interrupted("the fit was interrupted during k-means++ seeding");
    for (int t = 0; t < n_trials; ++t) {
      const double r = rng::uniform(seed, rng::kKmeansPlusPlus, counter++) * potential;
      candidates[t] = prims.sample_point(*closest, r);
      prims.copy_rows(candidates[t], 1, candidate_rows.data() + static_cast<std::size_t>(t) * D);
    }
    // The trials in one pass over the data (the pass, not the arithmetic, is the cost).
    prims.closest_potentials(*closest, candidate_rows.data(), n_trials, candidate_potential.data());
    int best = 0;
    for (int t = 1; t < n_trials; ++t)
      if (candidate_potential[t] < candidate_potential[best]) best = t;
    potential = prims.closest_keep(*closest, candidate_rows.data() + static_cast<std::size_t>(best) * D, best);
    chosen.push_back(candidates[best]);
  }
  return chosen;
}

KMeansResult kmeans(Primitives& prims, DataView X, int K, std::uint64_t seed, int max_iter, double tol,
                    const std::function<bool()>& interrupted, KMeansShared* shared) {
  const int D = static_cast<int>(X.n_cols);
  KMeansResult res;
  res.centers.resize(static_cast<std::size_t>(K) * D);
  const std::vector<std::size_t> seeds = kmeans_plusplus(prims, X, K, seed, interrupted);
  for (int k = 0; k < K; ++k)
    prims.copy_rows(seeds[k], 1, res.centers.data() + static_cast<std::size_t>(k) * D);

  // scikit-learn scales tol by the mean variance of the features.
  double mean_var = 0.0;
  if (shared && shared->mean_feature_variance) {
    mean_var = *shared->mean_feature_variance;
  } else {
    mean_var = prims.mean_feature_variance();
    if (shared) shared->mean_feature_variance = mean_var;
  }
  const double threshold = tol * mean_var;

  for (res.n_iter = 1; res.n_iter <= max_iter; ++res.n_iter) {
    if (interrupted && interrupted()) throw Interrupted("the fit was interrupted during k-means");
    LloydStep step = lloyd_step_relocating(prims, X, res.centers, K);
    res.inertia = step.inertia;
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
  CpuPrimitives prims(X);
  return kmeans_plusplus(prims, X, K, seed, interrupted);
}

KMeansResult kmeans(DataView X, int K, std::uint64_t seed, int max_iter, double tol,
                    const std::function<bool()>& interrupted) {
  CpuPrimitives prims(X);
  return kmeans(prims, X, K, seed, max_iter, tol, interrupted);
}

}  // namespace cuem
