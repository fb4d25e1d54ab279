#pragma once
// The additive result of an E-step: what the M-step needs, summed over points. Sums are
// taken about a shift c_k (the means the E-step used), so that float32 partial sums on
// offset data do not cancel (DESIGN.md, numerical rules):
//   N_k = sum_n g_nk,  S1_k = sum_n g_nk (x_n - c_k),  S2_k = sum_n g_nk (x_n - c_k)(x_n - c_k)^T
// S2 is stored per type: full K x D x D (upper triangle), tied D x D (summed over k,
// upper triangle), diag and spherical K x D (the diagonal).
#include <cstddef>
#include <vector>

#include "cuem/covariance_type.hpp"

namespace cuem {

struct SufficientStats {
  CovarianceType type = CovarianceType::full;
  int K = 0;
  int D = 0;
  std::vector<double> shift;  ///< K x D
  std::vector<double> nk;     ///< K
  std::vector<double> s1;     ///< K x D
  std::vector<double> s2;     ///< see above
  double log_likelihood = 0;  ///< sum_n w_n log p(x_n)
  std::size_t n_points = 0;
  double weight = 0;          ///< sum_n w_n over the points summed (n_points without weights)

  /// Zeroed statistics about the given shift (K x D).
  static SufficientStats zeros(CovarianceType type, int K, int D, std::vector<double> shift);

  /// The same statistics about another shift (K x D), exactly in float64:
  ///   S1' = S1 + N_k d,  S2' = S2 + S1 d^T + d S1^T + N_k d d^T,  d = shift - to
  /// (tied: the sum of each component's term). Backends may report different shifts for
  /// the same means (the CUDA backend's include the data's origin), so merging goes
  /// through this.
  SufficientStats recentred(const std::vector<double>& to) const;

  /// Adds another set of the same shape (a monoid; the order is fixed by the caller). A
  /// set taken about a different shift is first re-centred to this one's.
  void merge(const SufficientStats& other);
};

/// Number of doubles in S2 for a covariance type.
std::size_t s2_size(CovarianceType type, int K, int D) noexcept;

}  // namespace cuem
