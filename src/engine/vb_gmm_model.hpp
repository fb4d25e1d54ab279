#pragma once
// The variational Bayesian Gaussian mixture as an engine model (src/engine/model.hpp).
//
// E-step. Under q(mu_k, Lambda_k) = N(mu_k | m_k, (beta_k Lambda_k)^-1) W(Lambda_k | W_k, nu_k)
// and q(pi), the log of each point's unnormalised responsibility is (Bishop 10.46, 10.64-10.66)
//   ln rho_nk = E[ln pi_k] + 1/2 E[ln|Lambda_k|] - D/2 ln 2pi - D / (2 beta_k)
//               - nu_k / 2 (x_n - m_k)^T W_k (x_n - m_k),
//   E[ln|Lambda_k|] = sum_{i<D} digamma((nu_k - i) / 2) + D ln 2 + ln|W_k|.
// That is a Gaussian log joint with precision factor L_k = sqrt(nu_k) chol(W_k) (scikit-learn's
// precisions_cholesky_, the factor of nu_k W_k = covariances_^-1) and, since
// ln|L_k| = D/2 ln nu_k + 1/2 ln|W_k|, the per-component constant
//   log_weight_k = E[ln pi_k] - D/2 ln nu_k + 1/2 (sum_i digamma((nu_k - i)/2) + D ln 2) - D / (2 beta_k),
// so the engine's Gaussian E-step (Primitives::gaussian_estep) computes it on any device,
// with sample weights, and returns N_k, S1, S2 and sum_n w_n log sum_k rho_nk.
//
// M-step: the Normal-Wishart (and Dirichlet or Beta) update from those statistics, on the
// host in float64, term by term as scikit-learn's (including its reg_covar in the
// component scatter and its normalised covariances_ = W_k^-1 / nu_k).
//
// The bound. scikit-learn evaluates its lower_bound_ after the M-step, with the E-step's
// log_resp and the new parameters:
//   L = -sum_nk r_nk ln r_nk - sum_k lnB(W_k, nu_k) - ln C(alpha) - D/2 sum_k ln beta_k
// (lnB, ln C: its _log_wishart_norm and Dirichlet/Beta normalisers; constant terms dropped).
// The entropy term comes from the E-step's statistics: with r_nk = rho_nk / sum_j rho_nj,
//   sum_n w_n log sum_k rho_nk = sum_nk w_n r_nk ln rho_nk - sum_nk w_n r_nk ln r_nk,
// and sum_nk w_n r_nk ln rho_nk = sum_k [N_k (log_weight_k + ln|L_k| - D/2 ln 2pi)
// - 1/2 tr(L_k L_k^T S2_k)] with S2_k taken about m_k (the statistics re-centred to the
// E-step's means, exactly). So -sum r ln r = log_likelihood - sum r ln rho, and the
// bound after the M-step equals scikit-learn's to rounding.
//
// The batch driver (batch_driver.hpp) takes an iteration's bound from its E-step's Stats,
// before the M-step, while scikit-learn's needs the M-step's parameters. So e_step here
// runs the E-step pass, then the M-step on its statistics, then the bound, and returns all
// three in VbStats (log_likelihood = the bound, weight = 1: the driver's "mean
// log-likelihood" is then the whole bound, and its tol applies to the bound's change, as
// scikit-learn's does); m_step hands the posterior over. The driver's restarts, trace,
// monotonicity watch, convergence test and callback then apply unchanged.
#include <cstdint>
#include <string>
#include <vector>

#include "core/prepared_params.hpp"
#include "core/sufficient_stats.hpp"
#include "cuem/bayesian.hpp"
#include "engine/primitives.hpp"
#include "init/kmeans.hpp"

