#pragma once
// The Gaussian mixture's parameters as an unconstrained vector, for the accelerated driver
// (src/engine/squarem_driver.hpp): every vector of the right length maps to a valid model,
// so an extrapolated point needs no projection back onto the parameter set.
//
//   weights      K - 1 log-ratios log(pi_k / pi_{K-1}), k < K - 1 (the last is the
//                reference), back by the softmax with a zero appended: on the simplex
//   means        K x D as they are
//   covariances  the lower Cholesky factor L of each (Sigma = L L^T), row by row, its
//                diagonal by its log: positive definite for any values. full: K factors
//                of D (D + 1) / 2; tied: one; diag: K x D log variances; spherical: K.
//
// Log-diagonals are clamped to [-300, 300] on the way back (variances between e^-600 and
// e^600, so finite in float64); inside that range the map is a bijection, and vector ->
// model -> vector gives the vector back up to rounding. The precision factors follow from
// L directly (P = L^-T, scikit-learn's precisions_cholesky_), with no second factorisation.
#include <cstddef>
#include <vector>

#include "cuem/model.hpp"

namespace cuem::engine {

class GaussianMixtureEM;

/// Length of the vector of a model of this shape.
std::size_t gmm_vector_size(CovarianceType type, int n_components, int n_features) noexcept;

/// The vector of a model (its covariances must be positive definite, as every fitted or
/// initialised model's are; a zero weight is read as the smallest normal double).
std::vector<double> gmm_to_vector(const Model& m);

/// The model of a vector, with covariances and precisions_cholesky filled. Throws
/// cuem::InvalidArgument where the length does not fit the shape.
Model gmm_from_vector(const std::vector<double>& v, CovarianceType type, int n_components, int n_features);

/// The accelerated driver's parameter map for the Gaussian mixture, found by
/// argument-dependent lookup (squarem_driver.hpp, has_parameter_map).
std::vector<double> to_unconstrained(const GaussianMixtureEM& model, const Model& params);
Model from_unconstrained(const GaussianMixtureEM& model, const std::vector<double>& v, const Model& shape);

}  // namespace cuem::engine
