#pragma once
// The expected complete-data log-likelihood of a Gaussian mixture under responsibilities
// summarised by their sufficient statistics: what incremental EM's free energy is made of
// (src/engine/incremental_driver.hpp).
#include "core/sufficient_stats.hpp"
#include "cuem/model.hpp"

namespace cuem {

/// Q(s, theta) = sum_n sum_k g_nk log(pi_k N(x_n | mu_k, Sigma_k)), from the statistics s
/// of the responsibilities g (any shift) and the parameters theta:
///   sum_k N_k (log pi_k - D/2 log 2 pi + log|P_k|) - 1/2 tr(P_k P_k^T C_k),
/// C_k = sum_n g_nk (x_n - mu_k)(x_n - mu_k)^T (s re-centred to theta's means; tied:
/// the sum over k, with the shared factor). Linear in s, exact in float64 up to rounding.
double expected_complete_log_likelihood(const SufficientStats& s, const Model& theta);

}  // namespace cuem