namespace cuem::engine {

/// psi(x) for x > 0, to about 1e-15 relative (recurrence up to x >= 10, then the
/// asymptotic series).
double digamma(double x);

/// The E-step's Gaussian parameters of a posterior (see above).
PreparedParams vb_prepare(const BayesianPosterior& q);

/// The variational M-step from statistics in `prior`'s covariance layout (about any shift).
BayesianPosterior vb_m_step(const SufficientStats& s, const BayesianPrior& prior, CovarianceType type,
                            double reg_covar);

/// The part of the bound that depends on the posterior alone:
/// -sum_k lnB(W_k, nu_k) - ln C(alpha) - D/2 sum_k ln beta_k (scikit-learn's terms).
double vb_parameter_bound(const BayesianPosterior& q);

/// sum_nk w_n r_nk ln rho_nk from the E-step's statistics `s` under the parameters `p` it
/// ran with (see above).
double vb_expected_log_joint(const SufficientStats& s, const PreparedParams& p);

/// The priors with scikit-learn's defaults filled in from the data on `prims` (the
/// weighted mean and covariance, ddof 1); checks the given ones (InvalidArgument with
/// scikit-learn's conditions).
BayesianPrior resolve_prior(Primitives& prims, const BayesianOptions& o);

/// Checks what fit_bayesian adds to validate_options: the priors' ranges and shapes
/// (not the ones filled in from the data), resp_init, warm_start.
void validate_bayesian_options(const BayesianOptions& o, DataView X);

/// Statistics of given responsibilities (N x K) on host data, in float64, two passes.
SufficientStats stats_of_responsibilities(DataView X, WeightView w, const std::vector<double>& resp,
                                          CovarianceType type, int K);

struct VbStats {
  SufficientStats stats;      ///< the E-step's
  BayesianPosterior next;     ///< the M-step's result from them
  double log_likelihood = 0;  ///< the lower bound after that M-step (see above)
  double weight = 1;          ///< 1, so that the driver's bound is the whole bound
  bool model_changed = false; ///< `next` has fewer components than `stats` (pruned)
};

/// The statistics of the components `keep` (ascending) alone. Tied: the scatter is summed
/// over components and stays whole (the removed ones hold a share below the threshold;
/// from the next E-step on the statistics are the smaller model's).
SufficientStats keep_components(const SufficientStats& s, const std::vector<int>& keep);

class VariationalGaussianMixture {
 public:
  using Params = BayesianPosterior;
  using Stats = VbStats;

  /// X, o, prior, w and shared must outlive the model; prims holds the placed data.
  VariationalGaussianMixture(Primitives& prims, DataView X, WeightView w, const BayesianOptions& o,
                             const BayesianPrior& prior, KMeansShared& shared)
      : prims_(prims), X_(X), w_(w), o_(o), prior_(prior), shared_(shared) {}

  /// scikit-learn's start: responsibilities from the init method (or resp_init), their
  /// statistics, one M-step; or the warm-start posterior.
  BayesianPosterior initialize(std::uint64_t seed, std::vector<std::string>* notices);
  VbStats e_step(const BayesianPosterior& q);
  BayesianPosterior m_step(const VbStats& s) const { return s.next; }
  double unit_roundoff() const noexcept { return prims_.unit_roundoff(); }

  /// What pruning did in restart `init` (0-based): the kept components' original indices
  /// and the removals.
  const std::vector<int>& kept_components(int init) const { return restarts_.at(init).kept; }
  const std::vector<PruneEvent>& prunes(int init) const { return restarts_.at(init).prunes; }

 private:
  // Pruning (BayesianOptions::prune_threshold). Pruning decides on the E-step's data
  // shares N_k / sum_j N_j rather than the expected weights: these carry the prior's
  // pseudo-counts (gamma per component, and for the Dirichlet process the sticks' order),
  // so whether an empty component fell below a threshold would depend on gamma and its
  // place; the share says how much of the data it explains, as the CLI's rule does.
  // A removed component's statistics are dropped and the M-step is re-run on the others'
  // (keep_components): for the Dirichlet process that re-derives every remaining stick
  // from the remaining N_j (beta_k = gamma + sum_{j > k, kept} N_j), a consistent
  // truncation at K' rather than a renormalisation of the old sticks.
  void prune(VbStats& out);

  struct RestartRecord {
    std::vector<int> kept;  ///< original index of each current component
    std::vector<PruneEvent> prunes;
  };
  std::vector<RestartRecord> restarts_;
  std::vector<int> below_;  ///< consecutive iterations each current component spent below
  int iteration_ = 0;       ///< of the current restart

  Primitives& prims_;
  DataView X_;
  WeightView w_;
  const BayesianOptions& o_;
  const BayesianPrior& prior_;
  KMeansShared& shared_;
};

}  // namespace cuem::engine
