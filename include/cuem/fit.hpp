#pragma once
// Fitting a Gaussian mixture with EM, and using the fitted model.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuem/data_view.hpp"
#include "cuem/missing.hpp"
#include "cuem/model.hpp"
#include "cuem/options.hpp"

namespace cuem {

struct TracePoint {
  int init = 0;                    ///< which restart
  int iteration = 0;               ///< 1-based
  double mean_log_likelihood = 0;  ///< per sample, before this iteration's M-step
  double seconds = 0;              ///< wall time of the iteration
  /// EM's linear rate as estimated so far in this restart (FitResult::convergence_rate is
  /// the best restart's last one); NaN until enough steps above rounding were seen.
  double rate = std::numeric_limits<double>::quiet_NaN();
};

struct FitResult {
  Model model;
  bool converged = false;
  int n_iter = 0;           ///< iterations of the best restart
  double lower_bound = 0;   ///< mean log-likelihood of the best restart at its end
  int best_init = 0;        ///< which restart won
  std::vector<TracePoint> trace;  ///< every iteration of every restart, in order
  /// Iterations whose log-likelihood fell below the previous one by more than rounding
  /// (EM forbids it; a non-zero count is a bug to report) and the largest such fall.
  int n_decreases = 0;
  double max_decrease = 0;
  /// What ran the E-steps, e.g. "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3), float32, ...".
  std::string device;
  /// Things a user should know, one line each (e.g. device 'auto' fell back to the CPU).
  std::vector<std::string> notices;
  /// The data's missing entries (all zero without any, or with MissingPolicy::error).
  MissingSummary missing;
  /// EM's linear rate of convergence near the end of the best restart, from the ratio of
  /// successive log-likelihood gains (the largest eigenvalue of the fraction of missing
  /// information): near 1, EM crawls and Acceleration::squarem helps. NaN when too few
  /// plain EM steps were taken; under SQUAREM it reads low (its extrapolations remove the
  /// slow direction).
  double convergence_rate = 0;
  /// E-step passes over the data, every restart and rejected extrapolation included.
  int n_estep_passes = 0;
};

/// Fits a mixture to X (N x D). Throws InvalidArgument, DataError, NumericalError or
/// DeviceError, each with a message that says what to change.
/// `sample_weight` (one non-negative weight per row, not all zero; empty: all 1) weights
/// every sum over points, so that a row of integer weight w counts as w copies of it and a
/// row of weight 0 as absent; the lower bound and trace are then means per unit weight.
FitResult fit(DataView X, const FitOptions& options, WeightView sample_weight = {});

/// Where a fitted model is evaluated (predict, predict_proba, score_samples, score). The
/// default is the float64 CPU; on a CUDA device the values carry the precision's rounding.
struct EvaluateOptions {
  Device device;
  Precision precision = Precision::float32;
  std::size_t device_memory_limit = 0;  ///< bytes; 0 = 80% of the free device memory
  CudaTuning cuda_tuning;
  /// NaN entries: an error, or marginalised out (a row's values are then those of its
  /// observed coordinates; a row with none has score_samples 0 and posteriors = weights).
  MissingPolicy missing = MissingPolicy::error;
};

/// Most probable component of every point (N).
std::vector<int> predict(const Model& model, DataView X, const EvaluateOptions& where = {});
/// Posterior probabilities, N x K row-major; each row sums to 1.
std::vector<double> predict_proba(const Model& model, DataView X, const EvaluateOptions& where = {});
/// log p(x_n) of every point (N).
std::vector<double> score_samples(const Model& model, DataView X, const EvaluateOptions& where = {});
/// Mean of score_samples (weighted by sample_weight where given: sum w lp / sum w). With
/// missing entries, rows with nothing observed are left out of the mean (and of bic's and
/// aic's N), as a fit leaves them out of its bound.
double score(const Model& model, DataView X, const EvaluateOptions& where = {}, WeightView sample_weight = {});
/// Bayesian and Akaike information criteria, scikit-learn's formulas (lower is better),
/// on the float64 CPU; with weights the data's size is sum w and its log-likelihood
/// sum w lp: bic = -2 sum w lp + p log(sum w), aic = -2 sum w lp + 2 p.
double bic(const Model& model, DataView X, WeightView sample_weight = {});
double aic(const Model& model, DataView X, WeightView sample_weight = {});

/// score, bic and aic from one pass over X on the chosen device (bic and aic then carry
/// its precision's rounding, where bic() and aic() are float64).
struct Criteria {
  double score = 0;         ///< mean log-likelihood per unit weight
  double bic = 0;
  double aic = 0;
  double total_weight = 0;  ///< sum w (N without weights)
};
Criteria criteria(const Model& model, DataView X, const EvaluateOptions& where = {}, WeightView sample_weight = {});

struct Samples {
  std::vector<double> X;    ///< n x D, grouped by component as scikit-learn does
  std::vector<int> labels;  ///< n
};
/// Draws n points from the mixture; deterministic for a given seed.
Samples sample(const Model& model, std::size_t n, std::uint64_t seed);

/// Checks a model's shapes and values (weights on the simplex, positive definite
/// factors); throws InvalidArgument naming the first problem.
void validate_model(const Model& model);

}  // namespace cuem
