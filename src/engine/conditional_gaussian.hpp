#pragma once
// A Gaussian component seen through one missingness pattern (observed coordinates o,
// missing m), in precision form, so that the work per pattern is an |m| x |m|
// factorisation rather than an |o| x |o| one (few entries are missing in most rows):
// with Lambda = Sigma^-1 = P P^T,
//   E[x_m | x_o]   = mu_m - G (x_o - mu_o),   G = Lambda_mm^-1 Lambda_mo   (|m| x |o|)
//   Cov[x_m | x_o] = Lambda_mm^-1
//   log N(x_o | mu_o, Sigma_oo) = log|P| - log_det_mm - 1/2 (|o| log 2 pi + ||P^T y||^2)
// where y = x^ - mu is the deviation of the point completed by its conditional mean
// (y_o = x_o - mu_o, y_m = -G y_o) and log_det_mm = 1/2 log|Lambda_mm|. The quadratic form
// of the completed point equals the observed marginal's, so the E-step's Mahalanobis code
// serves both. For diagonal and spherical components G = 0 and the covariance is diagonal.
#include <vector>

#include "cuem/model.hpp"
#include "engine/missing_layout.hpp"

namespace cuem::engine {

struct ConditionalFactors {
  std::vector<double> G;    ///< |m| x |o| row-major (empty for diagonal and spherical models)
  std::vector<double> cov;  ///< |m| x |m| row-major: Cov[x_m | x_o]
  double log_det_mm = 0;    ///< 1/2 log|Lambda_mm|
};

/// The precision matrices Lambda_k = P_k P_k^T of a full or tied model (K x D x D, or
/// D x D for tied), for conditional_factors; empty for diag and spherical.
std::vector<double> precision_matrices(const Model& model);

/// Component k of `model` under pattern p. `precisions` is precision_matrices(model).
/// Throws NumericalError when Lambda_mm is not positive definite.
ConditionalFactors conditional_factors(const Model& model, const std::vector<double>& precisions, int k,
                                       const MissingPattern& p);
/// The same into `out`, reusing its storage (and `scratch`'s) between calls.
void conditional_factors(const Model& model, const std::vector<double>& precisions, int k, const MissingPattern& p,
                         ConditionalFactors& out, std::vector<double>& scratch);

}  // namespace cuem::engine
