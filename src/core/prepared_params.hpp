#pragma once
// What a backend needs of a model to run an E-step: everything per component that does
// not depend on the point, computed once per iteration on the host.
#include <vector>

#include "cuem/model.hpp"

namespace cuem {

struct PreparedParams {
  CovarianceType type = CovarianceType::full;
  int K = 0;
  int D = 0;
  std::vector<double> log_weights;  ///< K
  std::vector<double> means;        ///< K x D
  std::vector<double> prec_chol;    ///< the model's precisions_cholesky
  std::vector<double> log_det;      ///< K: log|P_k| (the same for every k when tied)

  /// Start of component k's factor in prec_chol (tied components share one).
  const double* factor(int k) const noexcept;
};

PreparedParams prepare(const Model& model);

}  // namespace cuem
