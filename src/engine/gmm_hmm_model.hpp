#pragma once
// The GMMHMM (include/cuem/gmm_hmm.hpp) as an engine model: the K x M components as one
// mixture on the primitives, under weights w_km / K. Their posteriors give per frame each
// component's normalised density; a state's sum over its components is its normalised
// emission b_tk (the chain's input, hmm_model.hpp), and gamma_tk times the component's
// share within the state is the component's weight in the same given-weights statistics
// pass. The M-step is hmmlearn 0.3's GMMHMM._do_mstep, its priors included.
#include <cstdint>
#include <string>
#include <vector>

#include "core/sufficient_stats.hpp"
#include "cuem/gmm_hmm.hpp"
#include "engine/hmm_chain.hpp"
#include "engine/hmm_model.hpp"
#include "engine/primitives.hpp"
#include "init/kmeans.hpp"

namespace cuem::engine {

/// The K x M components as one mixture (component k M + m; weights w_km / K; tied
/// states as full components holding their state's matrix), precision factors computed.
/// Throws NumericalError naming the component whose covariance is not positive definite.
Model gmm_hmm_components(const GmmHmmModel& m);

/// The model's start and transitions as the chain reads them (hmm_chain.hpp).
HmmModel gmm_hmm_chain(const GmmHmmModel& m);

/// The chain's emissions of the placed frames (b_tk = sum_m of the components'
/// posteriors, s_t their log scale) and, in `share` (N x K M), each component's share of
/// its state's density (0 where the state's density is 0).
void gmm_hmm_emissions(Primitives& prims, const GmmHmmModel& m, EmissionFrames& f, std::vector<double>& share);

struct GmmHmmStats {
  SufficientStats emission;  ///< over the K x M components, in the components' type
  std::vector<double> start;
  std::vector<double> trans;
  double log_likelihood = 0;
  double weight = 0;
  GmmHmmModel at;
};

/// The statistics as one vector of additive values (the emission sums about `at`'s
/// components' means, start, transitions, log-likelihood, frames) and back into statistics
/// of the same shape (GmmHmmEM::zero_stats): sums over processes (src/mpi/distributed_model.hpp).
std::vector<double> additive_parts(const GmmHmmStats& s);
void set_additive_parts(GmmHmmStats& s, const std::vector<double>& v);
/// Statistics of no frames under m (the shape of an E-step's under m).
GmmHmmStats gmm_hmm_zero_stats(const GmmHmmModel& m);

/// hmmlearn's GMMHMM M-step for the letters of o.params.
GmmHmmModel gmm_hmm_m_step(const GmmHmmStats& s, const GmmHmmOptions& o);

class GmmHmmEM {
 public:
  using Params = GmmHmmModel;
  using Stats = GmmHmmStats;

  GmmHmmEM(Primitives& prims, DataView X, const std::vector<std::size_t>& offsets, const GmmHmmOptions& o,
           KMeansShared& shared)
      : prims_(prims), X_(X), offsets_(offsets), o_(o), shared_(shared) {}

  GmmHmmModel initialize(std::uint64_t seed, std::vector<std::string>* notices);
  GmmHmmStats e_step(const GmmHmmModel& m);
  GmmHmmModel m_step(const GmmHmmStats& s) const { return gmm_hmm_m_step(s, o_); }
  double unit_roundoff() const noexcept { return prims_.unit_roundoff(); }
  /// Statistics of no frames under m: the shape that e_step's results have.
  GmmHmmStats zero_stats(const GmmHmmModel& m) const { return gmm_hmm_zero_stats(m); }

 private:
  Primitives& prims_;
  DataView X_;
  const std::vector<std::size_t>& offsets_;
  const GmmHmmOptions& o_;
  KMeansShared& shared_;
  EmissionFrames frames_;
  std::vector<double> share_;
  std::vector<ChainWork> chain_work_;
};

}  // namespace cuem::engine
