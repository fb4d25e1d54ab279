#pragma once
// The E-step over the incomplete rows of a MissingLayout, on one device: for every point
// and component the log-density of the observed coordinates (conditional_gaussian.hpp),
// the responsibilities, and the expected statistics
//   N_k  += w g_k,   S1_k += w g_k y_k,   S2_k += w g_k (y_k y_k^T + C_k)
// with y_k the deviation from mu_k of the point completed by its conditional mean under k
// and C_k the conditional covariance on the missing block (zero elsewhere), in the
// model's covariance type's layout (SufficientStats). Sums run in a fixed order.
#include <memory>

#include "core/sufficient_stats.hpp"
#include "cuem/model.hpp"
#include "engine/missing_layout.hpp"

namespace cuem::engine {

class IncompleteRows {
 public:
  virtual ~IncompleteRows() = default;
  /// Statistics of layout rows [n_complete, n_rows) about the model's means or about a
  /// shift the result names (CUDA: the means as the device holds them, equal to rounding;
  /// merge re-centres), log_likelihood = sum w log p(x_o), weight = sum w, n_points the
  /// rows of positive weight.
  virtual SufficientStats estep(const Model& model) = 0;
  /// The unit roundoff of the log-density arithmetic.
  virtual double unit_roundoff() const noexcept { return 0x1p-53; }
  virtual const char* name() const noexcept = 0;
};

/// The float64 CPU implementation (src/cpu/cpu_incomplete_rows.cpp). `layout` must
/// outlive it.
std::unique_ptr<IncompleteRows> make_cpu_incomplete_rows(const MissingLayout& layout);

/// The expected statistics of layout rows [n_complete, n_rows), as estep's, but with the
/// caller's weights ((n_rows - n_complete) x K, e.g. an HMM's state posteriors) in place
/// of the model's responsibilities (times the sample weights, if the layout has them):
/// float64 on the CPU, about the model's means, summed in estep's fixed order. Only the
/// model's means and covariances matter (its weights enter log_likelihood alone).
SufficientStats incomplete_weighted_stats(const MissingLayout& layout, const Model& model, const double* weights);

/// Per-row values of layout rows [n_complete, n_rows) in float64 on the CPU, for the
/// evaluations: log p(x_o) into log_prob ((n_rows - n_complete), may be null) and the
/// posteriors into resp ((n_rows - n_complete) x K, may be null).
void incomplete_posteriors(const MissingLayout& layout, const Model& model, double* log_prob, double* resp);

/// The same rows completed: `filled` ((n_rows - n_complete) x D) gets the observed entries
/// and, for the missing ones, sum_k P(k | x_o) E[x_m | x_o, k]; `variance` (same shape,
/// may be null) the conditional variance of each missing entry (0 where observed).
void incomplete_conditionals(const MissingLayout& layout, const Model& model, double* filled, double* variance);

}  // namespace cuem::engine
