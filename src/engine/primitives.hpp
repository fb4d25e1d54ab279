#pragma once
// The primitives of one device (DESIGN.md, "The EM engine"): what every model and driver
// asks of a backend, over data placed once. They keep no state between calls that a
// caller could observe: per-point values a caller carries between calls (k-means++'s
// distances) live in a PointValues the caller owns; responsibilities come from the
// caller (a Responsibilities source), never from a capability flag. Weights
// (sample_weight) are placed with the data and apply to every sum.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/prepared_params.hpp"
#include "core/sufficient_stats.hpp"
#include "cuem/data_view.hpp"
#include "cuem/options.hpp"

namespace cuem {

/// The result of one Lloyd assignment over all points (weighted where the data are).
struct LloydStep {
  std::vector<double> centers;  ///< K x D: the weighted mean of each centre's points (an empty one stays put)
  std::vector<double> counts;   ///< K: the weight of each centre's points (the count without weights)
  double inertia = 0;           ///< sum of w * squared distance to the nearest centre
};

/// Where the responsibilities g_nk of a statistics pass come from. Each backend forms
/// them in its own memory (the CPU per chunk on the host, CUDA in a device buffer).
struct Responsibilities {
  enum class Kind {
    nearest,     ///< one-hot: the nearest of K centres (the lowest index on ties), as nearest_labels
    random,      ///< uniform draws from rng stream kRandomResp, normalised per point (init 'random')
    posteriors,  ///< the posterior under prepared Gaussian parameters (the generic E-step)
    given,       ///< the caller's weights on the host, N x K row-major (an HMM's state posteriors)
  };
  Kind kind = Kind::nearest;
  const std::vector<double>* centers = nullptr;  ///< nearest: K x D
  std::uint64_t seed = 0;                        ///< random
  const PreparedParams* params = nullptr;        ///< posteriors
  const double* given = nullptr;                 ///< given: rows() x K, read during the call only

  static Responsibilities nearest_centre(const std::vector<double>& c) { return {Kind::nearest, &c, 0, nullptr}; }
  static Responsibilities random_draws(std::uint64_t s) { return {Kind::random, nullptr, s, nullptr}; }
  static Responsibilities posterior(const PreparedParams& p) { return {Kind::posteriors, nullptr, 0, &p}; }
  static Responsibilities given_weights(const double* g) { return {Kind::given, nullptr, 0, nullptr, g}; }
};

/// One value per point kept by a caller between primitive calls, in the backend's memory
/// (k-means++: the squared distance to the nearest seed so far, and its block sums).
class PointValues {
 public:
  virtual ~PointValues() = default;
};

/// How closest() treats the caller's PointValues.
enum class ClosestMode {
  reset,      ///< v_i = ||x_i - c||^2
  potential,  ///< leave v as it is; the sum is over min(v_i, ||x_i - c||^2)
  update,     ///< v_i = min(v_i, ||x_i - c||^2)
};

class Primitives {
 public:
  virtual ~Primitives() = default;

  // ---- the data -----------------------------------------------------------------------
  virtual std::size_t rows() const noexcept = 0;
  virtual std::size_t cols() const noexcept = 0;
  /// Whether per-point weights were placed with the data.
  virtual bool weighted() const noexcept = 0;
  /// sum_n w_n (N without weights): the mass every mean over points divides by.
  virtual double total_weight() const noexcept = 0;
  /// The weights placed with the data, as the caller gave them on the host (empty for
  /// none): the host-side protocols (the first k-means++ seed, relocation) read them.
  virtual WeightView weights() const noexcept = 0;
  /// Rows [begin, begin + count) as float64, packed (count x D), into out: the rows the
  /// host-side protocols read (k-means++ seeds, relocated points), wherever the data are.
  virtual void copy_rows(std::size_t begin, std::size_t count, double* out) const = 0;

  /// Tells the backend the shape of the work to come, so that it places the data and
  /// sizes its buffers once (the CUDA backend decides here what stays on the device).
  virtual void reserve(CovarianceType /*type*/, int /*K*/) {}

  // ---- Gaussian log-densities, normalisation, statistics -------------------------------

  /// The fast path of "posteriors, then weighted statistics": one pass over every point
  /// in a fixed order, statistics in params.type's layout about the backend's shift for
  /// params.means, log_likelihood = sum_n w_n log p(x_n), weight = total_weight().
  virtual SufficientStats gaussian_estep(const PreparedParams& params) = 0;
  /// gaussian_estep over rows [begin, end) only (weight: those rows' weight): an
  /// incremental block or out-of-core chunk of data placed once, with no primitives of
  /// its own. Where estep_over_rows() is false it throws Error.
  virtual SufficientStats gaussian_estep_rows(const PreparedParams& params, std::size_t begin, std::size_t end);
  virtual bool estep_over_rows() const noexcept { return false; }

  /// For points [begin, end): log p(x_n) into log_prob (may be null) and the
  /// responsibilities, row-major (end - begin) x K, into resp (may be null). Per point,
  /// unweighted.
  virtual void posteriors(const PreparedParams& params, std::size_t begin, std::size_t end, double* log_prob,
                          double* resp) = 0;

  /// Statistics in `type`'s layout of K parts with responsibilities from `g` times the
  /// point weights, about `shift` (K x D) or about the backend's own rounding of it (the
  /// result's shift says which); log_likelihood 0.
  virtual SufficientStats weighted_stats(const Responsibilities& g, CovarianceType type, int K,
                                         const std::vector<double>& shift) = 0;

