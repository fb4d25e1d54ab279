#pragma once
// Options of a fit. Defaults and meanings follow scikit-learn's GaussianMixture.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cuem/covariance_type.hpp"

namespace cuem {

/// How the responsibilities of the first iteration are made (scikit-learn's init_params).
enum class InitMethod {
  kmeans,            ///< Lloyd k-means from k-means++ seeds; hard labels
  kmeans_plusplus,   ///< k-means++ seeds only: one point per component
  random,            ///< uniform random responsibilities, normalised per point
  random_from_data,  ///< K distinct points drawn uniformly: one per component
};

const char* to_string(InitMethod method) noexcept;
/// "kmeans", "k-means++" (or "kmeans++"), "random", "random_from_data".
InitMethod parse_init_method(const std::string& name);

/// Which backend computes the E-step.
enum class DeviceKind { cpu, cuda, automatic };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;  ///< the CUDA device ordinal, for kind == cuda
};

/// "cpu", "cuda", "cuda:N" or "auto".
Device parse_device(const std::string& name);

/// Arithmetic of the CUDA E-step (statistics are always combined, and the M-step always
/// run, in float64). The CPU backend is the float64 reference and ignores this.
enum class Precision { float32, float64 };

const char* to_string(Precision precision) noexcept;
/// "float32" or "float64".
Precision parse_precision(const std::string& name);

/// What NaN entries in the data mean (scikit-learn has only the first).
enum class MissingPolicy {
  error,        ///< NaN is an error naming its row and column
  /// NaN entries are missing at random (MAR): a fit maximises the likelihood of the
  /// observed coordinates, and evaluations use each row's observed marginal (docs/MISSING.md)
  marginalize,
};

const char* to_string(MissingPolicy policy) noexcept;
/// "error" or "marginalize".
MissingPolicy parse_missing_policy(const std::string& name);

/// How EM's iterations are taken.
enum class Acceleration {
  none,     ///< plain EM: one E-step and one M-step per iteration
  /// SQUAREM (Varadhan and Roland 2008): two EM steps, an extrapolation along them with
  /// the S3 step length, kept only when its log-likelihood is no lower (then one EM
  /// step from it), else the plain step. Fewer E-steps where EM converges slowly (tight
  /// tol, overlapping components); no gain at the default tol. max_iter then bounds
  /// E-step passes, rejected extrapolations included; n_iter and the trace count the
  /// points kept.
  squarem,
};

const char* to_string(Acceleration acceleration) noexcept;
/// "none" or "squarem".
Acceleration parse_acceleration(const std::string& name);

/// How incremental EM's first pass over the blocks runs (docs/ONLINE.md).
enum class FirstPass {
  full,         ///< every block under the start, then one M-step
  /// an M-step after each block, on the statistics of the blocks seen so far: blocks
  /// should be alike (rows in random order)
  incremental,
};

const char* to_string(FirstPass first_pass) noexcept;
/// "full" or "incremental".
FirstPass parse_first_pass(const std::string& name);

/// Choices among CUDA kernels that compute the same values (up to rounding), for timing
/// them side by side (bench/NOTES.md); the defaults are the ones to use.
struct CudaTuning {
  /// The tiled kernels (log-densities of the diagonal and spherical layouts with K >= 8,
  /// their statistics with K >= 32 and D >= 32); false keeps the simpler ones everywhere.
  bool tiled = true;
  /// Components a thread of the tiled diagonal statistics takes where K > 32: 4 or 2.
  int diag_stats_components = 4;
};

/// What the iteration callback is told after each EM iteration.
struct IterationInfo {
  int init = 0;                   ///< which restart, 0-based
  int iteration = 0;              ///< 1-based, as n_iter
  double mean_log_likelihood = 0; ///< of the parameters before this iteration's M-step
  double change = 0;              ///< against the previous iteration (inf on the first)
  double seconds = 0;             ///< wall time of this iteration
};

