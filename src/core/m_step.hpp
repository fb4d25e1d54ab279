#pragma once
// The host M-step: sufficient statistics -> a new model (scikit-learn's estimates).
#include "core/sufficient_stats.hpp"
#include "cuem/model.hpp"

namespace cuem {

/// pi_k = N_k / sum N, mu_k = c_k + S1_k / N_k, Sigma_k = centred scatter / N_k + reg I,
/// with N_k += 10 eps as scikit-learn does so that an empty component keeps its mean
/// (the shift) and gets covariance reg I instead of a division by zero. Throws
/// NumericalError naming the component whose covariance is not positive definite.
Model m_step(const SufficientStats& stats, double reg_covar);

/// Fills precisions_cholesky from covariances; throws NumericalError as above.
void compute_precision_cholesky(Model& model, double reg_covar);

}  // namespace cuem
