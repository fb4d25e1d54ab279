#pragma once
// The performance model of DESIGN.md, written once and used by every benchmark suite.
// Per EM iteration with a fused E-step + statistics pass over N points, K components,
// D dimensions, data elements of `element_bytes`:
//   bytes  = N D element_bytes (the data read once; parameters and statistics are
//            O(K D^2) and ignored)
//   flops  full, tied:      N K (2 D(D+1)/2 + 2 D(D+1)/2) = 2 N K D(D+1)
//                           (the triangular product P^T (x - mu) and the upper triangle
//                            of the scatter, two flops per multiply-add)
//          diag, spherical: 6 N K D  (subtract, scale and square for the distance;
//                            subtract, weight and square-accumulate for the statistics)
// The exp/log of the normalisation (N K each) and the O(K D^3) M-step are left out: the
// floor is max(bytes / bandwidth, flops / rate).
#include <algorithm>

#include "cuem/covariance_type.hpp"

namespace cuem::bench {

struct Cost {
  double bytes = 0;
  double flops = 0;
};

inline Cost em_iteration_cost(CovarianceType type, double N, double D, double K, double element_bytes) {
  Cost c;
  c.bytes = N * D * element_bytes;
  const bool full = type == CovarianceType::full || type == CovarianceType::tied;
  c.flops = full ? 2.0 * N * K * D * (D + 1) : 6.0 * N * K * D;
  return c;
}

/// The log-densities alone (predict, score_samples): half the flops, and the N x K (or
/// N) outputs written as well.
inline Cost evaluate_cost(CovarianceType type, double N, double D, double K, double element_bytes,
                          double outputs_per_point) {
  Cost c = em_iteration_cost(type, N, D, K, element_bytes);
  c.flops /= 2;
  c.bytes += N * outputs_per_point * element_bytes;
  return c;
}

/// Seconds below which no implementation can go on a machine with these ceilings.
inline double floor_seconds(const Cost& c, double bytes_per_second, double flops_per_second) {
  return std::max(c.bytes / bytes_per_second, c.flops / flops_per_second);
}

}  // namespace cuem::bench
