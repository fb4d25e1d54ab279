#pragma once
// The Gaussian HMM as an engine model (src/engine/model.hpp): Baum-Welch under the batch
// driver. The E-step takes the emissions from the primitives of the placed frames (the
// Gaussians' posteriors under uniform weights: normalised emission probabilities and
// their log scale), runs forward-backward per sequence on the host in float64
// (hmm_chain.hpp), and hands the state posteriors back to the primitives as the weights of
// the emission statistics. The M-step is hmmlearn's GaussianHMM M-step with its priors.
#include <cstdint>
#include <string>
#include <vector>

#include "core/sufficient_stats.hpp"
#include "cuem/hmm.hpp"
#include "engine/hmm_chain.hpp"
#include "engine/missing_layout.hpp"
#include "engine/primitives.hpp"
#include "init/kmeans.hpp"

namespace cuem::engine {

/// Baum-Welch statistics, a monoid over sequences (merge). `at` is the model the E-step
/// ran under: the M-step keeps the parts that `params` leaves fixed from it.
struct HmmStats {
  SufficientStats emission;   ///< gamma-weighted, in the covariance type's layout
  std::vector<double> start;  ///< K: sum over sequences of gamma_0
  std::vector<double> trans;  ///< K x K: sum over sequences and t of xi_t
  double log_likelihood = 0;  ///< sum over sequences of log p(sequence)
  double weight = 0;          ///< frames
  HmmModel at;
  std::uint64_t serial = 0;  ///< which E-step `at` is from: a later E-step has a larger number

  /// Adds another part (other sequences). Parts taken under different models (incremental
  /// EM's blocks) keep the `at` of the later E-step: the current parameters, whose fixed
  /// parts the M-step keeps.
  void merge(const HmmStats& other);
};

/// The statistics as one vector of their additive values, for sums over processes
/// (src/mpi/distributed_model.hpp): the emission sums about `at`'s means, then start,
/// transitions, log-likelihood and frames. set_additive_parts writes such a vector into
/// statistics of the same shape (GaussianHmmEM::zero_stats).
std::vector<double> additive_parts(const HmmStats& s);
void set_additive_parts(HmmStats& s, const std::vector<double>& v);
/// The layout both HMM kinds' statistics share: the emission sums about `means`, then the
/// chain's parts (the GMMHMM's statistics use it with its components' means).
std::vector<double> chain_additive_parts(const SufficientStats& emission, const std::vector<double>& means,
                                         const std::vector<double>& start, const std::vector<double>& trans,
                                         double log_likelihood, double weight);
void set_chain_additive_parts(const std::vector<double>& v, SufficientStats& emission, std::vector<double>& start,
                              std::vector<double>& trans, double& log_likelihood, double& weight);
/// Statistics of no frames under m (the shape of an E-step's under m).
HmmStats hmm_zero_stats(const HmmModel& m);

/// Stepwise EM's update (stepwise_driver.hpp): s_t = (1 - rho) s_{t-1} + rho s_batch, each
/// per frame, then scaled to the frames seen so far (s.weight), so that the priors weigh
/// in the M-step as in a batch fit over those frames. `at` becomes the batch's.
void stepwise_update(HmmStats& s, double rho, const HmmStats& batch);

/// Q(s, theta) = E_q log p(x, z | theta) for the posteriors q behind s: the start, transition
/// and emission terms (incremental EM's free energy, incremental_driver.hpp).
double hmm_complete_log_likelihood(const HmmStats& s, const HmmModel& m);

/// log p(theta) under hmmlearn's priors, up to a constant, for the letters of `params`: the
/// density whose MAP hmm_m_step computes (Dirichlet start and transition rows; per state a
/// normal prior on the mean and an inverse-Wishart-like one on the covariance, as the
/// M-step's closed forms imply). The free energy of MAP EM is F + log p(theta).
double hmm_log_prior(const HmmModel& m, const HmmPriors& p, const std::string& params);

/// The chain's view of the frames under a model: b (T x K, each row normalised) and the
/// log scale s (T), with p(x_t | k) = b_tk exp(s_t) (hmm_chain.hpp).
struct EmissionFrames {
  std::vector<double> b;
  std::vector<double> s;
};
EmissionFrames emission_frames(Primitives& prims, const HmmModel& model);
/// The same into f, reusing its storage.
void emission_frames(Primitives& prims, const HmmModel& model, EmissionFrames& f);

/// Frames with missing entries (NaN, MissingPolicy::marginalize): their layout
/// (missing_layout.hpp: complete rows first, then the incomplete ones by pattern; frames
/// with nothing observed left out) and primitives over its complete rows (null when there
/// are none). n_frames counts every frame, the left-out ones included.
struct MissingFrames {
  const MissingLayout* layout = nullptr;
  Primitives* complete = nullptr;
  std::size_t n_frames = 0;
};
/// The emissions of such frames in frame order: complete frames from the primitives,
/// incomplete ones from the marginal densities of their observed entries
/// (incomplete_posteriors), and a frame with nothing observed p(x | k) = 1 for every k.
void emission_frames(const MissingFrames& frames, const HmmModel& model, EmissionFrames& f);
/// The emission statistics of such frames under the state posteriors gamma (frames x K):
/// the complete frames' from the primitives, the incomplete frames' expected statistics
/// (incomplete_weighted_stats), merged as the missing-data mixture merges them. Frames
/// with nothing observed add nothing (their emission is integrated out).
SufficientStats missing_emission_stats(const MissingFrames& frames, const HmmModel& model, const double* gamma);

/// log p(x_t | k) (N x K) for Viterbi: log b_tk + s_t, and where b_tk is 0 (the state's
/// density underflows against the frame's best, about 745 nats below it) the exact value
/// from the host frames X under `components` (M consecutive components a state, weights
/// w_km / K; a Gaussian HMM's emissions with M = 1). Frames with a NaN entry, and data in
/// device memory, keep -inf there.
std::vector<double> exact_log_emissions(const EmissionFrames& f, const Model& components, int M, DataView X);

/// Forward-backward over every sequence (offsets from sequence_offsets): gamma replaces
/// frames.b; start and trans (K and K x K, may be null) receive the sums; returns the
/// total log-likelihood. Sequences run in parallel over threads, their sums combined in a
/// fixed order of fixed blocks: the result does not depend on the thread count.
/// `workspace` (may be null) keeps the chain's scratch between calls.
double chain_pass(const HmmModel& model, const std::vector<std::size_t>& offsets, EmissionFrames& frames,
                  double* start, double* trans, std::vector<ChainWork>* workspace = nullptr);

/// The E-step's chain and emission statistics with the emissions and the chain a segment
/// of about segment_frames frames at a time (whole time blocks): memory O(segment x K +
/// segments x K) whatever the sequences' lengths. Start, transition sums and the
/// log-likelihood equal chain_pass's bitwise; the emission statistics are merged per
/// segment (the last first), so they equal the one-pass statistics to rounding.
double bounded_chain_stats(Primitives& prims, const HmmModel& model, const std::vector<std::size_t>& offsets,
                           std::size_t segment_frames, double* start, double* trans, SufficientStats& emission);

/// The frames' covariance (D x D, N - 1 in the denominator) plus min_covar on the
/// diagonal: hmmlearn's covariance start.
std::vector<double> frames_covariance(Primitives& prims, int D, double min_covar);

/// The segment length the E-step uses under o (0: the whole data at once).
std::size_t segment_frames_for(const HmmOptions& o, const Primitives& prims, int K);

/// hmmlearn's start and transition M-step (its BaseHMM's, Dirichlet priors from p) for the
/// letters 's' and 't' of params: startprob and transmat (holding the old values on entry)
/// from the start and transition counts; rows never left are kept.
void chain_m_step(const std::vector<double>& start, const std::vector<double>& trans, const HmmPriors& p,
                  const std::string& params, const std::vector<double>& old_startprob,
                  const std::vector<double>& old_transmat, std::vector<double>& startprob,
                  std::vector<double>& transmat);

/// The M-step of hmmlearn's GaussianHMM (MAP under its priors) for the letters of `params`.
/// States without weight keep their emission and transition row; `empty_states`, when
/// given, receives their indices.
HmmModel hmm_m_step(const HmmStats& s, const HmmOptions& o, std::vector<int>* empty_states = nullptr);

class GaussianHmmEM {
 public:
  using Params = HmmModel;
  using Stats = HmmStats;

