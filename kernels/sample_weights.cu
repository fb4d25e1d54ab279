// The sample-weight kernels (math in sample_weights.hpp), float32 and float64.
//
// scale_rows_kernel: one thread a point, a loop over the components; each row of the
// K-major responsibility buffer is read and written coalesced across a warp.
// weighted_closest_kernel: closest_kernel (kmeans.cuh) with w_i v_i in the block's sum;
// the same blocks and the same CUB raking reduction, so the order is fixed.
#include <cub/block/block_reduce.cuh>
#include <cuda_runtime.h>

#include "cuda_check.cuh"
#include "device_memory.cuh"
#include "kmeans.cuh"
#include "sample_weights.hpp"

namespace cuem::cuda {
namespace {

constexpr int kScaleThreads = 256;

template <typename S>
__global__ void __launch_bounds__(kScaleThreads)
    scale_rows_kernel(const S* __restrict__ w, std::size_t n, int K, S* __restrict__ resp, std::size_t stride,
                      S* __restrict__ log_prob) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const S wi = w[i];
  if (resp)
    for (int k = 0; k < K; ++k) resp[static_cast<std::size_t>(k) * stride + i] *= wi;
  if (log_prob) log_prob[i] = wi == S(0) ? S(0) : wi * log_prob[i];
}

template <typename S>
__global__ void __launch_bounds__(detail::kClosestThreads, detail::kClosestMinBlocks)
    weighted_closest_kernel(const S* __restrict__ X, const S* __restrict__ w, std::size_t n, int D,
                            const S* __restrict__ c_hi, const S* __restrict__ c_lo, S* __restrict__ closest,
                            ClosestMode mode, double* __restrict__ block_sums, std::size_t first_block) {
  using BlockReduce = cub::BlockReduce<double, detail::kClosestThreads, cub::BLOCK_REDUCE_RAKING>;
  __shared__ typename BlockReduce::TempStorage temp;
  const std::size_t begin = static_cast<std::size_t>(blockIdx.x) * kClosestBlock;
  const std::size_t end = begin + kClosestBlock < n ? begin + kClosestBlock : n;
  double s = 0.0;
  for (std::size_t i = begin + threadIdx.x; i < end; i += detail::kClosestThreads) {
    const S d = detail::dist_sq(X + i * static_cast<std::size_t>(D), c_hi, c_lo, D);
    S v = d;
    if (mode != ClosestMode::reset) v = closest[i] < d ? closest[i] : d;
    if (mode != ClosestMode::potential) closest[i] = v;
    // A zero weight adds nothing even where the distance overflowed to inf.
    if (w[i] != S(0)) s += static_cast<double>(w[i]) * static_cast<double>(v);
  }
  const double total = BlockReduce(temp).Sum(s);
  if (threadIdx.x == 0) block_sums[first_block + blockIdx.x] = total;
}

template <typename S>
void scale_rows(const S* w, std::size_t n, int K, S* resp, std::size_t stride, S* log_prob, cudaStream_t stream) {
  if (n == 0 || (!resp && !log_prob)) return;
  const auto blocks = checked_cast<unsigned>((n + kScaleThreads - 1) / kScaleThreads, "scale blocks");
  CUEM_LAUNCH((scale_rows_kernel<S>), blocks, kScaleThreads, 0, stream)(w, n, K, resp, stride, log_prob);
  CUEM_CUDA_CHECK_LAUNCH();
}

template <typename S>
void weighted_closest(const S* X, const S* w, std::size_t n, int D, const S* c_hi, const S* c_lo, S* closest,
                      ClosestMode mode, double* block_sums, std::size_t first_block, cudaStream_t stream) {
  if (n == 0) return;
  const auto blocks = checked_cast<unsigned>((n + kClosestBlock - 1) / kClosestBlock, "closest blocks");
  CUEM_LAUNCH((weighted_closest_kernel<S>), blocks, detail::kClosestThreads, 0, stream)(
      X, w, n, D, c_hi, c_lo, closest, mode, block_sums, first_block);
  CUEM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_scale_rows(const float* w, std::size_t n, int K, float* resp, std::size_t resp_stride, float* log_prob,
                       cudaStream_t stream) {
  scale_rows(w, n, K, resp, resp_stride, log_prob, stream);
}

void launch_scale_rows(const double* w, std::size_t n, int K, double* resp, std::size_t resp_stride,
                       double* log_prob, cudaStream_t stream) {
  scale_rows(w, n, K, resp, resp_stride, log_prob, stream);
}

void launch_weighted_closest(const float* X, const float* w, std::size_t n, int D, const float* c_hi,
                             const float* c_lo, float* closest, ClosestMode mode, double* block_sums,
                             std::size_t first_block, cudaStream_t stream) {
  weighted_closest(X, w, n, D, c_hi, c_lo, closest, mode, block_sums, first_block, stream);
}

void launch_weighted_closest(const double* X, const double* w, std::size_t n, int D, const double* c_hi,
                             const double* c_lo, double* closest, ClosestMode mode, double* block_sums,
                             std::size_t first_block, cudaStream_t stream) {
  weighted_closest(X, w, n, D, c_hi, c_lo, closest, mode, block_sums, first_block, stream);
}

}  // namespace cuem::cuda
