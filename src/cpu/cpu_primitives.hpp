#pragma once
// The float64 CPU reference primitives: OpenMP over points, bounded memory.
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "engine/primitives.hpp"

namespace cuem {

/// Fills the responsibilities (count x K, row-major) of points [begin, begin + count) and,
/// when log_prob is not null, their log p(x_n). accumulate_stats calls it concurrently,
/// from its OpenMP threads, on disjoint row ranges (a parallel region inside it runs on
/// one thread), so it must be safe to call that way and must not depend on the ranges.
using ResponsibilityFn =
    std::function<void(std::size_t begin, std::size_t count, double* resp, double* log_prob)>;

/// Accumulates statistics about `shift` with weights from `resp_fn`, chunk by chunk, in
/// one OpenMP parallel region. Each sum runs over the points in order, so the result is
/// bitwise the same for any number of threads. Memory: one chunk of responsibilities plus
/// K padded per-component scatters (O(K D^2)); never N x K.
/// `between_chunks` (may be empty) is called before every chunk on the calling thread,
/// e.g. to poll an interrupt; an exception from it or from resp_fn ends the pass and is
/// rethrown. With weights w every point's responsibilities are scaled by w_n and the
/// log-likelihood is sum_n w_n log p(x_n) over the points with w_n != 0; a point of zero
/// weight then adds nothing, as if it were not there.
SufficientStats accumulate_stats(DataView X, CovarianceType type, int K, std::vector<double> shift,
                                 const ResponsibilityFn& resp_fn, bool with_log_likelihood,
                                 const std::function<void()>& between_chunks = {}, WeightView w = {});

/// Whether a parallel region over `count` points of K components in D dimensions pays
/// for waking the threads; tiny problems run faster on one.
inline bool worth_threads(std::size_t count, int K, int D) noexcept {
  return count * static_cast<std::size_t>(K) * static_cast<std::size_t>(D) >= (std::size_t{1} << 15);
}

/// Points per chunk for K components: bounded work buffers whatever N is.
std::size_t chunk_points(int K) noexcept;

class CpuPrimitives final : public Primitives {
 public:
  /// The primitives over X with weights w (empty for none); both must outlive them.
  explicit CpuPrimitives(DataView X, WeightView w = {});

  std::size_t rows() const noexcept override { return X_.n_rows; }
  std::size_t cols() const noexcept override { return X_.n_cols; }
  bool weighted() const noexcept override { return !w_.empty(); }
  double total_weight() const noexcept override { return total_weight_; }
  WeightView weights() const noexcept override { return w_; }
  void copy_rows(std::size_t begin, std::size_t count, double* out) const override {
    for (std::size_t i = 0; i < count; ++i)
      for (std::size_t d = 0; d < X_.n_cols; ++d) out[i * X_.n_cols + d] = X_.value(begin + i, d);
  }

  SufficientStats gaussian_estep(const PreparedParams& params) override;
  void posteriors(const PreparedParams& params, std::size_t begin, std::size_t end, double* log_prob,
                  double* resp) override;
  SufficientStats weighted_stats(const Responsibilities& g, CovarianceType type, int K,
                                 const std::vector<double>& shift) override;
  SufficientStats weighted_stats_rows(const Responsibilities& g, CovarianceType type, int K,
                                      const std::vector<double>& shift, std::size_t begin, std::size_t end) override;
  bool stats_over_rows() const noexcept override { return true; }
  /// Zeros: the CPU sums in float64, where the first pass's shift does not matter.
  std::vector<double> first_pass_shift(const Responsibilities& g, int K) const override;

  // k-means (cpu_kmeans.cpp)
  std::unique_ptr<PointValues> make_point_values() override;
  double closest(PointValues& v, const double* c, ClosestMode mode) override;
  void closest_potentials(PointValues& v, const double* c, int n, double* potentials) override;
  double closest_keep(PointValues& v, const double* c_t, int t) override;
  std::size_t sample_point(const PointValues& v, double r) override;
  LloydStep lloyd_step(const std::vector<double>& centers, int K) override;
  void nearest_labels(const std::vector<double>& centers, int K, std::size_t begin, std::size_t count,
                      int* labels) override;
  double mean_feature_variance() override;

  const char* name() const noexcept override { return "cpu"; }

 private:
  DataView X_;
  WeightView w_;
  double total_weight_;
};

}  // namespace cuem
