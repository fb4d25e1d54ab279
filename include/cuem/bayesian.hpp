#pragma once
// The variational Bayesian Gaussian mixture: scikit-learn's BayesianGaussianMixture
// (Bishop 2006, ch. 10.2; Blei and Jordan 2006 for the Dirichlet process), fitted by
// variational EM on the same engine as the GMM (docs/ARCHITECTURE.md). Priors, defaults,
// fitted values and the lower bound are scikit-learn's.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/fit.hpp"
#include "cuem/options.hpp"

namespace cuem {

/// The prior on the weights (scikit-learn's weight_concentration_prior_type).
enum class WeightPrior {
  dirichlet_process,       ///< stick-breaking, truncated at n_components: Beta(1, gamma) sticks
  dirichlet_distribution,  ///< a finite mixture: Dirichlet(gamma, ..., gamma)
};

const char* to_string(WeightPrior prior) noexcept;
/// "dirichlet_process" or "dirichlet_distribution".
WeightPrior parse_weight_prior(const std::string& name);

/// The priors as a fit resolved them (scikit-learn's *_prior_ attributes).
struct BayesianPrior {
  WeightPrior type = WeightPrior::dirichlet_process;
  double weight_concentration = 0;  ///< gamma
  double mean_precision = 0;        ///< beta_0
  std::vector<double> mean;         ///< m_0, D
  double degrees_of_freedom = 0;    ///< nu_0
  /// W_0^-1 in the covariance's layout: full and tied D x D, diag D, spherical 1.
  std::vector<double> covariance;
};

/// The fitted variational posterior q(pi) q(mu, Lambda), scikit-learn's attributes.
struct BayesianPosterior {
  CovarianceType covariance_type = CovarianceType::full;
  int n_components = 0;  ///< K
  int n_features = 0;    ///< D
  BayesianPrior prior;
  /// dirichlet_distribution: K Dirichlet parameters; dirichlet_process: 2 x K, the Beta
  /// parameters of the sticks (first all K alphas, then all K betas).
  std::vector<double> weight_concentration;
  std::vector<double> mean_precision;       ///< beta_k, K
  std::vector<double> means;                ///< m_k, K x D
  std::vector<double> degrees_of_freedom;   ///< nu_k, K (tied: 1)
  /// W_k^-1 / nu_k and its precision factor, in model.hpp's layouts.
  std::vector<double> covariances;
  std::vector<double> precisions_cholesky;

  bool empty() const noexcept { return n_components == 0; }
  /// The expected weights (scikit-learn's weights_), K.
  std::vector<double> weights() const;
};

struct BayesianOptions {
  /// What a Bayesian fit shares with the GMM's: n_components, covariance_type, tol (on the
  /// change of the whole lower bound, as scikit-learn's, not per sample), reg_covar,
  /// max_iter, n_init, init, seed, device, precision, n_threads, device_memory_limit,
  /// cuda_tuning, on_iteration (told the lower bound), interrupted, acceleration (SQUAREM
  /// on the posterior's parameters, src/engine/vb_parameter_map.hpp; not with pruning).
  /// weights_init, means_init and precisions_init have no meaning here and must stay
  /// empty; missing must be MissingPolicy::error.
  FitOptions em;
  WeightPrior weight_concentration_prior_type = WeightPrior::dirichlet_process;
  /// Unset: scikit-learn's defaults, 1 / n_components, 1 and n_features; given: > 0, > 0
  /// and > n_features - 1.
  std::optional<double> weight_concentration_prior;
  std::optional<double> mean_precision_prior;
  std::optional<double> degrees_of_freedom_prior;
  /// Empty: the data's (weighted) mean.
  std::vector<double> mean_prior;
  /// Empty: the data's covariance (ddof 1) in the type's layout (diag: the variances,
  /// spherical: their mean). Given: D x D symmetric positive definite (full, tied), D
  /// positive (diag), 1 positive (spherical).
  std::vector<double> covariance_prior;
  /// N x K responsibilities to start from instead of `em.init` (scikit-learn's
  /// _initialize(X, resp)); host data only. Every restart starts from them.
  std::vector<double> resp_init;
  /// A fitted posterior to continue from (scikit-learn's warm_start): one run, no init.
  std::optional<BayesianPosterior> warm_start;
  /// Pruning (beyond scikit-learn, which leaves it as future work; off by default so that the
  /// default fit is scikit-learn's): a component whose data share N_k / sum_j N_j (the
  /// E-step's, as the CLI's 0.01 / K rule for components that carry weight) stays below
  /// prune_threshold for prune_patience consecutive iterations is removed from the
  /// posterior, and the fit goes on with the others. 0 <= prune_threshold < 1 (0: off);
  /// prune_patience >= 1. The last component is never removed. With n_init > 1 the
  /// restarts may end with different numbers of components; the highest final bound wins,
  /// as without pruning.
  double prune_threshold = 0;
  int prune_patience = 10;
};

/// Components removed by pruning at one iteration (of the restart that was kept).
struct PruneEvent {
  int iteration = 0;            ///< 1-based; the removal follows this iteration's M-step
  std::vector<int> components;  ///< their indices among the n_components the fit started with
};

struct BayesianFitResult {
  BayesianPosterior posterior;
  bool converged = false;
  int n_iter = 0;
  double lower_bound = 0;         ///< scikit-learn's lower_bound_ (the whole bound, not per sample)
  int best_init = 0;
  /// Every iteration's lower bound (TracePoint::mean_log_likelihood holds the bound).
  std::vector<TracePoint> trace;
  int n_decreases = 0;            ///< iterations whose bound fell by more than rounding
  double max_decrease = 0;
  /// The iteration's linear rate near the end (FitResult::convergence_rate), NaN where
  /// too few steps stood above rounding.
  double convergence_rate = std::numeric_limits<double>::quiet_NaN();
  int n_estep_passes = 0;  ///< E-steps over all restarts (with acceleration 'squarem', rejected ones included)
  /// For each of the posterior's components, its index among the n_components the fit
  /// started with (0, 1, ..., K - 1 without pruning).
  std::vector<int> kept_components;
  std::vector<PruneEvent> prunes;  ///< the kept restart's removals, in order
  std::string device;
  std::vector<std::string> notices;
};

/// Fits the variational posterior to X (N x D). Throws InvalidArgument for bad options
/// and priors (with scikit-learn's conditions), DataError, NumericalError, DeviceError.
/// With sample_weight every sum over points is weighted (a row of weight w counts as w
/// copies), the default priors included.
BayesianFitResult fit_bayesian(DataView X, const BayesianOptions& options, WeightView sample_weight = {});

/// Evaluations of a fitted posterior, as scikit-learn's: with the variational log
/// joint ln rho_nk = E[ln pi_k] + E[ln N(x_n | mu_k, Lambda_k^-1)] (digamma terms and the
/// mean's uncertainty included), score_samples is log sum_k rho_nk.
std::vector<int> predict(const BayesianPosterior& posterior, DataView X, const EvaluateOptions& where = {});
std::vector<double> predict_proba(const BayesianPosterior& posterior, DataView X, const EvaluateOptions& where = {});
std::vector<double> score_samples(const BayesianPosterior& posterior, DataView X, const EvaluateOptions& where = {});
double score(const BayesianPosterior& posterior, DataView X, const EvaluateOptions& where = {},
             WeightView sample_weight = {});

}  // namespace cuem
