#pragma once
// The sufficient statistics of one (point, component) pair by a plain loop, for the tests'
// reference statistics (test_cpu_primitives, test_negligible_skip): N_k, S1_k and S2_k
// (the upper triangle for full and tied, the diagonal otherwise) about the model's means.
#include <cstddef>

#include "core/sufficient_stats.hpp"
#include "cuem/model.hpp"

namespace cuem_test {

/// Adds point x's statistics with weight g to component k of s.
inline void add_pair_stats(cuem::SufficientStats& s, const cuem::Model& m, const double* x, int k, double g) {
  const int D = m.n_features;
  const bool full = m.covariance_type == cuem::CovarianceType::full || m.covariance_type == cuem::CovarianceType::tied;
  const std::size_t DD = static_cast<std::size_t>(D) * D;
  s.nk[k] += g;
  for (int i = 0; i < D; ++i) {
    const double di = x[i] - m.means[k * D + i];
    s.s1[k * D + i] += g * di;
    if (!full) {
      s.s2[k * D + i] += g * di * di;
      continue;
    }
    double* row = s.s2.data() + (m.covariance_type == cuem::CovarianceType::full ? k * DD : 0) + i * D;
    for (int j = i; j < D; ++j) row[j] += g * di * (x[j] - m.means[k * D + j]);
  }
}

}  // namespace cuem_test
