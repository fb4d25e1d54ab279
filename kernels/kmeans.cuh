#pragma once
// The k-means kernels (math and layouts in kmeans.hpp). Templated on the arithmetic type
// S; kmeans_float.cu and kmeans_double.cu instantiate them.
//
// closest_kernel: one block per kClosestBlock points, each thread a strided share of
// them; the block's sum is a CUB raking reduction (fixed order) in float64.
// hard_assign_kernel: one thread per point, a loop over the centres; with 8 or more
// centres the tiled distance kernel of estep_posteriors.cuh and argmin_assign_kernel instead.
#include <cub/block/block_reduce.cuh>
#include <cuda_runtime.h>

#include "cuda_check.cuh"
#include "device_memory.cuh"
#include "estep_posteriors.cuh"  // the tiled distance kernel
#include "kmeans.hpp"

namespace cuem::cuda {
namespace detail {

inline constexpr int kClosestThreads = 256;
inline constexpr int kClosestMinBlocks = 4;  // 64 registers a thread (no spills on sm_90)
inline constexpr int kAssignThreads = 128;
inline constexpr int kAssignMinBlocks = 8;

template <typename S>
__device__ __forceinline__ S dist_sq(const S* x, const S* hi, const S* lo, int D) {
  S s = 0;
  for (int d = 0; d < D; ++d) {
    const S t = (x[d] - hi[d]) - lo[d];
    s += t * t;
  }
  return s;
}

template <typename S>
__global__ void __launch_bounds__(kClosestThreads, kClosestMinBlocks)
    closest_kernel(const S* __restrict__ X, std::size_t n, int D, const S* __restrict__ c_hi,
                   const S* __restrict__ c_lo, S* __restrict__ closest, ClosestMode mode,
                   double* __restrict__ block_sums, std::size_t first_block) {
  using BlockReduce = cub::BlockReduce<double, kClosestThreads, cub::BLOCK_REDUCE_RAKING>;
  __shared__ typename BlockReduce::TempStorage temp;
  const std::size_t begin = static_cast<std::size_t>(blockIdx.x) * kClosestBlock;
  const std::size_t end = begin + kClosestBlock < n ? begin + kClosestBlock : n;
  double s = 0.0;
  for (std::size_t i = begin + threadIdx.x; i < end; i += kClosestThreads) {
    const S d = dist_sq(X + i * static_cast<std::size_t>(D), c_hi, c_lo, D);
    S v = d;
    if (mode != ClosestMode::reset) v = closest[i] < d ? closest[i] : d;
    if (mode != ClosestMode::potential) closest[i] = v;
    s += static_cast<double>(v);
  }
  const double total = BlockReduce(temp).Sum(s);
  if (threadIdx.x == 0) block_sums[first_block + blockIdx.x] = total;
}

template <typename S>
__global__ void __launch_bounds__(kAssignThreads, kAssignMinBlocks)
    hard_assign_kernel(const S* __restrict__ X, std::size_t n, int D, int K, const S* __restrict__ c_hi,
                       const S* __restrict__ c_lo, int* __restrict__ labels, S* __restrict__ dist,
                       S* __restrict__ resp, std::size_t stride) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const S* x = X + i * static_cast<std::size_t>(D);
  int best = 0;
  S best_d = S(INFINITY);
  for (int k = 0; k < K; ++k) {
    const std::size_t off = static_cast<std::size_t>(k) * D;
    const S d = dist_sq(x, c_hi + off, c_lo + off, D);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  if (labels) labels[i] = best;
  if (dist) dist[i] = best_d;
  if (resp)
    for (int k = 0; k < K; ++k) resp[k * stride + i] = k == best ? S(1) : S(0);
}

// After tiled_log_joint_kernel<S, spherical, RK, TileOut::distance> wrote every point's squared
// distances K-major into resp: the nearest (the lowest index on ties, as
// hard_assign_kernel), its distance, its label, and the one-hot row over the distances.
template <typename S>
__global__ void __launch_bounds__(kAssignThreads)
    argmin_assign_kernel(std::size_t n, int K, int* __restrict__ labels, S* __restrict__ dist,
                         S* __restrict__ resp, std::size_t stride) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int best = 0;
  S best_d = S(INFINITY);
  for (int k = 0; k < K; ++k) {
    const S d = resp[k * stride + i];
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  if (labels) labels[i] = best;
  if (dist) dist[i] = best_d;
  for (int k = 0; k < K; ++k) resp[k * stride + i] = k == best ? S(1) : S(0);
}

template <typename S>
void closest(const S* X, std::size_t n, int D, const S* c_hi, const S* c_lo, S* closest_values, ClosestMode mode,
             double* block_sums, std::size_t first_block, cudaStream_t stream) {
  if (n == 0) return;
  const auto blocks = checked_cast<unsigned>((n + kClosestBlock - 1) / kClosestBlock, "closest blocks");
  CUEM_LAUNCH((closest_kernel<S>), blocks, kClosestThreads, 0, stream)(X, n, D, c_hi, c_lo, closest_values, mode,
                                                                         block_sums, first_block);
  CUEM_CUDA_CHECK_LAUNCH();
}

template <typename S>
void hard_assign(const S* X, std::size_t n, int D, int K, const S* c_hi, const S* c_lo, int* labels, S* dist, S* resp,
                 std::size_t stride, const CudaTuning& tuning, cudaStream_t stream) {
  if (n == 0) return;
  const auto blocks = checked_cast<unsigned>((n + kAssignThreads - 1) / kAssignThreads, "assign blocks");
  // Many centres and a responsibility buffer to hold the distances: the register-tiled
  // distance kernel (one thread per point reads its own row of X, strided across a warp),
  // then the per-point argmin over the distances.
  if (resp && K >= 8 && tuning.tiled) {
    ComponentParams<S> p;
    p.type = CovarianceType::spherical;
    p.K = K;
    p.D = D;
    p.means = c_hi;
    p.means_lo = c_lo;
    const auto launch = [&](auto rk) {
      constexpr int RK = decltype(rk)::value;
      const dim3 grid(checked_cast<unsigned>((n + kTilePoints - 1) / kTilePoints, "distance tiles"),
                      checked_cast<unsigned>((K + kTileComponents<RK> - 1) / kTileComponents<RK>, "centre tiles"));
      if (grid.y > 65535u) throw DeviceError("too many centres for the CUDA backend; use device 'cpu'");
      CUEM_LAUNCH((tiled_log_joint_kernel<S, CovarianceType::spherical, RK, TileOut::distance>), grid, kTileThreads,
                  0, stream)(p, X, n, resp, stride, nullptr);
      CUEM_CUDA_CHECK_LAUNCH();
    };
    if (K <= 16)
      launch(std::integral_constant<int, 1>{});
    else if (K <= 32)
      launch(std::integral_constant<int, 2>{});
    else
      launch(std::integral_constant<int, 4>{});
    CUEM_LAUNCH((argmin_assign_kernel<S>), blocks, kAssignThreads, 0, stream)(n, K, labels, dist, resp, stride);
    CUEM_CUDA_CHECK_LAUNCH();
    return;
  }
  CUEM_LAUNCH((hard_assign_kernel<S>), blocks, kAssignThreads, 0, stream)(X, n, D, K, c_hi, c_lo, labels, dist, resp,
                                                                            stride);
  CUEM_CUDA_CHECK_LAUNCH();
}

}  // namespace detail
}  // namespace cuem::cuda
