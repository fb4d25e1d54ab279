// The CPU primitives' k-means operations (Primitives' k-means section): squared distances in
// float64, sums over fixed blocks of kBlock points so that their rounding does not depend
// on the thread count.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
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
  // The last closest_potentials call's distances, candidate t's at [t N, (t + 1) N), where
  // it kept them (n_kept of them; 0 for none).
  std::vector<double> trials;
  int n_kept = 0;
};

// closest_potentials keeps its distances when they take at most a quarter of the data's
// memory: then closest_keep reads one value a point instead of the point's row.
bool keep_trials(const DataView& X, int n) {
  const std::size_t row_bytes = X.n_cols * (X.data_f32 ? sizeof(float) : sizeof(double));
  return static_cast<std::size_t>(n) * sizeof(double) * 4 <= row_bytes;
}

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

// The one place the k-means++ sums are formed: the n sums of the N points, block by block
// of kBlock points in parallel, block_sum(lo, hi, scratch, out) writing the block's n sums
// (each added in point order) to out; sums[t] adds the blocks' in block order, so that no
// sum depends on the thread count or the schedule. scratch is the thread's own
// (scratch_size values). Returns the per-block sums (block b's at [b n, (b + 1) n)).
template <typename F>
std::vector<double> blocked_sums(std::size_t N, int n, std::size_t scratch_size, F block_sum, double* sums) {
  const std::size_t nb = n_blocks(N);
  const std::size_t nn = static_cast<std::size_t>(n);
  std::vector<double> partial(nb * nn);
#pragma omp parallel if (nb > 1)
  {
    std::vector<double> scratch(scratch_size);
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t b = 0; b < static_cast<std::ptrdiff_t>(nb); ++b) {
      const std::size_t lo = static_cast<std::size_t>(b) * kBlock;
      block_sum(lo, std::min(N, lo + kBlock), scratch.data(), partial.data() + static_cast<std::size_t>(b) * nn);
    }
  }
  for (std::size_t t = 0; t < nn; ++t) {
    double total = 0.0;
    for (std::size_t b = 0; b < nb; ++b) total += partial[b * nn + t];
    sums[t] = total;
  }
  return partial;
}

// The sum over points i in [lo, hi) of term(i, d[i - lo]), in order.
template <typename Term>
double block_terms(std::size_t lo, std::size_t hi, const double* d, Term term) {
  double s = 0.0;
  for (std::size_t i = lo; i < hi; ++i) s += term(i, d[i - lo]);
  return s;
}

// For the n centres c (n x D): sums[t] = sum over points i of term(i, ||x_i - c_t||^2),
// every block's rows read once for all n (cpu/kmeans_kernels.hpp). With `kept` (n x N)
// the distances stay there. Returns the per-block sums as blocked_sums does.
template <typename Term>
std::vector<double> blocked_dist_sums(const DataView& X, const double* c, int n, double* kept, Term term,
                                      double* sums) {
  const std::size_t N = X.n_rows;
  const int D = static_cast<int>(X.n_cols);
  const std::size_t stride = kept ? N : kBlock;
  return blocked_sums(
      N, n, kept ? 0 : kBlock * static_cast<std::size_t>(n),
      [&](std::size_t lo, std::size_t hi, double* scratch, double* out) {
        double* dist = kept ? kept + lo : scratch;
        visit_rows(X, [&](const auto* base) {
          cpu::dist_sq_rows_multi(base + lo * X.row_stride, X.row_stride, D, static_cast<int>(hi - lo), c, n, dist,
                                  stride);
        });
        for (int t = 0; t < n; ++t) out[t] = block_terms(lo, hi, dist + static_cast<std::size_t>(t) * stride, term);
      },
      sums);
}

// The terms of closest()'s modes for distance d to point i, times w_i where w is given:
// reset and update also set the point's value.
struct ClosestTerms {
  std::vector<double>& closest;
  const double* w;
  double weighted(std::size_t i, double v) const { return w ? w[i] * v : v; }
  auto reset() const {
    return [this](std::size_t i, double d) { return weighted(i, closest[i] = d); };
  }
  auto potential() const {
    return [this](std::size_t i, double d) { return weighted(i, std::min(closest[i], d)); };
  }
  auto update() const {
    return [this](std::size_t i, double d) { return weighted(i, closest[i] = std::min(closest[i], d)); };
  }
};

}  // namespace

