#pragma once
// Launchers of the k-means kernels (kernels/kmeans.cuh) used by the CUDA backend's
// k-means operations. Points and centres are relative to the data's origin; a centre is
// given in two parts, hi = S(c) and lo = S(c - hi), and distances use (x - hi) - lo (as
// the E-step's means do, estep.hpp).
#include <cuda_runtime_api.h>

#include <cstddef>

#include "cuem/options.hpp"

namespace cuem::cuda {

/// Points per block of the closest-distance sums (a divisor of kSegmentPoints, so chunks
/// start on block boundaries).
inline constexpr std::size_t kClosestBlock = 4096;

enum class ClosestMode {
  reset,      ///< closest_i = d_i
  update,     ///< closest_i = min(closest_i, d_i)
  potential,  ///< closest unchanged; the sums are of min(closest_i, d_i)
};

/// For the n points of a chunk whose first point is global block `first_block`'s first:
/// d_i = ||x_i - c||^2, v_i as `mode` says, and block_sums[first_block + b] = the sum of
/// v over block b (float64, fixed order).
void launch_closest(const float* X, std::size_t n, int D, const float* c_hi, const float* c_lo, float* closest,
                    ClosestMode mode, double* block_sums, std::size_t first_block, cudaStream_t stream);
void launch_closest(const double* X, std::size_t n, int D, const double* c_hi, const double* c_lo, double* closest,
                    ClosestMode mode, double* block_sums, std::size_t first_block, cudaStream_t stream);

/// The nearest of K centres (K x D each part) for n points, the lowest index on ties:
/// labels[i] (may be null), dist[i] its squared distance (may be null), and the one-hot
/// responsibilities resp[k * resp_stride + i] (may be null) for the statistics kernel.
/// With tuning.tiled and resp, 8 or more centres take the tiled distance kernel.
void launch_hard_assign(const float* X, std::size_t n, int D, int K, const float* c_hi, const float* c_lo, int* labels,
                        float* dist, float* resp, std::size_t resp_stride, const CudaTuning& tuning,
                       cudaStream_t stream);
void launch_hard_assign(const double* X, std::size_t n, int D, int K, const double* c_hi, const double* c_lo,
                        int* labels, double* dist, double* resp, std::size_t resp_stride, const CudaTuning& tuning,
                       cudaStream_t stream);

}  // namespace cuem::cuda
