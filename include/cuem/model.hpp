#pragma once
// A fitted Gaussian mixture. Array shapes and meanings are scikit-learn's, row-major:
//
//   type       covariances          precisions_cholesky
//   full       K x D x D            K x D x D (upper triangular, precision = P P^T)
//   tied       D x D                D x D
//   diag       K x D                K x D     (1 / sqrt(variance))
//   spherical  K                    K
#include <cstddef>
#include <vector>

#include "cuem/covariance_type.hpp"

namespace cuem {

struct Model {
  CovarianceType covariance_type = CovarianceType::full;
  int n_components = 0;  ///< K
  int n_features = 0;    ///< D
  std::vector<double> weights;              ///< K, sums to 1
  std::vector<double> means;                ///< K x D
  std::vector<double> covariances;          ///< see the table above
  std::vector<double> precisions_cholesky;  ///< see the table above

  bool empty() const noexcept { return n_components == 0; }
};

/// Number of doubles in the covariance (and precision Cholesky) array of a model.
std::size_t covariance_size(CovarianceType type, int n_components, int n_features) noexcept;

/// Number of free parameters, as scikit-learn counts them for BIC and AIC.
double n_parameters(const Model& model) noexcept;

}  // namespace cuem