void CpuPrimitives::closest_potentials(PointValues& values, const double* c, int n, double* potentials) {
  CpuPointValues& v = cpu_values(values);
  require_closest(v, X_.n_rows, "closest_potentials");
  v.n_kept = 0;
  if (n <= 0) return;
  const bool keep = keep_trials(X_, n);
  if (keep) v.trials.resize(static_cast<std::size_t>(n) * X_.n_rows);
  const ClosestTerms terms{v.closest, w_.empty() ? nullptr : w_.data};
  blocked_dist_sums(X_, c, n, keep ? v.trials.data() : nullptr, terms.potential(), potentials);
  if (keep) v.n_kept = n;
}

// closest(update) from candidate t's kept distances: the same terms, blocks and order.
double CpuPrimitives::closest_keep(PointValues& values, const double* c_t, int t) {
  CpuPointValues& v = cpu_values(values);
  if (t < 0 || t >= v.n_kept) return closest(v, c_t, ClosestMode::update);
  const double* d = v.trials.data() + static_cast<std::size_t>(t) * X_.n_rows;
  const ClosestTerms terms{v.closest, w_.empty() ? nullptr : w_.data};
  double total = 0.0;
  v.block_sums = blocked_sums(
      X_.n_rows, 1, 0,
      [&](std::size_t lo, std::size_t hi, double*, double* out) { *out = block_terms(lo, hi, d + lo, terms.update()); },
      &total);
  v.n_kept = 0;
  return total;
}

std::unique_ptr<PointValues> CpuPrimitives::make_point_values() { return std::make_unique<CpuPointValues>(); }

double CpuPrimitives::closest(PointValues& values, const double* c, ClosestMode mode) {
  CpuPointValues& v = cpu_values(values);
  const ClosestTerms terms{v.closest, w_.empty() ? nullptr : w_.data};
  double total = 0.0;
  switch (mode) {
    case ClosestMode::reset:
      v.closest.resize(X_.n_rows);
      v.block_sums = blocked_dist_sums(X_, c, 1, nullptr, terms.reset(), &total);
      return total;
    case ClosestMode::potential:
      require_closest(v, X_.n_rows, "closest(potential)");
      blocked_dist_sums(X_, c, 1, nullptr, terms.potential(), &total);
      return total;
    case ClosestMode::update:
      require_closest(v, X_.n_rows, "closest(update)");
      v.block_sums = blocked_dist_sums(X_, c, 1, nullptr, terms.update(), &total);
      return total;
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

// The population variance of each feature, averaged over the features (weighted by w
// where there are weights), in two passes: the means, then the squares about them. Each
// sums the rows in order within blocks of kBlock and the blocks' sums in block order, so
// that the result does not depend on the thread count; rows are read whole, blocks in
// parallel.
double CpuPrimitives::mean_feature_variance() {
  const std::size_t N = X_.n_rows;
  const std::size_t D = X_.n_cols;
  const std::size_t nb = n_blocks(N);
  const double* w = w_.empty() ? nullptr : w_.data;
  // Per feature d, the sum over rows of w_i (x_id - about_d), or of w_i (x_id - about_d)^2
  // with `square`, into out (D).
  const auto column_sums = [&](const std::vector<double>& about, bool square, std::vector<double>& out) {
    std::vector<double> partial(nb * D, 0.0);
#pragma omp parallel for schedule(dynamic, 1) if (nb > 1)
    for (std::ptrdiff_t b = 0; b < static_cast<std::ptrdiff_t>(nb); ++b) {
      double* acc = partial.data() + static_cast<std::size_t>(b) * D;
      const std::size_t lo = static_cast<std::size_t>(b) * kBlock;
      const std::size_t hi = std::min(N, lo + kBlock);
      visit_rows(X_, [&](const auto* base) {
        for (std::size_t i = lo; i < hi; ++i) {
          const auto* x = base + i * X_.row_stride;
          const double wi = w ? w[i] : 1.0;
          for (std::size_t d = 0; d < D; ++d) {
            const double v = static_cast<double>(x[d]) - about[d];
            acc[d] += wi * (square ? v * v : v);
          }
        }
      });
    }
    out.assign(D, 0.0);
    for (std::size_t b = 0; b < nb; ++b)
      for (std::size_t d = 0; d < D; ++d) out[d] += partial[b * D + d];
  };
  const double W = w ? total_weight_ : static_cast<double>(N);
  std::vector<double> mean;
  column_sums(std::vector<double>(D, 0.0), false, mean);
  for (double& m : mean) m /= W;
  std::vector<double> var;
  column_sums(mean, true, var);
  double mean_var = 0.0;
  for (std::size_t d = 0; d < D; ++d) mean_var += var[d] / W;
  return mean_var / static_cast<double>(D);
}

}  // namespace cuem
