#include "init/kmeans.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/data_access.hpp"
#include "core/rng.hpp"
#include "cuem/errors.hpp"
#include "cpu/cpu_backend.hpp"

namespace cuem {
namespace {

// Fixed-size blocks give sums whose rounding does not depend on the thread count.
constexpr std::size_t kBlock = 4096;

template <typename T>
double dist_sq(const T* a, const double* b, int D) {
  double s = 0.0;
  for (int d = 0; d < D; ++d) {
    const double t = static_cast<double>(a[d]) - b[d];
    s += t * t;
  }
  return s;
}

std::size_t n_blocks(std::size_t n) { return (n + kBlock - 1) / kBlock; }

// Sums f(i) over i in [0, n) block by block; block_sums receives each block's sum.
template <typename F>
double blocked_sum(std::size_t n, F f, std::vector<double>* block_sums = nullptr) {
  const std::size_t nb = n_blocks(n);
  std::vector<double> partial(nb);
#pragma omp parallel for schedule(static) if (nb > 1)
  for (std::ptrdiff_t b = 0; b < static_cast<std::ptrdiff_t>(nb); ++b) {
    const std::size_t lo = static_cast<std::size_t>(b) * kBlock;
    const std::size_t hi = std::min(n, lo + kBlock);
    double s = 0.0;
    for (std::size_t i = lo; i < hi; ++i) s += f(i);
    partial[b] = s;
  }
  const double total = std::accumulate(partial.begin(), partial.end(), 0.0);
  if (block_sums) *block_sums = std::move(partial);
  return total;
}

// First index whose running sum of w exceeds r (numpy's searchsorted on the cumulative
// sum), clipped to the last index; the running sum follows the block structure above.
std::size_t weighted_index(const std::vector<double>& w, const std::vector<double>& block_sums, double r) {
  double prefix = 0.0;
  std::size_t b = 0;
  for (; b + 1 < block_sums.size(); ++b) {
    if (prefix + block_sums[b] > r) break;
    prefix += block_sums[b];
  }
  const std::size_t lo = b * kBlock;
  const std::size_t hi = std::min(w.size(), lo + kBlock);
  double partial = 0.0;
  for (std::size_t i = lo; i < hi; ++i) {
    partial += w[i];
    if (prefix + partial > r) return i;
  }
  return w.size() - 1;
}

}  // namespace

template <typename T>
int nearest_center(const T* x, const std::vector<double>& centers, int K, int D, double* out_dist) {
  int best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (int k = 0; k < K; ++k) {
    const double d = dist_sq(x, centers.data() + static_cast<std::size_t>(k) * D, D);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  if (out_dist) *out_dist = best_d;
  return best;
}

template int nearest_center(const double*, const std::vector<double>&, int, int, double*);
template int nearest_center(const float*, const std::vector<double>&, int, int, double*);

namespace {

// Row i of X as float64 values.
std::vector<double> row_copy(const DataView& X, std::size_t i) {
  std::vector<double> r(X.n_cols);
  for (std::size_t d = 0; d < X.n_cols; ++d) r[d] = X.value(i, d);
  return r;
}

// Squared distance from row i of X to a float64 point.
double row_dist_sq(const DataView& X, std::size_t i, const double* c) {
  const int D = static_cast<int>(X.n_cols);
  return visit_rows(X, [&](const auto* base) { return dist_sq(base + i * X.n_cols, c, D); });
}

}  // namespace

std::vector<std::size_t> kmeans_plusplus(DataView X, int K, std::uint64_t seed,
                                         const std::function<bool()>& interrupted) {
  const std::size_t N = X.n_rows;
  const int n_trials = 2 + static_cast<int>(std::log(static_cast<double>(K)));
  std::uint64_t counter = 0;

  std::vector<std::size_t> chosen;
  chosen.reserve(K);
  const auto first = static_cast<std::size_t>(rng::uniform(seed, rng::kKmeansPlusPlus, counter++) * N);
  chosen.push_back(std::min(first, N - 1));

  std::vector<double> closest(N);
  std::vector<double> block_sums;
  const std::vector<double> c0 = row_copy(X, chosen[0]);
  double potential = blocked_sum(
      N, [&](std::size_t i) { return closest[i] = row_dist_sq(X, i, c0.data()); }, &block_sums);

  std::vector<std::size_t> candidates(n_trials);
  std::vector<double> candidate_potential(n_trials);
  for (int c = 1; c < K; ++c) {
    if (interrupted && interrupted()) throw Interrupted("the fit was interrupted during k-means++ seeding");
    for (int t = 0; t < n_trials; ++t) {
      const double r = rng::uniform(seed, rng::kKmeansPlusPlus, counter++) * potential;
      candidates[t] = weighted_index(closest, block_sums, r);
    }
    int best = 0;
    for (int t = 0; t < n_trials; ++t) {
      const std::vector<double> xc = row_copy(X, candidates[t]);
      candidate_potential[t] =
          blocked_sum(N, [&](std::size_t i) { return std::min(closest[i], row_dist_sq(X, i, xc.data())); });
      if (candidate_potential[t] < candidate_potential[best]) best = t;
    }
    const std::vector<double> xb = row_copy(X, candidates[best]);
    potential = blocked_sum(
        N, [&](std::size_t i) { return closest[i] = std::min(closest[i], row_dist_sq(X, i, xb.data())); },
        &block_sums);
    chosen.push_back(candidates[best]);
  }
  return chosen;
}

KMeansResult kmeans(DataView X, int K, std::uint64_t seed, int max_iter, double tol,
                    const std::function<bool()>& interrupted) {
  const std::size_t N = X.n_rows;
  const int D = static_cast<int>(X.n_cols);
  KMeansResult res;
  res.centers.resize(static_cast<std::size_t>(K) * D);
  const std::vector<std::size_t> seeds = kmeans_plusplus(X, K, seed, interrupted);
  for (int k = 0; k < K; ++k)
    for (int d = 0; d < D; ++d) res.centers[static_cast<std::size_t>(k) * D + d] = X.value(seeds[k], d);

  // scikit-learn scales tol by the mean variance of the features.
  double mean_var = 0.0;
  for (int d = 0; d < D; ++d) {
    double m = 0.0, v = 0.0;
    for (std::size_t i = 0; i < N; ++i) m += X.value(i, d);
    m /= static_cast<double>(N);
    for (std::size_t i = 0; i < N; ++i) v += (X.value(i, d) - m) * (X.value(i, d) - m);
    mean_var += v / static_cast<double>(N);
  }
  const double threshold = tol * mean_var / D;

  constexpr std::size_t kChunk = 8192;
  std::vector<int> labels(kChunk);
  std::vector<double> dists(kChunk);
  std::vector<double> sums(static_cast<std::size_t>(K) * D);
  std::vector<double> counts(K);
  for (res.n_iter = 1; res.n_iter <= max_iter; ++res.n_iter) {
    if (interrupted && interrupted()) throw Interrupted("the fit was interrupted during k-means");
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0.0);
    res.inertia = 0.0;
    for (std::size_t begin = 0; begin < N; begin += kChunk) {
      const std::size_t count = std::min(kChunk, N - begin);
#pragma omp parallel for schedule(static) if (worth_threads(count, K, D))
      for (std::ptrdiff_t b = 0; b < static_cast<std::ptrdiff_t>(count); ++b)
        labels[b] = visit_rows(X, [&](const auto* base) {
          return nearest_center(base + (begin + b) * X.n_cols, res.centers, K, D, &dists[b]);
        });
      for (std::size_t b = 0; b < count; ++b) {
        double* s = sums.data() + static_cast<std::size_t>(labels[b]) * D;
        for (int d = 0; d < D; ++d) s[d] += X.value(begin + b, d);
        counts[labels[b]] += 1.0;
        res.inertia += dists[b];
      }
    }
    double shift = 0.0;
    for (int k = 0; k < K; ++k) {
      if (counts[k] == 0.0) continue;  // empty cluster: keep its centre
      for (int d = 0; d < D; ++d) {
        double& c = res.centers[static_cast<std::size_t>(k) * D + d];
        const double next = sums[static_cast<std::size_t>(k) * D + d] / counts[k];
        shift += (next - c) * (next - c);
        c = next;
      }
    }
    if (shift <= threshold) break;
  }
  res.n_iter = std::min(res.n_iter, max_iter);
  return res;
}

}  // namespace cuem