struct FitOptions {
  int n_components = 1;
  CovarianceType covariance_type = CovarianceType::full;
  double tol = 1e-3;       ///< on |change| of the mean per-sample log-likelihood
  double reg_covar = 1e-6; ///< added to the diagonal of every covariance
  int max_iter = 100;
  int n_init = 1;
  InitMethod init = InitMethod::kmeans;
  std::uint64_t seed = 0;
  Device device;
  Precision precision = Precision::float32;
  /// Number of CPU threads; 0 means OpenMP's default. Results do not depend on it.
  int n_threads = 0;
  /// Bytes of device memory the CUDA backend may use (data, when it fits, plus work
  /// buffers); 0 means 80% of the device's free memory. Data that does not fit is
  /// streamed from pinned host memory in chunks; the result is the same either way.
  std::size_t device_memory_limit = 0;
  CudaTuning cuda_tuning;
  /// NaN entries: an error, or missing values fitted by their marginal (include/cuem/missing.hpp).
  MissingPolicy missing = MissingPolicy::error;
  Acceleration acceleration = Acceleration::none;
  /// Incremental EM (Neal and Hinton 1998; docs/ONLINE.md): the rows split into this many
  /// blocks: B of consecutive rows with the full first pass, interleaved tiles (tile t in block
  /// t mod B: src/engine/interleaved_blocks.hpp) with the incremental one; after the first pass each iteration re-estimates one
  /// block and runs the M-step. 1 is batch EM (bitwise). max_iter then counts passes over
  /// the data, and the trace has one entry per block step. Not with SQUAREM. With missing
  /// entries each block holds its own copy of its rows (the whole data's copy besides).
  int incremental_blocks = 1;
  /// Incremental EM's first pass (B > 1): full, or an M-step after each block from the ceil(B / 5)-th on (B trace
  /// entries, the last the first over every block); its blocks must be alike, as fit()'s interleaved blocks are.
  FirstPass first_pass = FirstPass::full;
  /// Incremental EM (B > 1): each restart stops after this many block steps, the trace's
  /// entries (a full first pass is one step, an incremental one B), with the parameters of
  /// its last M-step (the start while an incremental first pass has not begun its
  /// M-steps); 0: no limit, max_iter alone. A budget finer than a pass: where a part of the
  /// first pass already reaches the optimum's neighbourhood on large data, this stops
  /// there. The fit then reports no convergence.
  int max_block_steps = 0;
  /// Out of core (docs/ONLINE.md): > 0 reads the data in chunks of this many rows. Every
  /// pass (the validation of fit(DataView, ...), each E-step) runs the chunks in order and
  /// calls release_rows(end) after each chunk, `end` the row the pass has read up to, so
  /// that a caller that maps X from a file can drop the pages behind the reader; the start
  /// is made from the first chunk's rows alone (k-means on them). The fit is batch EM (its
  /// sums grouped by chunk). Not with incremental_blocks > 1. With missing entries each
  /// chunk's rows are regrouped (a copy of one chunk) for its E-step and dropped after it.
  std::size_t chunk_rows = 0;
  std::function<void(std::size_t)> release_rows;

  /// Optional initial parameters (scikit-learn's weights_init, means_init,
  /// precisions_init): empty means "derive from init". Shapes: weights K, means K x D,
  /// precisions as the covariance table in model.hpp (precision matrices, not factors).
  std::vector<double> weights_init;
  std::vector<double> means_init;
  std::vector<double> precisions_init;

  /// Called after every iteration; return false to stop the fit early (the result then
  /// holds the best model so far, with converged = false).
  std::function<bool(const IterationInfo&)> on_iteration;

  /// Polled often during a fit (between chunks of points, so within milliseconds); when
  /// it returns true the fit stops at once and throws cuem::Interrupted. Language
  /// bindings use it to honour Ctrl-C. Called from the thread that called fit.
  std::function<bool()> interrupted;
};

}  // namespace cuem
