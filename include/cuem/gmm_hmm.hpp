#pragma once
// Hidden Markov models with a Gaussian mixture of M components per state (hmmlearn 0.3's
// GMMHMM): Baum-Welch with hmmlearn's M-step and priors, score, posteriors and decoding.
// The emissions run on the engine's primitives as a mixture of K x M components
// (docs/HMM.md, "GMMHMM"); the chain is the GaussianHMM's.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/fit.hpp"
#include "cuem/hmm.hpp"
#include "cuem/options.hpp"

namespace cuem {

/// K states, M components a state, D features, in hmmlearn's layouts (row-major):
/// weights K x M (each row sums to 1), means K x M x D, covars per type: spherical K x M,
/// diag K x M x D, full K x M x D x D, tied K x D x D (one matrix per state, shared by
/// its components, as hmmlearn's GMMHMM ties them; not the GaussianHMM's tie).
struct GmmHmmModel {
  std::vector<double> startprob;
  std::vector<double> transmat;
  std::vector<double> weights;
  std::vector<double> means;
  std::vector<double> covars;
  int n_components = 0;
  int n_mix = 1;
  int n_features = 0;
  CovarianceType covariance_type = CovarianceType::diag;
};

/// hmmlearn's GMMHMM priors, each one value for every entry or one per entry in hmmlearn's
/// shapes (row-major). A single NaN for covars_prior or covars_weight takes hmmlearn's
/// defaults per type (which make the covariance update the plain weighted scatter, except
/// spherical's denominator D (N + 1) - M).
struct GmmHmmPriors {
  std::vector<double> startprob_prior{1.0};  ///< K
  std::vector<double> transmat_prior{1.0};   ///< K x K
  std::vector<double> weights_prior{1.0};    ///< K x M
  std::vector<double> means_prior{0.0};      ///< K x M x D
  std::vector<double> means_weight{0.0};     ///< K x M
  /// full K x M x D x D, tied K x D x D, diag K x M x D, spherical K x M
  std::vector<double> covars_prior{std::numeric_limits<double>::quiet_NaN()};
  /// full K x M, tied K, diag K x M x D, spherical K x M
  std::vector<double> covars_weight{std::numeric_limits<double>::quiet_NaN()};
};

/// The number of per-entry values of covars_prior and covars_weight for a type (hmmlearn's shapes).
std::size_t gmm_hmm_covars_prior_size(CovarianceType type, int K, int M, int D) noexcept;
std::size_t gmm_hmm_covars_weight_size(CovarianceType type, int K, int M, int D) noexcept;

struct GmmHmmOptions {
  int n_components = 1;
  int n_mix = 1;
  CovarianceType covariance_type = CovarianceType::diag;
  double min_covar = 1e-3;  ///< added to the diagonal of the data covariance that starts 'c'
  int n_iter = 10;
  double tol = 1e-2;  ///< on the mean log-likelihood per frame
  int n_init = 1;
  std::uint64_t seed = 0;
  /// Letters: 's' start, 't' transitions, 'm' means, 'c' covariances, 'w' mixture weights.
  std::string params = "stmcw";
  std::string init_params = "stmcw";
  GmmHmmPriors priors;
  GmmHmmModel init;  ///< the parameters whose letters init_params leaves out
  Device device;
  Precision precision = Precision::float32;
  int n_threads = 0;
  std::size_t device_memory_limit = 0;
  std::function<bool(const IterationInfo&)> on_iteration;
  std::function<bool()> interrupted;
};

struct GmmHmmFitResult {
  GmmHmmModel model;
  bool converged = false;
  int n_iter = 0;
  double lower_bound = 0;  ///< mean log-likelihood per frame of the best restart at its end
  int best_init = 0;
  std::vector<TracePoint> trace;
  int n_decreases = 0;
  double max_decrease = 0;
  std::vector<std::string> notices;
  std::string device;
};

/// Baum-Welch. The start for letters in init_params: 's', 't' and 'w' uniform; 'm' the
/// engine's k-means with K x M centres, state k taking centres kM .. kM + M - 1 (hmmlearn
/// runs k-means for the states, then within each state's frames); 'c' the frames'
/// covariance plus min_covar on the diagonal, for every component.
GmmHmmFitResult fit_gmm_hmm(DataView X, const std::vector<std::size_t>& lengths, const GmmHmmOptions& options);

/// Throws InvalidArgument (or NumericalError for a covariance that is not positive
/// definite) for a model that is not valid.
void validate_gmm_hmm(const GmmHmmModel& model);

/// As hmm_statistics (cuem/hmm.hpp) for a GMMHMM: the emission sums are over its K x M
/// components (about their means, in the components' layout: tied components hold full
/// sums), then the chain's parts.
std::vector<double> gmm_hmm_statistics(const GmmHmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                                       const HmmEvaluateOptions& where = {});
/// hmmlearn's GMMHMM M-step from such a sum with options' priors and `params`.
GmmHmmModel gmm_hmm_model_from_statistics(const GmmHmmModel& model, const std::vector<double>& statistics,
                                          const GmmHmmOptions& options);

double score_gmm_hmm(const GmmHmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                     const HmmEvaluateOptions& where = {});
HmmPosteriors posteriors_gmm_hmm(const GmmHmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                                 const HmmEvaluateOptions& where = {});
HmmDecoding decode_gmm_hmm(const GmmHmmModel& model, DataView X, const std::vector<std::size_t>& lengths,
                           const std::string& algorithm = "viterbi", const HmmEvaluateOptions& where = {});

/// One sequence of n frames (each frame's state, then its component by the state's
/// weights, then the component's Gaussian), deterministic for a seed.
HmmSamples sample_gmm_hmm(const GmmHmmModel& model, std::size_t n, std::uint64_t seed);

/// The free parameters as hmmlearn's GMMHMM counts them (its bic and aic): start K - 1,
/// transitions K (K - 1), means K M D, covariances per type, and M - 1 for the weights.
double n_parameters(const GmmHmmModel& model) noexcept;

}  // namespace cuem
