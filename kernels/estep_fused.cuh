#pragma once
// The fused E-step kernel (math in estep.hpp; sizes in estep_policy.cuh).
#include <cuda_runtime.h>

#include "estep_posteriors.cuh"

namespace cuem::cuda {
namespace detail {

// The whole E-step of a segment in one kernel, for one or two dimensions and few
// components (G1, G5, configs A and E): a block is a segment (256 threads x 32 points,
// strided so loads coalesce); each thread forms its points' responsibilities in
// registers and adds them straight into its statistics (sums in S over its 32 points),
// and the block adds every thread's sums in float64 in a fixed order (below). No N x K responsibilities are written or read back, and the data are
// read once where the two-kernel path reads them once per component.
// Two resident blocks (up to 128 registers): with the thread count alone ptxas held the
// sm_90 tied kernel to 80 and spilled.
template <typename S, CovarianceType C, int D>
__global__ void __launch_bounds__(kFusedThreads, 2)
    fused_estep_kernel(ComponentParams<S> p, const S* __restrict__ X, std::size_t n, double* __restrict__ partials,
                       std::size_t L) {
  constexpr int KMAX = kFusedMaxK<S, D>;
  constexpr int M = kFusedM<C, D>;
  constexpr bool kFull = C == CovarianceType::full || C == CovarianceType::tied;
  __shared__ double values[kFusedBatch][kFusedThreads];
  __shared__ double parts[kFusedBatch][kFusedBatch + 1];  // odd pitch: the totals' reads hit distinct banks
  const int K = p.K;
  const std::size_t seg = blockIdx.x;
  const std::size_t begin = seg * kSegmentPoints;
  S acc[KMAX][M];
  S lp_sum = S(0);
#pragma unroll
  for (int k = 0; k < KMAX; ++k)
#pragma unroll
    for (int e = 0; e < M; ++e) acc[k][e] = S(0);
  for (int j = 0; j < kFusedPerThread; ++j) {
    const std::size_t i = begin + static_cast<std::size_t>(j) * kFusedThreads + threadIdx.x;
    if (i >= n) break;
    S x[D];
#pragma unroll
    for (int d = 0; d < D; ++d) x[d] = X[i * D + d];
    S v[KMAX] = {};
    S m = S(-INFINITY);
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
      if (k >= K) break;
      const S* hi = p.means + k * D;
      const S* lo = p.means_lo + k * D;
      const auto diff = [&](int d) { return (x[d] - hi[d]) - lo[d]; };
      S maha;
      if constexpr (C == CovarianceType::full)
        maha = math::mahalanobis_sq_full_of(diff, p.factors + k * D * D, D);
      else if constexpr (C == CovarianceType::tied)
        maha = math::mahalanobis_sq_full_of(diff, p.factors, D);
      else if constexpr (C == CovarianceType::diag)
        maha = math::mahalanobis_sq_diag_of(diff, p.factors + k * D, D);
      else
        maha = math::mahalanobis_sq_spherical_of(diff, p.factors[k], D);
      v[k] = math::log_joint(p.log_weights[k], p.log_det[k], maha, D);
      m = v[k] > m ? v[k] : m;
    }
    // As normalize_point: exp(v - m) / sum, or an even share where no component can
    // explain the point.
    const bool none = !(m > S(-INFINITY));
    S sum = S(0);
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
      if (k >= K) break;
      v[k] = none ? S(1) / static_cast<S>(K) : exp_s(v[k] - m);
      sum += v[k];
    }
    const S inv = none ? S(1) : S(1) / sum;
    lp_sum += none ? m : m + log_s(sum);
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
      if (k >= K) break;
      const S g = none ? v[k] : v[k] * inv;
      S y[D];
#pragma unroll
      for (int d = 0; d < D; ++d) y[d] = x[d] - p.means[k * D + d];  // about the shift (hi)
      acc[k][0] += g;
#pragma unroll
      for (int a = 0; a < D; ++a) acc[k][1 + a] += g * y[a];
      int e = 1 + D;
#pragma unroll
      for (int a = 0; a < D; ++a)
#pragma unroll
        for (int b = kFull ? a : 0; b < (kFull ? D : 1); ++b) {
          const int bb = kFull ? b : a;
          acc[k][e] += g * y[a] * y[bb];
          ++e;
        }
    }
  }
  // The block's sums of the K x M statistics and the log-likelihood (value v = k M + e,
  // then K M), 16 values at a time: every thread's values in shared memory, 16 partial
  // sums of 16 threads each (partial q of threads q, q + 16, ..., so that the 16 lanes
  // reading one value's row hit 16 different banks), then the 16 totals; every sum in a
  // fixed order. (One block reduction per value would cost two barriers each, 98 at
  // K x M = 48.)
  double* out = partials + seg * L;
  const int tid = static_cast<int>(threadIdx.x);
  const int n_values = K * M + 1;
  for (int base = 0; base < n_values; base += kFusedBatch) {
    __syncthreads();  // the previous batch is read
#pragma unroll
    for (int k = 0; k < KMAX; ++k)
#pragma unroll
      for (int e = 0; e < M; ++e) {
        const int v = k * M + e - base;
        if (k < K && v >= 0 && v < kFusedBatch) values[v][tid] = static_cast<double>(acc[k][e]);
      }
    if (K * M - base >= 0 && K * M - base < kFusedBatch) values[K * M - base][tid] = static_cast<double>(lp_sum);
    __syncthreads();
    {
      const int j = tid / kFusedBatch;
      const int part = tid % kFusedBatch;
      double sum = 0.0;
      if (base + j < n_values)
        for (int t = 0; t < kFusedThreads / kFusedBatch; ++t) sum += values[j][t * kFusedBatch + part];
      parts[j][part] = sum;
    }
    __syncthreads();
    if (tid < kFusedBatch && base + tid < n_values) {
      double sum = 0.0;
      for (int q = 0; q < kFusedBatch; ++q) sum += parts[tid][q];
      out[base + tid] = sum;
    }
  }
}

}  // namespace detail
}  // namespace cuem::cuda