  /// prims holds the placed frames X; offsets the sequence boundaries; all must outlive it.
  GaussianHmmEM(Primitives& prims, DataView X, const std::vector<std::size_t>& offsets, const HmmOptions& o,
                KMeansShared& shared)
      : prims_(prims), X_(X), offsets_(offsets), o_(o), shared_(shared) {}
  /// Frames with missing entries: prims and X are then the layout's filled copy (its
  /// missing entries hold column means), which the start reads; the E-step reads
  /// `missing` (which must outlive the model) and never the fill values.
  GaussianHmmEM(Primitives& filled, DataView filled_view, const MissingFrames& missing,
                const std::vector<std::size_t>& offsets, const HmmOptions& o, KMeansShared& shared)
      : prims_(filled), X_(filled_view), offsets_(offsets), o_(o), shared_(shared), missing_(&missing) {}

  HmmModel initialize(std::uint64_t seed, std::vector<std::string>* notices);
  HmmStats e_step(const HmmModel& m);
  HmmModel m_step(const HmmStats& s);
  /// Statistics of no frames under m: the shape that e_step's results have.
  HmmStats zero_stats(const HmmModel& m) const { return hmm_zero_stats(m); }
  double unit_roundoff() const noexcept { return prims_.unit_roundoff(); }
  /// Incremental EM's members (incremental_driver.hpp).
  double complete_log_likelihood(const HmmStats& s, const HmmModel& m) const {
    return hmm_complete_log_likelihood(s, m);
  }
  double log_prior(const HmmModel& m) const { return hmm_log_prior(m, o_.priors, o_.params); }

  /// States that went without weight in some M-step (handled as empty mixture
  /// components: their parameters kept), for the fit's notices.
  const std::vector<int>& empty_states() const noexcept { return empty_states_; }
  const HmmOptions& options() const noexcept { return o_; }

 private:
  Primitives& prims_;
  DataView X_;
  const std::vector<std::size_t>& offsets_;
  const HmmOptions& o_;
  KMeansShared& shared_;
  const MissingFrames* missing_ = nullptr;
  std::vector<int> empty_states_;
  EmissionFrames frames_;            // kept between E-steps: no per-iteration allocation
  std::vector<ChainWork> chain_work_;
};

/// The emissions model with covariances set, weights uniform and precision factors
/// computed; throws NumericalError naming the state whose covariance is not positive definite.
Model hmm_emissions(CovarianceType type, int K, int D, std::vector<double> means, std::vector<double> covariances);

}  // namespace cuem::engine