  /// weighted_stats over rows [begin, end) only, `g` of kind given holding those rows'
  /// (end - begin) x K weights: statistics of a long sequence a time segment at a time
  /// (the HMM's bounded-memory E-step). Where stats_over_rows() is false it throws Error.
  virtual SufficientStats weighted_stats_rows(const Responsibilities& g, CovarianceType type, int K,
                                              const std::vector<double>& shift, std::size_t begin, std::size_t end);
  virtual bool stats_over_rows() const noexcept { return false; }
  /// The CUDA device this backend runs on, -1 for none: where work beyond the primitives
  /// (the HMM chain, src/engine/hmm_device_chain.hpp) may run beside them.
  virtual int cuda_device() const noexcept { return -1; }

  /// The shift a first statistics pass should take for `g` when the means are not yet
  /// known (two_pass_stats): where this backend's sums cancel least.
  virtual std::vector<double> first_pass_shift(const Responsibilities& g, int K) const = 0;
  /// The layout a first statistics pass should take (it needs only N_k and S1, which
  /// lead every layout) on the way to statistics in `type`'s: the smallest, diag, by
  /// default; a backend whose buffers are sized per layout keeps `type`'s.
  virtual CovarianceType first_pass_layout(CovarianceType /*type*/) const { return CovarianceType::diag; }

  // ---- k-means (src/init/kmeans.cpp) -----------------------------------------------------
  // Sums run over fixed blocks of points in order, so they do not depend on the thread count.

  /// Storage for one value per point, for closest() and sample_point().
  virtual std::unique_ptr<PointValues> make_point_values() = 0;
  /// Updates `v` as `mode` says and returns sum_n w_n v'_n (v' the values the mode
  /// leaves, or would leave for `potential`).
  virtual double closest(PointValues& v, const double* c, ClosestMode mode) = 0;
  /// closest(v, c_t, potential) for n candidate centres c_t (rows of c, n x D) at once,
  /// into potentials[t], each equal bit for bit to its own closest() call: k-means++'s
  /// trials, in one pass over the data where the backend can (the default calls closest()
  /// n times).
  virtual void closest_potentials(PointValues& v, const double* c, int n, double* potentials);
  /// After closest_potentials: closest(v, c_t, update) for its candidate t (c_t that
  /// call's row t), from the distances it kept where it kept them.
  virtual double closest_keep(PointValues& v, const double* c_t, int t);
  /// The first index whose running sum of w_n v_n exceeds r (the last index if none),
  /// from v's last reset or update.
  virtual std::size_t sample_point(const PointValues& v, double r) = 0;
  /// One Lloyd step: every point to its nearest centre (the lowest index on ties).
  virtual LloydStep lloyd_step(const std::vector<double>& centers, int K) = 0;
  /// The nearest of K centres for points [begin, begin + count).
  virtual void nearest_labels(const std::vector<double>& centers, int K, std::size_t begin, std::size_t count,
                              int* labels) = 0;
  /// The variance of each feature about its (weighted) mean, averaged over the features.
  virtual double mean_feature_variance() = 0;

  // ---- descriptors ---------------------------------------------------------------------
  virtual const char* name() const noexcept = 0;
  /// The unit roundoff of the log-density arithmetic (2^-53 for float64, 2^-24 for float32).
  virtual double unit_roundoff() const noexcept { return 0x1p-53; }
  /// What runs the work, for reports: the device, precision and memory layout.
  virtual std::string description() const { return name(); }

  /// A check polled between chunks of work; true aborts with cuem::Interrupted.
  void set_interrupt(std::function<bool()> check) { interrupted_ = std::move(check); }

 protected:
  /// Throws cuem::Interrupted when the interrupt check says so.
  void poll_interrupt() const;

 private:
  std::function<bool()> interrupted_;
};

/// How a fit's primitives are chosen and sized (the relevant part of FitOptions).
struct PrimitivesRequest {
  Device device;
  Precision precision = Precision::float32;
  std::size_t device_memory_limit = 0;  ///< bytes; 0 = most of the free device memory
  CudaTuning cuda_tuning;
};

namespace cuda {
class DeviceContext;  // a CUDA device's streams and memory pool (src/core/cuda_primitives.hpp)
}

/// The primitives for data X (and weights w, null for none; both must outlive them);
/// throws DeviceError when the device cannot be had. For device 'auto' without a usable
/// GPU this is the CPU, and `notice` (when given) says so. `cuda_context`, when given,
/// is where CUDA primitives find their device context (a Resources' own), made there at
/// the first CUDA primitives; without it they make one for themselves alone. CPU
/// primitives leave it as it is.
std::unique_ptr<Primitives> make_primitives(DataView X, WeightView w, const PrimitivesRequest& request,
                                            std::string* notice = nullptr,
                                            std::shared_ptr<cuda::DeviceContext>* cuda_context = nullptr);

/// The two-pass statistics of a responsibility source: the means first (from a pass
/// about first_pass_shift; a part with no weight gets mean 0), then the statistics in
/// `type`'s layout about those means (log_likelihood 0). Written once for every backend
/// (src/engine/two_pass.cpp).
SufficientStats two_pass_stats(Primitives& prims, const Responsibilities& g, CovarianceType type, int K);

}  // namespace cuem
