// The CPU primitives' k-means operations (Primitives' k-means section): squared distances in
// float64, sums over fixed blocks of kBlock points so that their rounding does not depend
// on the thread count.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <numeric>
#include <string>

#include "core/data_access.hpp"
#include "cpu/cpu_primitives.hpp"
#include "cpu/kmeans_kernels.hpp"
#include "cuem/errors.hpp"

namespace cuem {
namespace {

constexpr std::size_t kBlock = 4096;

std::size_t n_blocks(std::size_t n) { return (n + kBlock - 1) / kBlock; }

// The caller's k-means++ values: the squared distance to the nearest seed so far, and
// their sums per block from the last reset or update.
struct CpuPointValues final : PointValues {
  std::vector<double> closest;     // N
  std::vector<double> block_sums;  // per kBlock points
};

// Values exist only after a reset (X has at least one row).
void require_closest(const CpuPointValues& v, std::size_t n, const char* what) {
  if (v.closest.size() != n || n == 0)
    throw InvalidArgument(std::string(what) + " needs the closest distances of a reset first");
}

CpuPointValues& cpu_values(PointValues& v) {
  auto* p = dynamic_cast<CpuPointValues*>(&v);
  if (!p) throw InvalidArgument("these point values belong to another backend");
  return *p;
}
const CpuPointValues& cpu_values(const PointValues& v) { return cpu_values(const_cast<PointValues&>(v)); }

// The sum of f(i, ||x_i - c||^2) over i in [0, n), block by block of kBlock points (each
// block's distances computed at once by the vector kernel, cpu/kmeans_kernels.hpp, then
// its terms added in order), the blocks' sums in block order; block_sums receives them.
template <typename F>
double blocked_dist_sum(const DataView& X, const double* c, F f, std::vector<double>* block_sums = nullptr) {
  const std::size_t n = X.n_rows;
  const std::size_t nb = n_blocks(n);
  const int D = static_cast<int>(X.n_cols);
  std::vector<double> partial(nb);
#pragma omp parallel if (nb > 1)
  {
    std::vector<double> dist(kBlock);
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t b = 0; b < static_cast<std::ptrdiff_t>(nb); ++b) {
      const std::size_t lo = static_cast<std::size_t>(b) * kBlock;
      const std::size_t hi = std::min(n, lo + kBlock);
      visit_rows(X, [&](const auto* base) {
        cpu::dist_sq_rows(base + lo * X.row_stride, X.row_stride, D, static_cast<int>(hi - lo), c, dist.data());
      });
      double s = 0.0;
      for (std::size_t i = lo; i < hi; ++i) s += f(i, dist[i - lo]);
      partial[b] = s;
    }
  }
  const double total = std::accumulate(partial.begin(), partial.end(), 0.0);
  if (block_sums) *block_sums = std::move(partial);
  return total;
}

}  // namespace


// closest() with weights: the values stay distances, the sums are of w_i v_i.
double CpuPrimitives::weighted_closest(PointValues& values, const double* c, ClosestMode mode) {
  CpuPointValues& v = cpu_values(values);
  const double* w = w_.data;
  switch (mode) {
    case ClosestMode::reset:
      v.closest.resize(X_.n_rows);
      return blocked_dist_sum(
          X_, c, [&](std::size_t i, double d) { return w[i] * (v.closest[i] = d); }, &v.block_sums);
    case ClosestMode::potential:
      require_closest(v, X_.n_rows, "closest(potential)");
      return blocked_dist_sum(X_, c, [&](std::size_t i, double d) { return w[i] * std::min(v.closest[i], d); });
    case ClosestMode::update:
      require_closest(v, X_.n_rows, "closest(update)");
      return blocked_dist_sum(
          X_, c, [&](std::size_t i, double d) { return w[i] * (v.closest[i] = std::min(v.closest[i], d)); },
          &v.block_sums);
  }
  throw InvalidArgument("unknown closest mode");
}

std::unique_ptr<PointValues> CpuPrimitives::make_point_values() { return std::make_unique<CpuPointValues>(); }

double CpuPrimitives::closest(PointValues& values, const double* c, ClosestMode mode) {
  CpuPointValues& v = cpu_values(values);
  if (!w_.empty()) return weighted_closest(v, c, mode);
  switch (mode) {
    case ClosestMode::reset:
      v.closest.resize(X_.n_rows);
      return blocked_dist_sum(
          X_, c, [&](std::size_t i, double d) { return v.closest[i] = d; }, &v.block_sums);
    case ClosestMode::potential:
      require_closest(v, X_.n_rows, "closest(potential)");
      return blocked_dist_sum(X_, c, [&](std::size_t i, double d) { return std::min(v.closest[i], d); });
    case ClosestMode::update:
      require_closest(v, X_.n_rows, "closest(update)");
      return blocked_dist_sum(
          X_, c, [&](std::size_t i, double d) { return v.closest[i] = std::min(v.closest[i], d); }, &v.block_sums);
  }
  throw InvalidArgument("unknown closest mode");
}

// numpy's searchsorted on the cumulative sum, following the block structure above.
std::size_t CpuPrimitives::sample_point(const PointValues& values, double r) {
  const CpuPointValues& v = cpu_values(values);
  require_closest(v, X_.n_rows, "sample_point");
  double prefix = 0.0;
  std::size_t b = 0;
  for (; b + 1 < v.block_sums.size(); ++b) {
    if (prefix + v.block_sums[b] > r) break;
    prefix += v.block_sums[b];
  }
  const std::size_t lo = b * kBlock;
  const std::size_t hi = std::min(v.closest.size(), lo + kBlock);
  double partial = 0.0;
  for (std::size_t i = lo; i < hi; ++i) {
    partial += w_.empty() ? v.closest[i] : w_.data[i] * v.closest[i];
    if (prefix + partial > r) return i;
  }
  return v.closest.size() - 1;
}

