#pragma once
// The Gaussian HMM's parameters as an unconstrained vector, for the accelerated driver
// (src/engine/squarem_driver.hpp):
//
//   startprob   K logs (floored at the smallest normal double), back by the softmax
//   transmat    K x K logs, each row back by its softmax
//   emissions   the Gaussian mixture's map (gmm_parameter_map.hpp) of the means and
//               covariances; its K - 1 weight log-ratios are left out
//
// The logs carry no reference entry: the softmax removes the shift each row's logs are
// free to take, so every finite vector maps to valid distributions. Entries that are
// exactly zero in the shape (structural zeros of a left-right chain, which Baum-Welch
// keeps at zero) stay exactly zero, and parameters the fit does not update (letters
// missing from HmmOptions::params) are the shape's, bit for bit.
#include <vector>

#include "cuem/hmm.hpp"

namespace cuem::engine {

class GaussianHmmEM;

std::vector<double> hmm_to_vector(const HmmModel& m);

/// The HMM of a vector, shaped as `shape` (zeros and fixed parameters kept from it, see
/// above); `params` the letters of the parameters the vector may change. InvalidArgument
/// where the length does not fit.
HmmModel hmm_from_vector(const std::vector<double>& v, const HmmModel& shape, const std::string& params);

/// The accelerated driver's parameter map, found by argument-dependent lookup.
std::vector<double> to_unconstrained(const GaussianHmmEM& model, const HmmModel& m);
HmmModel from_unconstrained(const GaussianHmmEM& model, const std::vector<double>& v, const HmmModel& shape);

}  // namespace cuem::engine
