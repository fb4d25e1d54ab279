#pragma once
// The variational posterior as an unconstrained vector, for the accelerated driver
// (src/engine/squarem_driver.hpp). The Bayesian mixture's iteration q -> M(E(q)) is a
// fixed-point map like EM's, and its bound never falls along it, so SQUAREM's
// extrapolation and safeguard apply unchanged: the driver compares the bounds its E-step
// reports (here the bound after the step's M-step, vb_gmm_model.hpp), which never fall.
//
//   weight_concentration  log of each (Dirichlet parameters, or the sticks' Beta pairs)
//   mean_precision        log beta_k
//   degrees_of_freedom    log(nu_k - (D - 1)) (nu_k > D - 1; tied: one)
//   means, covariances    as the Gaussian mixture's map (gmm_parameter_map.hpp): means as
//                         they are, covariances by their Cholesky factors with log
//                         diagonals; its K - 1 weight log-ratios are left out
//
// Every vector of the right length maps to a valid posterior (logs clamped to
// [-300, 300], so values stay finite); the prior is not extrapolated (it is the shape's).
// A fit that prunes components changes the vector's length: the caller refuses SQUAREM
// with pruning.
#include <vector>

#include "cuem/bayesian.hpp"

namespace cuem::engine {

class VariationalGaussianMixture;

std::vector<double> vb_to_vector(const BayesianPosterior& q);

/// The posterior of a vector with `shape`'s types, sizes and prior; InvalidArgument where
/// the length does not fit.
BayesianPosterior vb_from_vector(const std::vector<double>& v, const BayesianPosterior& shape);

/// The accelerated driver's parameter map, found by argument-dependent lookup.
std::vector<double> to_unconstrained(const VariationalGaussianMixture& model, const BayesianPosterior& q);
BayesianPosterior from_unconstrained(const VariationalGaussianMixture& model, const std::vector<double>& v,
                                     const BayesianPosterior& shape);

}  // namespace cuem::engine