// One parallel region per step: each block of kBlock points is labelled and summed by one
// thread (blocks handed out dynamically, so a stalled thread holds up one block), and the
// blocks' sums are added in block order: the rounding depends on neither the thread count
// nor the schedule.
LloydStep CpuPrimitives::lloyd_step(const std::vector<double>& centers, int K) {
  const std::size_t N = X_.n_rows;
  const int D = static_cast<int>(X_.n_cols);
  const std::size_t KD = static_cast<std::size_t>(K) * D;
  const std::size_t values = KD + static_cast<std::size_t>(K) + 1;  // sums, counts, inertia
  const std::size_t nb = n_blocks(N);
  std::vector<double> partial(nb * values, 0.0);
  std::atomic<bool> stop{false};
  std::exception_ptr error;
#pragma omp parallel if (nb > 1 && worth_threads(N, K, D))
  {
    std::vector<int> labels(kBlock);
    std::vector<double> dists(kBlock);
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t b = 0; b < static_cast<std::ptrdiff_t>(nb); ++b) {
      if (stop.load(std::memory_order_relaxed)) continue;
      if (omp_get_thread_num() == 0) {  // the caller's thread: Python polls signals there
        try {
          poll_interrupt();
        } catch (...) {
#pragma omp critical(cuem_lloyd_error)
          if (!error) error = std::current_exception();
          stop.store(true, std::memory_order_relaxed);
          continue;
        }
      }
      double* sums = partial.data() + static_cast<std::size_t>(b) * values;
      double* counts = sums + KD;
      double& inertia = counts[K];
      const std::size_t lo = static_cast<std::size_t>(b) * kBlock;
      const std::size_t hi = std::min(N, lo + kBlock);
      visit_rows(X_, [&](const auto* base) {
        cpu::nearest_rows(base + lo * X_.row_stride, X_.row_stride, D, static_cast<int>(hi - lo), centers.data(), K,
                          labels.data(), dists.data());
        for (std::size_t i = lo; i < hi; ++i) {
          const auto* x = base + i * X_.row_stride;
          const double dist = dists[i - lo];
          const int label = labels[i - lo];
          double* s = sums + static_cast<std::size_t>(label) * D;
          if (w_.empty()) {
            for (int d = 0; d < D; ++d) s[d] += static_cast<double>(x[d]);
            counts[label] += 1.0;
            inertia += dist;
          } else {
            const double w = w_.data[i];
            for (int d = 0; d < D; ++d) s[d] += w * static_cast<double>(x[d]);
            counts[label] += w;
            inertia += w * dist;
          }
        }
      });
    }
  }
  if (error) std::rethrow_exception(error);
  std::vector<double> total(values, 0.0);
  for (std::size_t b = 0; b < nb; ++b)
    for (std::size_t v = 0; v < values; ++v) total[v] += partial[b * values + v];
  LloydStep out;
  out.counts.assign(total.begin() + static_cast<std::ptrdiff_t>(KD), total.begin() + static_cast<std::ptrdiff_t>(KD) + K);
  out.inertia = total[values - 1];
  out.centers = centers;
  for (int k = 0; k < K; ++k) {
    if (out.counts[k] == 0.0) continue;  // empty cluster: keep its centre
    for (int d = 0; d < D; ++d)
      out.centers[static_cast<std::size_t>(k) * D + d] = total[static_cast<std::size_t>(k) * D + d] / out.counts[k];
  }
  return out;
}

void CpuPrimitives::nearest_labels(const std::vector<double>& centers, int K, std::size_t begin,
                                   std::size_t count, int* labels) {
  const int D = static_cast<int>(X_.n_cols);
  const std::size_t nb = n_blocks(count);
#pragma omp parallel for schedule(static) if (nb > 1 && worth_threads(count, K, D))
  for (std::ptrdiff_t b = 0; b < static_cast<std::ptrdiff_t>(nb); ++b) {
    const std::size_t lo = static_cast<std::size_t>(b) * kBlock;
    const std::size_t hi = std::min(count, lo + kBlock);
    visit_rows(X_, [&](const auto* base) {
      cpu::nearest_rows(base + (begin + lo) * X_.row_stride, X_.row_stride, D, static_cast<int>(hi - lo),
                        centers.data(), K, labels + lo, nullptr);
    });
  }
}

// The population variance of each feature in two host passes (the mean, then the
// squares about it), averaged over the features; weighted by w where there are weights.
double CpuPrimitives::mean_feature_variance() {
  const std::size_t N = X_.n_rows;
  const int D = static_cast<int>(X_.n_cols);
  double mean_var = 0.0;
  if (!w_.empty()) {
    const double* w = w_.data;
    for (int d = 0; d < D; ++d) {
      double m = 0.0, v = 0.0;
      for (std::size_t i = 0; i < N; ++i) m += w[i] * X_.value(i, d);
      m /= total_weight_;
      for (std::size_t i = 0; i < N; ++i) v += w[i] * ((X_.value(i, d) - m) * (X_.value(i, d) - m));
      mean_var += v / total_weight_;
    }
    return mean_var / D;
  }
  for (int d = 0; d < D; ++d) {
    double m = 0.0, v = 0.0;
    for (std::size_t i = 0; i < N; ++i) m += X_.value(i, d);
    m /= static_cast<double>(N);
    for (std::size_t i = 0; i < N; ++i) v += (X_.value(i, d) - m) * (X_.value(i, d) - m);
    mean_var += v / static_cast<double>(N);
  }
  return mean_var / D;
}

}  // namespace cuem
