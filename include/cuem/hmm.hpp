#pragma once
// Gaussian hidden Markov models: Baum-Welch fits, forward-backward posteriors, Viterbi
// decoding and sampling (docs/HMM.md). Names, defaults and estimates follow hmmlearn's
// GaussianHMM (0.3). The data are T x D frames of one or more sequences laid end to end;
// `lengths` gives each sequence's frame count in order (empty: one sequence of all rows).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/fit.hpp"
#include "cuem/model.hpp"
#include "cuem/online.hpp"
#include "cuem/options.hpp"

namespace cuem {

/// A Gaussian HMM of K states. The emissions are a Gaussian per state in `emissions`
/// (its means, covariances and precision factors in the layout of include/cuem/model.hpp;
/// its weights are unused and kept uniform).
struct HmmModel {
  std::vector<double> startprob;  ///< K, sums to 1
  std::vector<double> transmat;   ///< K x K row-major, every row sums to 1
  Model emissions;

  int n_components() const noexcept { return emissions.n_components; }
  int n_features() const noexcept { return emissions.n_features; }
  CovarianceType covariance_type() const noexcept { return emissions.covariance_type; }
};

/// hmmlearn's conjugate priors of a GaussianHMM. Each array holds one value (used for
/// every entry) or one per entry: startprob_prior K, transmat_prior K x K, means_prior
/// K x D, means_weight K, covars_prior the covariance layout (spherical: K x D, the
/// per-feature terms before their mean, as hmmlearn adds it). covars_weight is a scalar.
struct HmmPriors {
  std::vector<double> startprob_prior{1.0};
  std::vector<double> transmat_prior{1.0};
  std::vector<double> means_prior{0.0};
  std::vector<double> means_weight{0.0};
  std::vector<double> covars_prior{1e-2};
  double covars_weight = 1.0;
};

struct HmmOptions {
  int n_components = 1;
  CovarianceType covariance_type = CovarianceType::diag;
  double min_covar = 1e-3;  ///< added to the diagonal of the data covariance that starts 'c'
  int n_iter = 10;          ///< Baum-Welch iterations at most
  /// On |change| of the mean log-likelihood per frame (hmmlearn's tol is on the total:
  /// divide it by the number of frames).
  double tol = 1e-2;
  int n_init = 1;
  std::uint64_t seed = 0;
  /// Letters of the parameters updated ('s' start, 't' transitions, 'm' means, 'c'
  /// covariances) and of those initialised from the data (those not named there come
  /// from the *_init arrays below, which must then be given).
  std::string params = "stmc";
  std::string init_params = "stmc";
  HmmPriors priors;
  std::vector<double> startprob_init;  ///< K
  std::vector<double> transmat_init;   ///< K x K
  std::vector<double> means_init;      ///< K x D
  std::vector<double> covars_init;     ///< the covariance layout of include/cuem/model.hpp
  Device device;
  Precision precision = Precision::float32;
  int n_threads = 0;  ///< CPU threads; 0 means OpenMP's default. Results do not depend on it.
  std::size_t device_memory_limit = 0;
  std::function<bool(const IterationInfo&)> on_iteration;
  std::function<bool()> interrupted;
  /// Acceleration::squarem extrapolates Baum-Welch's iterations (SQUAREM, as for the
  /// Gaussian mixture; src/engine/hmm_parameter_map.hpp); n_iter then bounds E-step passes.
  Acceleration acceleration = Acceleration::none;
  /// Incremental EM (Neal and Hinton; docs/ONLINE.md) over this many blocks of whole
  /// sequences (consecutive sequences of about equal frame counts: a block never cuts a
  /// sequence, so there must be at least as many sequences); 1: Baum-Welch. n_iter then
  /// counts passes, and the trace has one entry per block step. Not with SQUAREM nor with
  /// missing entries.
  int incremental_blocks = 1;
  /// Incremental EM: each restart ends after this many block steps (the trace's rows; the
  /// first pass, which is full, counts as one), with the parameters of its last M-step; a
  /// budget finer than n_iter's passes. 0: no limit. Needs incremental_blocks > 1.
  int max_block_steps = 0;
  /// Bounded memory (docs/HMM.md): the E-step takes the emissions and the chain a segment
  /// of about this many frames at a time (a forward pass keeping one vector per segment,
  /// the segment recomputed beside the backward pass), so that no T x K array is kept. 0:
  /// automatic, segments where the whole-data arrays would pass kBoundedChainBytes on a
  /// backend that has the statistics over a row range (the CPU); SIZE_MAX: never.
  std::size_t segment_frames = 0;
  /// NaN entries: an error, or missing at random (docs/HMM.md): a frame's emission is the
  /// marginal density of its observed entries, Baum-Welch takes the incomplete frames'
  /// expected statistics, and a frame with nothing observed has emission 1 in every state
  /// (the chain passes through it). A column never observed is a DataError. Data with
  /// missing entries take the whole-data E-step (segment_frames is not used).
  MissingPolicy missing = MissingPolicy::error;
};

/// The size of the E-step's whole-data arrays above which segment_frames = 0 segments.
inline constexpr std::size_t kBoundedChainBytes = std::size_t{1} << 30;

struct HmmFitResult {
  HmmModel model;
  bool converged = false;
  int n_iter = 0;
  double lower_bound = 0;  ///< mean log-likelihood per frame of the best restart at its end
  int best_init = 0;
  std::vector<TracePoint> trace;  ///< mean log-likelihood per frame, every iteration of every restart
  int n_decreases = 0;
  double max_decrease = 0;
  /// Baum-Welch's linear rate near the end (FitResult::convergence_rate), NaN where too
  /// few steps stood above rounding.
  double convergence_rate = std::numeric_limits<double>::quiet_NaN();
  int n_estep_passes = 0;  ///< forward-backward passes over all restarts (SQUAREM's rejected ones included)
  std::string device;
  std::vector<std::string> notices;
};

/// Baum-Welch (EM) from a k-means start on the frames. Throws InvalidArgument (options,
/// lengths, user parameters), DataError or NumericalError with what to change.
HmmFitResult fit_hmm(DataView X, const std::vector<std::size_t>& lengths, const HmmOptions& options);

/// Where a fitted HMM is evaluated (the float64 CPU by default).
using HmmEvaluateOptions = EvaluateOptions;

/// Total log-likelihood log p(X) over all sequences.
double score_hmm(const HmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                 const HmmEvaluateOptions& where = {});

struct HmmPosteriors {
  double log_likelihood = 0;       ///< total over the sequences
  std::vector<double> posteriors;  ///< T x K: p(z_t = k | its sequence)
};
HmmPosteriors posteriors_hmm(const HmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                             const HmmEvaluateOptions& where = {});

struct HmmDecoding {
  double log_probability = 0;  ///< viterbi: log p(X, best path); map: the total log-likelihood
  std::vector<int> states;     ///< T
};
/// The most likely state sequence (algorithm "viterbi") or the most likely state per
/// frame ("map").
HmmDecoding decode_hmm(const HmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                       const std::string& algorithm = "viterbi", const HmmEvaluateOptions& where = {});

struct HmmSamples {
  std::vector<double> X;    ///< n x D
  std::vector<int> states;  ///< n
};
/// One sequence of n frames, deterministic for a seed.
HmmSamples sample_hmm(const HmmModel& model, std::size_t n, std::uint64_t seed);

/// Free parameters as hmmlearn counts them (for bic and aic).
double n_parameters(const HmmModel& model) noexcept;

/// Baum-Welch's E-step over whole sequences as one vector of additive values, for a driver
/// of one's own (cuem.dask.GaussianHMM sums them over a cluster): the vectors of disjoint
/// sets of sequences, taken under the same model, sum to their union's. With K states, D
/// features and the model's covariance type: the states' emission sums about the model's
/// means under the state posteriors gamma, N_k (K), S1 (K x D), S2 (the type's layout, as
/// MixtureStatistics'), their log-likelihood slot, frames, weight; then the start counts
/// (K), transition counts (K x K), the log-likelihood sum_seq log p(seq), and frames.
/// Complete frames (no NaN).
std::vector<double> hmm_statistics(const HmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                                   const HmmEvaluateOptions& where = {});
/// The M-step from such a sum (hmmlearn's, with options' priors and `params` letters; its
/// other fields are not read): the model that follows `model`. InvalidArgument for a
/// vector of another length.
HmmModel hmm_model_from_statistics(const HmmModel& model, const std::vector<double>& statistics,
                                   const HmmOptions& options);

/// Stepwise (online) EM for a Gaussian HMM (docs/HMM.md, "Online and incremental"): each
/// partial_fit is one step on a batch of whole sequences, s <- (1 - rho_t) s + rho_t s_batch
/// per frame (stepwise_driver.hpp), the running statistics scaled to the frames seen so far
/// so that the priors weigh as in a batch fit over them, then the M-step. The first call
/// initialises from its batch as fit_hmm does (init_params, seed, the *_init arrays). Of the
/// options, n_iter, tol, n_init, acceleration, incremental_blocks and segment_frames do not
/// apply; frames with missing entries are refused.
class OnlineGaussianHmm {
 public:
  /// Throws InvalidArgument for a learning_decay outside (0.5, 1] or a bad learning_offset.
  explicit OnlineGaussianHmm(const HmmOptions& options, const OnlineOptions& online = {});
  ~OnlineGaussianHmm();
  OnlineGaussianHmm(OnlineGaussianHmm&&) noexcept;
  OnlineGaussianHmm& operator=(OnlineGaussianHmm&&) noexcept;
  OnlineGaussianHmm(const OnlineGaussianHmm&) = delete;
  OnlineGaussianHmm& operator=(const OnlineGaussianHmm&) = delete;

  /// One step on the batch X of sequences (lengths as fit_hmm's). Returns the batch's mean
  /// log-likelihood per frame under the model before the step. Throws DataError for an
  /// empty batch or one whose column count differs from the first batch's, and what
  /// fit_hmm throws for bad lengths or values; the state is then unchanged.
  double partial_fit(DataView X, const std::vector<std::size_t>& lengths);

  bool initialized() const noexcept;
  /// The current model (empty before the first partial_fit).
  const HmmModel& model() const noexcept;
  std::int64_t n_steps() const noexcept;
  /// Frames over all steps.
  double n_frames_seen() const noexcept;
  std::string device() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Checks a model's shapes, that startprob and every transition row sum to 1 (within
/// 1e-8 relative, hmmlearn's rule) and that the covariances are positive definite.
void validate_hmm(const HmmModel& model);

}  // namespace cuem
