// The device-view kernels (device_view.hpp).
//
// column_partials_kernel: one block a run of kColumnPartialRows rows, one thread a
// column (threads loop over the columns when D exceeds the block), each summing its
// column in row order; the host adds the blocks in order, so the origin is deterministic.
// convert_rows_kernel: one thread a value of the packed output; reads are coalesced
// along a row.
#include <cuda_runtime.h>

#include "cuda_check.cuh"
#include "device_memory.cuh"
#include "device_view.hpp"

namespace cuem::cuda {
namespace {

constexpr int kPartialThreads = 128;
constexpr int kConvertThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kPartialThreads)
    column_partials_kernel(const T* __restrict__ src, std::size_t n, std::size_t D, std::size_t stride,
                           double* __restrict__ partials) {
  const std::size_t begin = static_cast<std::size_t>(blockIdx.x) * kColumnPartialRows;
  const std::size_t end = begin + kColumnPartialRows < n ? begin + kColumnPartialRows : n;
  for (std::size_t d = threadIdx.x; d < D; d += kPartialThreads) {
    double s = 0.0;
    for (std::size_t i = begin; i < end; ++i) s += static_cast<double>(src[i * stride + d]);
    partials[static_cast<std::size_t>(blockIdx.x) * D + d] = s;
  }
}

template <typename T, typename S>
__global__ void __launch_bounds__(kConvertThreads)
    convert_rows_kernel(const T* __restrict__ src, std::size_t n, std::size_t D, std::size_t stride,
                        const double* __restrict__ origin, S* __restrict__ dst) {
  const std::size_t v = static_cast<std::size_t>(blockIdx.x) * kConvertThreads + threadIdx.x;
  if (v >= n * D) return;
  const std::size_t i = v / D, d = v % D;
  dst[v] = static_cast<S>(static_cast<double>(src[i * stride + d]) - origin[d]);
}

template <typename T>
void column_partials(const T* src, std::size_t n, std::size_t D, std::size_t stride, double* partials,
                     cudaStream_t stream) {
  if (n == 0 || D == 0) return;
  const auto blocks = checked_cast<unsigned>((n + kColumnPartialRows - 1) / kColumnPartialRows, "column blocks");
  CUEM_LAUNCH((column_partials_kernel<T>), blocks, kPartialThreads, 0, stream)(src, n, D, stride, partials);
  CUEM_CUDA_CHECK_LAUNCH();
}

template <typename T, typename S>
void convert(const T* src, std::size_t n, std::size_t D, std::size_t stride, const double* origin, S* dst,
             cudaStream_t stream) {
  if (n == 0 || D == 0) return;
  const auto blocks = checked_cast<unsigned>((n * D + kConvertThreads - 1) / kConvertThreads, "convert blocks");
  CUEM_LAUNCH((convert_rows_kernel<T, S>), blocks, kConvertThreads, 0, stream)(src, n, D, stride, origin, dst);
  CUEM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_column_partials(const float* src, std::size_t n, std::size_t D, std::size_t stride, double* partials,
                            cudaStream_t stream) {
  column_partials(src, n, D, stride, partials, stream);
}
void launch_column_partials(const double* src, std::size_t n, std::size_t D, std::size_t stride, double* partials,
                            cudaStream_t stream) {
  column_partials(src, n, D, stride, partials, stream);
}
void launch_convert_rows(const float* src, std::size_t n, std::size_t D, std::size_t stride, const double* origin,
                         float* dst, cudaStream_t stream) {
  convert(src, n, D, stride, origin, dst, stream);
}
void launch_convert_rows(const float* src, std::size_t n, std::size_t D, std::size_t stride, const double* origin,
                         double* dst, cudaStream_t stream) {
  convert(src, n, D, stride, origin, dst, stream);
}
void launch_convert_rows(const double* src, std::size_t n, std::size_t D, std::size_t stride, const double* origin,
                         float* dst, cudaStream_t stream) {
  convert(src, n, D, stride, origin, dst, stream);
}
void launch_convert_rows(const double* src, std::size_t n, std::size_t D, std::size_t stride, const double* origin,
                         double* dst, cudaStream_t stream) {
  convert(src, n, D, stride, origin, dst, stream);
}

}  // namespace cuem::cuda
