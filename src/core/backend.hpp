#pragma once
// The seam between the shared host code and the compute backends (DESIGN.md): given
// prepared parameters and the data, a backend produces additive sufficient statistics
// and per-point evaluations. Nothing above this header knows which backend runs.
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/prepared_params.hpp"
#include "core/sufficient_stats.hpp"
#include "cuem/data_view.hpp"
#include "cuem/options.hpp"

namespace cuem {

/// The result of one Lloyd assignment over all points.
struct LloydStep {
  std::vector<double> centers;  ///< K x D: the mean of each centre's points (an empty one stays put)
  std::vector<double> counts;   ///< K: points per centre
  double inertia = 0;           ///< sum of squared distances to the nearest centre
};

class Backend {
 public:
  virtual ~Backend() = default;

  /// One E-step over all points: statistics about params.means plus the log-likelihood.
  virtual SufficientStats estep(const PreparedParams& params) = 0;

  /// For points [begin, end): log p(x_n) into log_prob (may be null) and the
  /// responsibilities, row-major (end - begin) x K, into resp (may be null).
  virtual void evaluate(const PreparedParams& params, std::size_t begin, std::size_t end,
                        double* log_prob, double* resp) = 0;

  /// Tells the backend the shape of the fit to come, so that it can place the data and
  /// size its buffers once (the CUDA backend decides there what stays on the device).
  virtual void reserve(CovarianceType /*type*/, int /*K*/) {}

  // ---- k-means, for the initialisation (src/init/kmeans.cpp) ------------------------
  // The backend keeps one value per point, closest_i, the squared distance to the nearest
  // seed chosen so far. Sums run over fixed blocks of points in order, so they do not
  // depend on the thread count.

  /// closest_i = ||x_i - c||^2 for every point; returns sum_i closest_i.
  virtual double closest_reset(const double* c) = 0;
  /// sum_i min(closest_i, ||x_i - c||^2), leaving closest as it is.
  virtual double closest_potential(const double* c) = 0;
  /// closest_i = min(closest_i, ||x_i - c||^2); returns the new sum.
  virtual double closest_update(const double* c) = 0;
  /// The first index whose running sum of closest exceeds r (the last index if none).
  virtual std::size_t closest_sample(double r) = 0;
  /// One Lloyd step: every point to its nearest centre (the lowest index on ties).
  virtual LloydStep lloyd_step(const std::vector<double>& centers, int K) = 0;
  /// The nearest of K centres for points [begin, begin + count).
  virtual void nearest_labels(const std::vector<double>& centers, int K, std::size_t begin, std::size_t count,
                              int* labels) = 0;

  /// The k-means initialisation's starting statistics where the data live: every point
  /// to its nearest centre (as nearest_labels), each part's mean (zero for an empty part)
  /// from one pass, then the partition's statistics in `type`'s layout about those means
  /// from a second (log_likelihood 0). Returns false, doing nothing, where the backend leaves this to the
  /// host (the CPU backend: src/init/initialize.cpp does the same passes over labels).
  virtual bool partition_stats(const std::vector<double>& /*centers*/, int /*K*/, CovarianceType /*type*/,
                               SufficientStats* /*out*/) {
    return false;
  }

  /// The 'random' initialisation's starting statistics where the data live: every point's
  /// responsibilities drawn from rng stream kRandomResp as src/init/initialize.cpp draws
  /// them, the means from one pass, then the statistics in `type`'s layout about those
  /// means from a second (log_likelihood 0). Returns false, doing nothing, where the
  /// backend leaves this to the host (the CPU backend).
  virtual bool random_stats(std::uint64_t /*seed*/, int /*K*/, CovarianceType /*type*/, SufficientStats* /*out*/) {
    return false;
  }

  /// k-means' tolerance scale for these data (src/init/kmeans.cpp), kept once computed:
  /// the data do not change between restarts, and on a device the pass costs a workspace.
  std::optional<double> mean_feature_variance;

  virtual const char* name() const noexcept = 0;

  /// The unit roundoff of the E-step's arithmetic (2^-53 for float64, 2^-24 for
  /// float32): how far a log-likelihood may move by rounding alone.
  virtual double unit_roundoff() const noexcept { return 0x1p-53; }

  /// What runs the work, for reports: the device, precision and memory layout.
  virtual std::string description() const { return name(); }

  /// A check the backend polls between chunks of work; true aborts with Interrupted.
  void set_interrupt(std::function<bool()> check) { interrupted_ = std::move(check); }

 protected:
  /// Throws cuem::Interrupted when the interrupt check says so.
  void poll_interrupt() const;

 private:
  std::function<bool()> interrupted_;
};

/// How a fit's backend is chosen and sized (the relevant part of FitOptions).
struct BackendRequest {
  Device device;
  Precision precision = Precision::float32;
  std::size_t device_memory_limit = 0;  ///< bytes; 0 = most of the free device memory
};

/// The backend for a request; throws DeviceError when it cannot be had. For device
/// 'auto' without a usable GPU this is the CPU, and `notice` (when given) says so.
std::unique_ptr<Backend> make_backend(DataView X, const BackendRequest& request, std::string* notice = nullptr);

}  // namespace cuem
